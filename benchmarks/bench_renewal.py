"""Renewal and expiry-scan throughput on PostgreSQL.

Usage: .venv/bin/python benchmarks/bench_renewal.py [RENEWALS] [SCAN_ROWS]
       (defaults 10000 and 1000000)

1. RENEWALS due certificates with held P-256 keys are seeded through the pipeline, then
   two worker processes run the renewal sweep (issuance.renewal.renew_due) at the same
   time, each claiming batches with SELECT ... FOR UPDATE SKIP LOCKED: the wall time to
   renew them all, and a check that each was renewed exactly once. For comparison, a
   slice renewed one transaction per certificate (batch size 1).
2. SCAN_ROWS certificates are seeded in bulk with one INSERT ... SELECT generate_series
   (expiry spread over a year), an expiry rule with thresholds 30/14/7/1 days is added,
   and alerts.services.scan_expiring is timed: the first scan (which writes a delivery
   for every certificate inside 30 days) and a second, steady-state scan (writes none).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from _django import root_profile_application, setup

DB = "certportal_bench_renewal"


def seed_due(count: int) -> None:
    from certportal.events import Actor
    from issuance.services import Ask, KeySpec, submit_many

    actor = Actor(label="bench")
    _, profile, app = root_profile_application("bench")
    for start in range(0, count, 500):
        asks = [
            Ask(
                key_spec=KeySpec("EC_P256", f"h{i}.example.test", [f"h{i}.example.test"]),
                validity_days=20,
            )  # inside the profile's 30-day window: due now
            for i in range(start, min(start + 500, count))
        ]
        submit_many(application=app, profile=profile, method="ui", actor=actor, asks=asks)


def worker(batch: int) -> None:
    from django.db import connection

    from issuance import renewal

    renewal.plan(limit=1_000_000)
    result = renewal.renew_due(batch=batch, time_budget=3600)
    connection.close()
    sys.stdout.write(f"{result.renewed} {result.failed}\n")


def run_workers(count: int, batch: int) -> tuple[float, list[str]]:
    env = {**os.environ}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(batch)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = [p.communicate()[0].strip() for p in procs]
    return time.perf_counter() - started, outputs


def bench_renewal(count: int) -> None:
    from django.db.models import Count

    from issuance.models import Certificate, CertificateRequest

    t0 = time.perf_counter()
    seed_due(count)
    print(f"seeded {count} due certificates (held P-256 keys) in {time.perf_counter() - t0:.1f}s")
    from issuance import renewal

    renewal.plan(limit=1_000_000)
    elapsed, outputs = run_workers(2, 100)
    renewed = Certificate.objects.filter(method="renewal").count()
    worst = (
        CertificateRequest.objects.filter(replaces__isnull=False)
        .values("replaces")
        .annotate(n=Count("id"))
        .order_by("-n")
        .first()
    )
    print(
        f"two workers, batches of 100: {renewed} renewed in {elapsed:.1f}s "
        f"({renewed / elapsed:.0f}/s); per worker (renewed failed): {outputs}; "
        f"max successors per certificate: {worst['n'] if worst else 0}"
    )
    assert renewed == count and worst is not None and worst["n"] == 1


def bench_renewal_single(count: int) -> None:
    """The same work one transaction per certificate, on a fresh slice, for comparison."""
    from django.db import connection

    from issuance.models import Certificate

    with connection.cursor() as cursor:  # a fresh, smaller set: reuse the seeding path
        cursor.execute("SELECT 1")
    before = Certificate.objects.filter(method="renewal").count()
    from applications.models import Application
    from certportal.events import Actor
    from issuance.services import Ask, KeySpec, submit_many
    from profiles.models import CertificateProfile

    app, profile = Application.objects.get(name="bench"), CertificateProfile.objects.get(slug="tls")
    asks = [
        Ask(
            key_spec=KeySpec("EC_P256", f"s{i}.example.test", [f"s{i}.example.test"]),
            validity_days=20,
        )
        for i in range(count)
    ]
    submit_many(application=app, profile=profile, method="ui", actor=Actor(label="b"), asks=asks)
    from issuance import renewal

    renewal.plan(limit=1_000_000)
    elapsed, _ = run_workers(2, 1)
    renewed = Certificate.objects.filter(method="renewal").count() - before
    print(
        f"two workers, one transaction per certificate: {renewed} renewed in {elapsed:.1f}s "
        f"({renewed / elapsed:.0f}/s)"
    )


SEED_SQL = """
INSERT INTO issuance_certificate (
  id, application_id, profile_id, ca_id, serial_number, common_name, sans, search_text,
  subject, issuer, fingerprint_sha256, not_before, not_after, key_algorithm,
  certificate_pem, chain_pem, private_key, status, revocation_reason, method,
  requester_label, created_at, renewal_attempts, last_renewal_error)
SELECT gen_random_uuid(), %(app)s, %(profile)s, %(ca)s, 'bench' || i, 'n' || i || '.example.test',
  jsonb_build_array('n' || i || '.example.test'), 'n' || i || '.example.test',
  'CN=n' || i || '.example.test', 'CN=Bench Root', md5('bench' || i) || md5('x' || i),
  now() - interval '30 days', now() + (i %% 365) * interval '1 day' + interval '1 hour', 'EC P-256',
  '', '', '', 'active', '', 'api', 'bench', now(), 0, ''
FROM generate_series(1, %(rows)s) AS i
"""


def bench_scan(rows: int) -> None:
    from django.db import connection

    from alerts import services
    from alerts.models import AlertRule, Delivery
    from applications.services import create_application
    from certportal.events import Actor
    from profiles.models import CertificateProfile

    actor = Actor(label="bench")
    profile = CertificateProfile.objects.get(slug="tls")
    app = create_application(name="scan", profiles=[profile], actor=actor)
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            SEED_SQL,
            {"app": app.pk, "profile": profile.pk, "ca": profile.issuing_ca_id, "rows": rows},
        )
        cursor.execute("ANALYZE issuance_certificate")
    print(f"seeded {rows} certificates in bulk in {time.perf_counter() - t0:.1f}s")
    channel = services.save_channel(
        app,
        name="m",
        kind="email",
        config={"recipients": ["ops@example.test"]},
        secrets={},
        actor=actor,
    )
    services.save_rule(
        app, AlertRule(name="expiry", thresholds_days=[30, 14, 7, 1]), [channel.pk], actor=actor
    )
    for label in ("first scan", "second scan (steady state)"):
        t0 = time.perf_counter()
        written = services.scan_expiring()
        print(
            f"expiry scan over {rows} certificates, {label}: {time.perf_counter() - t0:.2f}s, "
            f"{written} deliveries written"
        )
    print(f"deliveries in total: {Delivery.objects.count()}")


def main() -> None:
    renewals = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    scan_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    setup(DB)
    bench_renewal(renewals)
    bench_renewal_single(min(1000, renewals))
    bench_scan(scan_rows)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        os.environ["DATABASE_URL"] = (
            f"{os.environ.get('BENCH_POSTGRES', 'postgres://postgres@127.0.0.1:5432')}/{DB}"
        )
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certportal.settings")
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import django

        django.setup()
        worker(int(sys.argv[2]))
    else:
        main()
