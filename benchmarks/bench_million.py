"""One Application with a million certificates, on PostgreSQL: inventory, export, CRL,
expiry scan and renewal sweep.

Usage: .venv/bin/python benchmarks/bench_million.py [N]  (default 1000000)

Fill: N certificates in ONE Application through the pipeline's batch write
(``issuance.services.submit_many``: real P-256 keys held by the portal, real signed
certificates, batches of 500) from ``BENCH_WORKERS`` processes (default 2), three
profiles, validity spread from 1 to 397 days. Then 10% are revoked with what
``services.revoke`` writes (status, revoked_at, reason, the re-signed OCSP answer, the
CA's CRL marked stale, a CERTIFICATE_REVOKED audit + outbox event per certificate), in
batches of 5000 with one UPDATE, one OCSP upsert and one event INSERT each: there is no
bulk revocation service.
The Application's renewal default is off (its certificates are renewed by their
clients, so the expiry scan alerts on every one of them).

``BENCH_KEEP=1`` reuses the database (``BENCH_DB``, default cp_million) when it holds a
fill: only the reports run (a fill that stopped half-way is completed first).
``BENCH_ONLY=inventory,export,crl,scan,renewal`` runs some of the reports.

Reports, as the Application's Auditor (a member: the scoped query) and as product admin,
through the Django test Client (view + template, server side): the inventory's first page
for each filter the UI offers, median of 9 after a warm-up (target under 150 ms); the CSV
export of about 10,000 rows (a search), 100,000 (the revoked) and all rows, each in a
fresh process (time and peak RSS above the process's baseline: constant memory means the
three peaks are close); a full CRL with every revoked certificate (time, size,
``openssl crl -verify``); the expiry-alert scan, first (writes the deliveries) and steady
state (writes none; target under 2 s); the renewal sweep over 10,000 due certificates on
two workers.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _django import PG, ROOT, setup

DB = os.environ.get("BENCH_DB", "cp_million")
N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1_000_000
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
BATCH = 500
RUNS = 9
RENEWALS = 10_000
APP = "million"
PROFILES = ("tls-a", "tls-b", "tls-c")
REASONS = ("superseded", "cessationOfOperation", "affiliationChanged", "unspecified")


def _attach(*, migrate: bool = True) -> None:
    """Point Django at the existing database and apply new migrations (as a deploy does)."""
    import base64

    os.environ["DATABASE_URL"] = f"{PG}/{DB}"
    os.environ.setdefault("CERTPORTAL_KEK", _kek())
    os.environ.setdefault("CERTPORTAL_SECRET_KEY", "bench-" + base64.b64encode(b"m" * 24).decode())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _kek() -> str:
    """The KEK of this benchmark database, kept beside it: held keys of a kept fill must
    stay readable (the renewal sweep unseals them)."""
    import base64

    path = Path(tempfile.gettempdir()) / f"{DB}.kek"
    if not path.exists():
        path.write_text(base64.b64encode(os.urandom(32)).decode())
    return path.read_text().strip()


def _exists() -> bool:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
         f"SELECT 1 FROM pg_database WHERE datname = '{DB}'"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip() == "1"


# --- Fill ------------------------------------------------------------------------------------


def create_fixture() -> None:
    from applications.services import create_application, set_member_role
    from certportal.events import Actor
    from certportal.roles import Role
    from issuance.choices import KeyMode
    from issuance.renewal import configure_application
    from profiles import services
    from profiles.choices import Preset

    actor = Actor(label="bench")
    ca = services.create_root_ca(
        services.CASpec(name="Bench Root", slug="bench-root",
                        subject=services.CASubject("Bench Root")), actor=actor,
    )  # fmt: skip
    profiles = [
        services.create_profile(actor=actor, preset=Preset.TLS_SERVER, name=slug, slug=slug,
                                issuing_ca=ca, dns_rules=[".example.test"])
        for slug in PROFILES
    ]  # fmt: skip
    app = create_application(name=APP, profiles=profiles, actor=actor)
    configure_application(
        app, auto_renew=False, renew_days_before=None, key_mode=KeyMode.NEW, actor=actor
    )
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    users.create_user("bench-admin", is_superuser=True, is_staff=True)
    for role in (Role.OPERATOR, Role.AUDITOR):
        set_member_role(app, users.create_user(f"bench-{role}"), role, actor=actor)


def _ask(i: int):
    from issuance.services import Ask, KeySpec

    cn = f"host-{i}.svc{i % 100}.example.test"
    spec = KeySpec("EC_P256", cn, [cn, f"alt-{i}.example.test"])
    return Ask(key_spec=spec, validity_days=1 + (i * 7919) % 397)


def fill_worker(start: int, stop: int, step: int) -> None:
    """Issue certificates start, start+step, ... below stop, in batches, by profile."""
    from applications.models import Application
    from certportal.events import Actor
    from issuance.services import IssuanceRejected, attached_profile, submit_many

    app, actor = Application.objects.get(name=APP), Actor(label="bench fill")
    mine = list(range(start, stop, step))
    for slug_index, slug in enumerate(PROFILES):
        profile = attached_profile(app, slug)
        assert profile is not None
        indexes = [i for i in mine if i % len(PROFILES) == slug_index]
        for at in range(0, len(indexes), BATCH):
            asks = [_ask(i) for i in indexes[at : at + BATCH]]
            results = submit_many(
                application=app, profile=profile, method="api", actor=actor, asks=asks
            )
            bad = [r for r in results if isinstance(r, IssuanceRejected)]
            assert not bad, bad[0]


def fill(count: int) -> None:
    """Issue certificates count..N-1 (names by index: a stopped fill resumes)."""
    if count >= N:
        return
    t0, cpu0 = time.perf_counter(), _children_cpu()
    procs = [
        subprocess.Popen([sys.executable, __file__, "fill-worker", str(count + w), str(N),
                          str(WORKERS)], env={**os.environ})
        for w in range(WORKERS)
    ]  # fmt: skip
    assert all(p.wait() == 0 for p in procs), "a fill worker failed"
    elapsed, done = time.perf_counter() - t0, N - count
    print(
        f"fill: {done} certificates through submit_many on {WORKERS} processes in "
        f"{elapsed:.0f} s: {done / elapsed:.0f}/s; worker CPU "
        f"{(_children_cpu() - cpu0) / done * 1000:.2f} ms per certificate"
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def revoke_tenth() -> None:
    """Revoke 10% (a random tenth: ordered by fingerprint) as services.revoke does."""
    from django.db import transaction
    from django.utils import timezone

    from certportal.event_types import EventType
    from certportal.events import Actor, Event, record_many
    from issuance.models import Certificate
    from issuance.ocsp import signing as ocsp_signing
    from issuance.services import certificate_event_data
    from profiles.models import CertificateAuthority

    base = Certificate.objects.filter(application__name=APP)
    want = N // 10 - base.filter(status="revoked").count()  # a re-run revokes no more
    if want <= 0:
        return
    t0, actor, now = time.perf_counter(), Actor(label="bench revoke"), timezone.now()
    ids = list(
        base.filter(status="active", replaces__isnull=True)
        .order_by("fingerprint_sha256")
        .values_list("pk", flat=True)[:want]
    )
    fields = ("pk", "application", "ca_id", "serial_number", "common_name", "sans", "not_after",
              "profile_id", "method")  # fmt: skip
    for at in range(0, len(ids), 5000):
        chunk = ids[at : at + 5000]
        certificates = list(Certificate.objects.filter(pk__in=chunk).select_related(
            "application").only(*fields))  # fmt: skip
        events = []
        with transaction.atomic():
            for reason in REASONS:
                mine = [c for n, c in enumerate(certificates) if REASONS[n % 4] == reason]
                Certificate.objects.filter(pk__in=[c.pk for c in mine], status="active").update(
                    status="revoked", revoked_at=now, revocation_reason=reason
                )
                for c in mine:
                    c.status, c.revoked_at, c.revocation_reason = "revoked", now, reason
                ocsp_signing.rewrite(mine)  # their pre-signed OCSP answers
                events += [
                    Event(EventType.CERTIFICATE_REVOKED, actor, c, c.application,
                          {**certificate_event_data(c), "reason": reason})
                    for c in mine
                ]  # fmt: skip
            CertificateAuthority.objects.filter(pk__in={c.ca_id for c in certificates}).update(
                crl_stale=True
            )
            record_many(events)
    print(f"revoked {len(ids)} certificates in {time.perf_counter() - t0:.0f} s")


def prepare() -> None:
    os.environ["CERTPORTAL_KEK"] = _kek()
    if KEEP and _exists():
        _attach()
    else:
        setup(DB)
    from django.db import connection
    from django.db.models import Count

    from applications.models import Application
    from issuance.models import Certificate

    if not Application.objects.filter(name=APP).exists():
        create_fixture()
    count = Certificate.objects.filter(application__name=APP, method="api").count()
    fill(count)
    revoke_tenth()
    if count < N:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE issuance_certificate")
    total = Certificate.objects.filter(application__name=APP).count()
    by_status = dict(
        Certificate.objects.filter(application__name=APP)
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    print(f"Application {APP!r}: {total} certificates {by_status}")


# --- Reports ---------------------------------------------------------------------------------


def _client(username: str):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def report_inventory() -> None:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from issuance.models import Certificate

    # Measure the view, not static-file hashing of an uncollected manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    sample = Certificate.objects.filter(application__name=APP).order_by("fingerprint_sha256")[
        12345 % max(N, 1)
    ]
    url = reverse("issuance:certificates", args=[APP])
    cases = {
        "first page, no filter": {},
        "page 3, no filter": {"page": "3"},
        "page 400, no filter (offset 9,975)": {"page": "400"},
        "status=revoked": {"status": "revoked"},
        "status=active, expiring first": {"status": "active", "sort": "not_after"},
        "expiring within 30 days": {"expiring": "30", "sort": "not_after"},
        "profile=tls-b": {"profile": "tls-b"},
        "profile=tls-b, method=api, 100/page": {"profile": "tls-b", "method": "api",
                                                "per_page": "100"},
        "search 'host-4242.' (CN/SAN substring)": {"q": "host-4242."},
        "search 'svc7.example' (many hits)": {"q": "svc7.example"},
        "search 'no-such-name' (no hit)": {"q": "no-such-name"},
        "search exact serial": {"q": sample.serial_number},
        "search exact fingerprint": {"q": sample.fingerprint_sha256},
    }  # fmt: skip
    clients = {"auditor": _client("bench-auditor"), "admin": _client("bench-admin")}
    print(f"inventory ({N} certificates), median of {RUNS} after a warm-up, ms:")
    print(f"{'case':42} {'auditor':>8} {'admin':>8} {'queries':>8} {'rows':>6}  target")
    for name, params in cases.items():
        medians = {}
        for who, client in clients.items():
            client.get(url, params)  # warm-up
            times = []
            for _ in range(RUNS):
                with CaptureQueriesContext(connection) as queries:
                    t0 = time.perf_counter()
                    response = client.get(url, params)
                    times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.status_code
            medians[who] = statistics.median(times)
        rows = len(response.context["page"].object_list)
        ok = "met" if max(medians.values()) < 150 else "MISSED"
        print(f"{name:42} {medians['auditor']:8.1f} {medians['admin']:8.1f} "
              f"{len(queries.captured_queries):8d} {rows:6d}  {ok}")  # fmt: skip


def export_worker(query: str) -> None:
    """One CSV export in this fresh process: time, rows, and peak RSS above baseline."""
    from urllib.parse import parse_qsl

    from django.urls import reverse

    client = _client("bench-auditor")
    url = reverse("issuance:certificates-csv", args=[APP])
    b"".join(client.get(url, {"q": "no-such-name"}).streaming_content)  # warm-up, tiny
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    response = client.get(url, dict(parse_qsl(query)))
    assert response.streaming
    rows = size = 0
    for chunk in response.streaming_content:
        rows += chunk.count(b"\n")
        size += len(chunk)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(f"{rows - 1} {size} {elapsed} {base} {peak}\n")


def report_export() -> None:
    print("CSV export (each in a fresh process; RSS in MB):")
    print(f"{'filter':28} {'rows':>8} {'MB':>6} {'s':>6} {'rows/s':>7} {'base RSS':>8} "
          f"{'peak RSS':>8} {'delta':>6}")  # fmt: skip
    for query in ("q=svc7.", "status=revoked", ""):
        command = [sys.executable, __file__, "export-worker", query]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        rows, size, elapsed, base, peak = out.stdout.split()
        rows_i, elapsed_f = int(rows), float(elapsed)
        print(f"{query or '(all)':28} {rows_i:8d} {int(size) / 1e6:6.1f} {elapsed_f:6.1f} "
              f"{rows_i / elapsed_f:7.0f} {int(base) / 1024:8.0f} {int(peak) / 1024:8.0f} "
              f"{(int(peak) - int(base)) / 1024:6.0f}")  # fmt: skip


def report_crl() -> None:
    from issuance import revocation
    from issuance.models import Certificate
    from profiles.models import CertificateAuthority

    ca = CertificateAuthority.objects.get(slug="bench-root")
    revoked = Certificate.objects.filter(ca=ca, status="revoked").count()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        der = revocation.rebuild_crl(ca.pk, force=True)
        times.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "crl.der").write_bytes(der)
        Path(tmp, "ca.pem").write_text(ca.certificate_pem)
        check = subprocess.run(
            ["openssl", "crl", "-inform", "DER", "-in", f"{tmp}/crl.der", "-CAfile",
             f"{tmp}/ca.pem", "-noout", "-verify"], capture_output=True, text=True,
        )  # fmt: skip
    verdict = (check.stdout + check.stderr).strip().replace("\n", " ")
    print(
        f"full CRL, {revoked} revoked entries: median of 3 rebuilds {statistics.median(times):.2f}"
        f" s (all: {', '.join(f'{t:.2f}' for t in times)}), {len(der) / 1e6:.2f} MB; "
        f"openssl: {verdict}; target 10 s: {'met' if statistics.median(times) < 10 else 'MISSED'}"
    )


def report_scan() -> None:
    from alerts import services
    from alerts.models import AlertRule, Delivery
    from applications.models import Application
    from certportal.events import Actor

    app, actor = Application.objects.get(name=APP), Actor(label="bench")
    if not AlertRule.objects.filter(application=app, name="expiry").exists():
        channel = services.save_channel(
            app, name="m", kind="email", config={"recipients": ["ops@example.test"]},
            secrets={}, actor=actor,
        )  # fmt: skip
        services.save_rule(
            app, AlertRule(name="expiry", thresholds_days=[30, 14, 7, 1]), [channel.pk],
            actor=actor,
        )  # fmt: skip
    Delivery.objects.filter(application=app).delete()  # a re-run starts from no alert
    times = []
    for label in ("first scan", "steady state", "steady state"):
        t0 = time.perf_counter()
        written = services.scan_expiring()
        times.append(time.perf_counter() - t0)
        print(f"expiry scan, {label}: {times[-1]:.2f} s, {written} deliveries written")
    ok = "met" if min(times[1:]) < 2 else "MISSED"
    print(f"expiry scan steady state best {min(times[1:]):.2f} s: target 2 s {ok}")


def report_renewal() -> None:
    """Make 10,000 active certificates inside their window auto-renew (what
    configure_certificate writes, in one UPDATE), then sweep on two workers."""
    from django.db import connection
    from django.utils import timezone

    from issuance.models import Certificate

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE issuance_certificate SET auto_renew = true,
                 next_renewal_attempt_at = not_after - interval '30 days'
               WHERE id IN (
                 SELECT c.id FROM issuance_certificate c
                 JOIN applications_application a ON a.id = c.application_id
                 WHERE a.name = %s AND c.status = 'active' AND c.auto_renew IS NULL
                   AND c.not_after > %s AND c.not_after <= %s + interval '29 days'
                 ORDER BY c.not_after LIMIT %s)""",
            [APP, now, now, RENEWALS],
        )
        due = cursor.rowcount
    before = Certificate.objects.filter(method="renewal").count()
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, __file__, "renew-worker"], env={**os.environ},
                         stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [p.communicate()[0].strip() for p in procs]
    elapsed = time.perf_counter() - t0
    renewed = Certificate.objects.filter(method="renewal").count() - before
    print(f"renewal sweep: {due} due, {renewed} renewed on two workers in {elapsed:.1f} s "
          f"({renewed / elapsed:.0f}/s); per worker (renewed failed): {outputs}")  # fmt: skip


def renew_worker() -> None:
    from django.db import connection

    from issuance import renewal

    result = renewal.renew_due(batch=100, time_budget=3600)
    connection.close()
    sys.stdout.write(f"{result.renewed} {result.failed}\n")


def main() -> None:
    from _machine import describe

    prepare()
    print(describe())
    reports = {"inventory": report_inventory, "export": report_export, "crl": report_crl,
               "scan": report_scan, "renewal": report_renewal}  # fmt: skip
    from django.test.utils import setup_test_environment

    setup_test_environment()
    for name, report in reports.items():
        if not ONLY or name in ONLY:
            report()
            sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].endswith("-worker"):
        _attach(migrate=False)
        role, args = sys.argv[1], sys.argv[2:]
        if role == "fill-worker":
            fill_worker(int(args[0]), int(args[1]), int(args[2]))
        elif role == "export-worker":
            from django.test.utils import setup_test_environment

            setup_test_environment()
            export_worker(args[0] if args else "")
        else:
            renew_worker()
    else:
        main()
