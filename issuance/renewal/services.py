"""Renewal settings: an Application's defaults and a certificate's own overrides.

Both refuse a window as long as the validity it applies to (the successor would be due
at once and renewal would loop), write an audit event, and let the sweep plan again.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from certportal.event_types import EventType
from certportal.events import Actor, record
from issuance.choices import HELD_KEY_MODES, CertificateStatus
from issuance.models import Certificate, RenewalSettings
from issuance.renewal.window import renew_at, settings_for


def validity_days(certificate: Certificate) -> int:
    return max((certificate.not_after - certificate.not_before).days, 1)


def configure_certificate(
    certificate: Certificate,
    *,
    auto_renew: bool | None,
    renew_days_before: int | None,
    actor: Actor,
) -> Certificate:
    """Set a certificate's own renewal settings (None inherits). A window as long as the
    validity is refused: the successor would be due at once and renewal would loop."""
    if renew_days_before is not None and renew_days_before >= validity_days(certificate):
        raise ValidationError(
            {
                "renew_days_before": (
                    f"Renewing {renew_days_before} days before expiry is not shorter than "
                    f"this certificate's validity ({validity_days(certificate)} days)."
                )
            }
        )
    certificate.auto_renew = auto_renew
    certificate.renew_days_before = renew_days_before
    certificate.next_renewal_attempt_at = renew_at(
        certificate, settings_for(certificate.application_id)
    )
    with transaction.atomic():
        Certificate.objects.filter(pk=certificate.pk).update(
            auto_renew=auto_renew,
            renew_days_before=renew_days_before,
            next_renewal_attempt_at=certificate.next_renewal_attempt_at,
        )
        record(
            EventType.CERTIFICATE_RENEWAL_CONFIGURED,
            actor=actor,
            obj=certificate,
            application=certificate.application,
            data={"auto_renew": auto_renew, "renew_days_before": renew_days_before},
            outbox=False,
        )
    return certificate


def shortest_validity(application: Any) -> int | None:
    return min((p.validity_days_default for p in application.profiles.all()), default=None)


def configure_application(
    application: Any,
    *,
    auto_renew: bool,
    renew_days_before: int | None,
    key_mode: str,
    actor: Actor,
) -> RenewalSettings:
    """Set an Application's renewal defaults; a window not shorter than the shortest
    default validity of its profiles is refused."""
    shortest = shortest_validity(application)
    if renew_days_before is not None and shortest is not None and renew_days_before >= shortest:
        raise ValidationError(
            {
                "renew_days_before": (
                    f"Renewing {renew_days_before} days before expiry is not shorter than the "
                    f"shortest validity of this Application's profiles ({shortest} days)."
                )
            }
        )
    if key_mode not in HELD_KEY_MODES:
        raise ValidationError({"key_mode": "Use a fresh key or reuse the held key."})
    with transaction.atomic():
        row, _ = RenewalSettings.objects.update_or_create(
            application=application,
            defaults={
                "auto_renew": auto_renew,
                "renew_days_before": renew_days_before,
                "key_mode": key_mode,
            },
        )
        replan(application.pk)
        record(
            EventType.APPLICATION_RENEWAL_CONFIGURED,
            actor=actor,
            application=application,
            obj=row,
            data={
                "auto_renew": auto_renew,
                "renew_days_before": renew_days_before,
                "key_mode": key_mode,
            },
            outbox=False,
        )
    return row


def replan(application_id: int) -> int:
    """After a settings change: let the sweep recompute the due time of the
    Application's certificates (those not in a failure backoff)."""
    return Certificate.objects.filter(
        application_id=application_id, status=CertificateStatus.ACTIVE, renewal_attempts=0
    ).update(next_renewal_attempt_at=None)
