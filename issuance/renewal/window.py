"""When a certificate is due: one computation for the renewal sweep and ACME's ARI.

The window length comes from the certificate's own setting, else its Application's
RenewalSettings, else its profile's renewal_window_days. The sweep renews at the start
of the window; ARI (RFC 9773) suggests the window's first half to ACME clients, so both
answer the same question the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from issuance.choices import CertificateStatus, KeyMode
from issuance.models import Certificate, RenewalSettings

# A certificate without a profile (imported) has no window of its own.
DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class AppRenewal:
    """An Application's renewal defaults (its RenewalSettings row, or these when unset)."""

    auto_renew: bool = True
    renew_days_before: int | None = None
    key_mode: str = KeyMode.NEW


def settings_for(application_id: int) -> AppRenewal:
    row = RenewalSettings.objects.filter(application_id=application_id).first()
    if row is None:
        return AppRenewal()
    return AppRenewal(row.auto_renew, row.renew_days_before, row.key_mode)


def window_days(certificate: Certificate, app: AppRenewal) -> int:
    if certificate.renew_days_before is not None:
        return certificate.renew_days_before
    if app.renew_days_before is not None:
        return app.renew_days_before
    if certificate.profile is None:
        return DEFAULT_WINDOW_DAYS
    return certificate.profile.renewal_window_days


def renewal_window(
    certificate: Certificate, app: AppRenewal | None = None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The window to renew in: from notAfter minus the window length, over its first
    half (clients spread inside it). A revoked certificate should be replaced now."""
    if certificate.status == CertificateStatus.REVOKED:
        now = now or timezone.now()
        return now - timedelta(hours=1), now
    if app is None:
        app = settings_for(certificate.application_id)
    days = timedelta(days=window_days(certificate, app))
    start = certificate.not_after - days
    return start, start + days / 2


def auto_renews(certificate: Certificate, app: AppRenewal) -> bool:
    held = bool(certificate.private_key) and certificate.profile_id is not None
    wanted = app.auto_renew if certificate.auto_renew is None else certificate.auto_renew
    return held and wanted


def renews_itself(row: dict[str, Any], app: AppRenewal) -> bool:
    """For the expiry scan's rows: will the sweep renew this one (no failure so far)?"""
    wanted = app.auto_renew if row["auto_renew"] is None else row["auto_renew"]
    return bool(row["held_key"] and row["profile_id"] and wanted and not row["renewal_attempts"])


def renew_at(certificate: Certificate, app: AppRenewal) -> datetime:
    """When the sweep should renew it: the start of its renewal window; notAfter (never,
    in effect) when auto-renew is off."""
    if not auto_renews(certificate, app):
        return certificate.not_after
    start, _ = renewal_window(certificate, app)
    return start
