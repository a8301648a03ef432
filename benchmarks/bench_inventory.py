"""Inventory page speed at 100,000 certificates in one Application, on PostgreSQL.

Usage: .venv/bin/python benchmarks/bench_inventory.py [N]  (default 100000)
Seeds N certificate rows directly (bulk INSERT; the rows carry the columns the inventory
reads, not real signatures) into a throwaway database, ANALYZEs, then times the
Certificates tab's first page through the Django test Client (view + template, server
side only) for: no filter, a status filter, an expiring-within filter, a profile filter,
a substring search on CN/SAN, an exact serial and an exact fingerprint. Median of 9 runs
after a warm-up; target under 150 ms each.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import sys
import time
from datetime import timedelta

from _django import setup

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RUNS = 9
BATCH = 5000


def _rows(application, profiles, ca, now):
    from issuance.choices import CertificateStatus, EnrollmentMethod
    from issuance.models import Certificate

    rng = random.Random(42)
    statuses = (
        [CertificateStatus.ACTIVE] * 90 + [CertificateStatus.REVOKED] * 5
        + [CertificateStatus.EXPIRED] * 3 + [CertificateStatus.SUPERSEDED] * 2
    )  # fmt: skip
    methods = [EnrollmentMethod.ACME] * 6 + [EnrollmentMethod.API] * 2 + [EnrollmentMethod.UI]
    for i in range(N):
        cn = f"host-{i}.svc{i % 100}.example.test"
        sans = [cn, f"alt-{i}.example.test"]
        not_before = now - timedelta(days=rng.randint(0, 300))
        yield Certificate(
            application=application, profile=profiles[i % len(profiles)], ca=ca,
            serial_number=f"{rng.getrandbits(159):040X}", common_name=cn, sans=sans,
            search_text=" ".join(sans), subject=f"CN={cn}", issuer="CN=Bench Issuing",
            fingerprint_sha256=hashlib.sha256(f"cert-{i}".encode()).hexdigest(),
            not_before=not_before, not_after=now + timedelta(days=rng.randint(-30, 400)),
            key_algorithm="EC P-256", certificate_pem="-", status=rng.choice(statuses),
            method=rng.choice(methods), created_at=not_before,
        )  # fmt: skip


def seed():
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from applications.services import create_application
    from certportal.events import Actor
    from issuance.models import Certificate
    from profiles import services
    from profiles.choices import Preset

    actor = Actor(label="bench")
    ca = services.create_root_ca(
        services.CASpec(name="Bench Root", slug="bench-root",
                        subject=services.CASubject("Bench Root")), actor=actor,
    )  # fmt: skip
    profiles = [
        services.create_profile(actor=actor, preset=Preset.TLS_SERVER, name=slug, slug=slug,
                                issuing_ca=ca, dns_rules=["*.example.test"])
        for slug in ("tls-a", "tls-b", "tls-c")
    ]  # fmt: skip
    application = create_application(name="big-app", profiles=profiles, actor=actor)
    now = timezone.now()
    started = time.perf_counter()
    batch = []
    for row in _rows(application, profiles, ca, now):
        batch.append(row)
        if len(batch) == BATCH:
            Certificate.objects.bulk_create(batch)
            batch = []
    Certificate.objects.bulk_create(batch)
    # auto_now_add overwrote created_at: spread it like real issuance history.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE issuance_certificate SET created_at = not_before WHERE application_id = %s",
            [application.pk],
        )
        cursor.execute("VACUUM ANALYZE issuance_certificate")
    print(f"seeded {N} certificates in {time.perf_counter() - started:.1f} s")
    admin = get_user_model().objects.create_user("bench-admin", is_superuser=True)
    sample = Certificate.objects.filter(application=application).order_by("?").first()
    return application, admin, sample


def main() -> None:
    setup("certportal_bench_inventory")
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    setup_test_environment()
    # Measure the view, not static-file hashing of an uncollected manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    application, admin, sample = seed()
    client = Client()
    client.force_login(admin)
    url = reverse("issuance:certificates", args=[application.name])
    cases = {
        "first page, no filter": {},
        "status=revoked": {"status": "revoked"},
        "status=active, sort by expiry": {"status": "active", "sort": "not_after"},
        "expiring within 30 days": {"expiring": "30", "sort": "not_after"},
        "profile=tls-b, method=acme": {"profile": "tls-b", "method": "acme"},
        "search 'host-4242' (CN/SAN substring)": {"q": "host-4242"},
        "search 'svc7.example' (many hits)": {"q": "svc7.example"},
        "search exact serial": {"q": sample.serial_number},
        "search exact fingerprint": {"q": sample.fingerprint_sha256},
    }
    print(f"{'case':42} {'median ms':>10} {'p90 ms':>8} {'queries':>8} {'rows':>7}")
    for name, params in cases.items():
        client.get(url, params)  # warm-up
        times = []
        for _ in range(RUNS):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url, params)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        count = len(response.context["page"].object_list)  # the count is capped now
        p90 = sorted(times)[int(len(times) * 0.9) - 1]
        print(f"{name:42} {statistics.median(times):10.1f} {p90:8.1f} "
              f"{len(queries.captured_queries):8d} {count:7d}")  # fmt: skip
    if os.environ.get("BENCH_EXPLAIN"):
        from issuance import inventory
        from issuance.models import Certificate

        qs = inventory.filter_certificates(
            Certificate.objects.filter(application=application), q="host-4242"
        )[:25]
        print(qs.explain(analyze=True))


if __name__ == "__main__":
    main()
