"""The renewal sweep: plan when each certificate is due, then renew due ones in batches.

Only certificates whose key the portal holds are renewed here (fresh key, or the same
key where the Application's renewal settings say so), through the pipeline
(``submit_many`` with method "renewal" and ``replaces``, the same asks as
``services.renew``), so approval policies see renewals as renewals. CSR, ACME, EST and
SCEP certificates have no held key; they get expiry alerts instead.

Claiming: a batch is locked with ``select_for_update(skip_locked=True)`` (PostgreSQL;
SQLite's IMMEDIATE transactions serialize writers) and renewed in that same transaction,
so a second worker skips it and a killed worker's batch simply rolls back. A manual
renewal, an approval or an ACME order that renews the same certificate meets the
pipeline's lock on it (``services.renewal_conflicts``): whichever comes second is refused
as ``already_renewed``, which the sweep counts as nothing to do, not as a failure.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from certportal.event_types import EventType
from certportal.events import SYSTEM, Actor, Event, record_many
from issuance import services
from issuance.choices import CertificateStatus, EnrollmentMethod, KeyMode
from issuance.models import Certificate
from issuance.renewal.window import AppRenewal, renew_at, settings_for

logger = logging.getLogger(__name__)

RETRY_BASE = timedelta(minutes=15)
RETRY_CAP = timedelta(days=1)
MIN_RETRY = timedelta(seconds=30)
RENEWAL_ACTOR = Actor(label="automatic renewal")


# --- Planning ------------------------------------------------------------------------------


def _renewable() -> Any:
    return Certificate.objects.filter(
        status=CertificateStatus.ACTIVE, profile__isnull=False
    ).exclude(private_key="")


def plan(limit: int = 5000) -> int:
    """Set next_renewal_attempt_at on renewable certificates that have none yet (new
    ones, or after a settings change). Returns how many were planned."""
    rows = list(
        _renewable()
        .filter(next_renewal_attempt_at__isnull=True)
        .select_related("profile")
        .only(
            "pk",
            "application_id",
            "status",
            "profile__renewal_window_days",
            "not_after",
            "auto_renew",
            "renew_days_before",
            "private_key",
            "profile_id",
        )[:limit]
    )
    apps: dict[int, AppRenewal] = {}
    for certificate in rows:
        app_id = certificate.application_id
        if app_id not in apps:
            apps[app_id] = settings_for(app_id)
        certificate.next_renewal_attempt_at = renew_at(certificate, apps[app_id])
    Certificate.objects.bulk_update(rows, ["next_renewal_attempt_at"], batch_size=500)
    return len(rows)


def due(now: datetime) -> Any:
    return _renewable().filter(next_renewal_attempt_at__lte=now, not_after__gt=now)


# --- The sweep -----------------------------------------------------------------------------


def retry_delay(attempts: int, time_left: timedelta) -> timedelta:
    """Exponential backoff, capped, and always shorter than the time left: half of it."""
    delay = min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_CAP)
    return max(min(delay, time_left / 2), min(MIN_RETRY, time_left / 2))


@dataclass
class BatchResult:
    renewed: int = 0
    pending: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.renewed + self.pending + self.failed


def renew_due(
    *,
    now: datetime | None = None,
    batch: int | None = None,
    time_budget: float = 120.0,
    stop: Callable[[], bool] = lambda: False,
) -> BatchResult:
    """Renew due certificates batch after batch until none is left (or the time budget
    runs out, or ``stop()`` says so: the next run goes on). Safe to run on any number of
    workers at once."""
    batch = batch or settings.CERTPORTAL_RENEWAL_BATCH
    total = BatchResult()
    started = time.monotonic()
    while time.monotonic() - started < time_budget and not stop():
        result = renew_batch(now=now, batch=batch)
        total.renewed += result.renewed
        total.pending += result.pending
        total.failed += result.failed
        if result.total == 0:
            break
    return total


def renew_batch(*, now: datetime | None = None, batch: int = 100) -> BatchResult:
    """Lock up to `batch` due certificates that no other worker holds and renew them."""
    now = now or timezone.now()
    result = BatchResult()
    with transaction.atomic():
        claimed = list(
            due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("profile", "profile__issuing_ca", "application")
            .defer("profile__issuing_ca__crl_der")  # a CRL of 100k entries is megabytes
            .order_by("next_renewal_attempt_at")[:batch]
        )
        groups: dict[tuple[Any, ...], list[Certificate]] = defaultdict(list)
        apps: dict[int, AppRenewal] = {}
        for certificate in claimed:
            app = apps.setdefault(
                certificate.application_id, settings_for(certificate.application_id)
            )
            groups[(certificate.application_id, certificate.profile_id, app.key_mode)].append(
                certificate
            )
        failures: list[tuple[Certificate, str]] = []
        for (_, _, key_mode), certificates in groups.items():
            _renew_group(certificates, key_mode, result, failures)
        _record_failures(failures, now)
        result.failed = len(failures)
    return result


def _renew_group(
    certificates: list[Certificate],
    key_mode: str,
    result: BatchResult,
    failures: list[tuple[Certificate, str]],
) -> None:
    """One pipeline call for the group; if it fails as a whole, one call per certificate
    so a single bad certificate cannot hold back the others."""
    try:
        with transaction.atomic():
            outcomes = _submit_group(certificates, key_mode)
    except Exception as exc:
        logger.warning("renewal batch failed (%s); renewing one by one", exc)
        outcomes = [_renew_one(c, key_mode) for c in certificates]
    for certificate, outcome in zip(certificates, outcomes, strict=True):
        if isinstance(outcome, services.Submission):
            _succeeded(certificate, outcome, result)
        elif outcome is not None:
            failures.append((certificate, outcome))


def _ask(certificate: Certificate, key_mode: str) -> services.Ask:
    reuse = certificate.private_key_pem() if key_mode == KeyMode.REUSE else None
    spec = services.requests._key_spec_like(certificate)  # as manual renewal does
    return services.Ask(key_spec=spec, replaces=certificate, reuse_key_pem=reuse)


# What renewing one certificate came to: its successor (or held request), the error, or
# None when it was renewed (or revoked) another way meanwhile: nothing to do, no failure.
Outcome = services.Submission | str | None


def _outcome(result: services.Submission | services.IssuanceRejected) -> Outcome:
    if isinstance(result, services.Submission):
        return result
    return None if result.code in services.RENEWAL_CONFLICTS else result.message


def _submit_group(certificates: list[Certificate], key_mode: str) -> list[Outcome]:
    first = certificates[0]
    assert first.profile is not None
    results = services.submit_many(
        application=first.application,
        profile=first.profile,
        method=EnrollmentMethod.RENEWAL,
        actor=RENEWAL_ACTOR,
        asks=[_ask(c, key_mode) for c in certificates],
    )
    return [_outcome(r) for r in results]


def _renew_one(certificate: Certificate, key_mode: str) -> Outcome:
    try:
        with transaction.atomic():
            return services.renew(certificate, actor=RENEWAL_ACTOR, key_mode=key_mode)
    except services.IssuanceRejected as exc:
        return _outcome(exc)
    except services.RenewalError as exc:
        return str(exc)
    except Exception as exc:
        logger.exception("renewal of certificate %s failed", certificate.pk)
        return f"{type(exc).__name__}: {exc}"


def _succeeded(
    certificate: Certificate, submission: services.Submission, result: BatchResult
) -> None:
    if submission.certificate is None:
        # Held for approval: look again once the approval window has passed.
        result.pending += 1
        Certificate.objects.filter(pk=certificate.pk).update(
            next_renewal_attempt_at=submission.request.expires_at or certificate.not_after
        )
        return
    result.renewed += 1
    # The successor keeps the certificate's own settings; the sweep plans its due time.
    if certificate.auto_renew is not None or certificate.renew_days_before is not None:
        Certificate.objects.filter(pk=submission.certificate.pk).update(
            auto_renew=certificate.auto_renew, renew_days_before=certificate.renew_days_before
        )


def _record_failures(failures: Sequence[tuple[Certificate, str]], now: datetime) -> None:
    """Record each failure on its certificate, back off, and emit an event (alerts)."""
    events = []
    for certificate, error in failures:
        attempts = certificate.renewal_attempts + 1
        retry_at = now + retry_delay(attempts, certificate.not_after - now)
        Certificate.objects.filter(pk=certificate.pk).update(
            renewal_attempts=attempts,
            last_renewal_error=error[:2000],
            next_renewal_attempt_at=retry_at,
        )
        data = {
            **services.certificate_event_data(certificate),
            "error": error[:500],
            "attempts": attempts,
            "next_attempt_at": retry_at.isoformat(),
        }
        events.append(
            Event(
                EventType.CERTIFICATE_RENEWAL_FAILED,
                SYSTEM,
                certificate,
                certificate.application,
                data,
            )
        )
    if events:
        record_many(events)
