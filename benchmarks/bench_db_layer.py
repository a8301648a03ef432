"""The performance layer (certportal.db) against the plain ORM, in one process.

Usage: .venv/bin/python benchmarks/bench_db_layer.py [N]  (default 300 per round)

On a shared machine absolute rates move from run to run; ratios measured in the same
process, with the variants interleaved over BENCH_ROUNDS rounds (default 5, the order
reversed every other round), move far less. Each line gives the median wall and CPU
time per operation of a variant and its speed-up over the plain ORM. Measured, with
CERTPORTAL_DB_ONE_STATEMENT_WRITES off (plain ``bulk_create`` in ``atomic()``) and on:

1. ``attached_profile()`` + ``submit()`` of one CSR, sequentially (what one API, ACME,
   EST or SCEP request pays for its write);
2. ``submit_many()`` of 100 CSRs (bulk issuance, renewal sweeps), per certificate;
3. an API issue request through Django's test client (bearer token, JSON, 201).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("CERTPORTAL_Q_NAME", f"bench-db-{os.getpid()}")
os.environ.setdefault("CERTPORTAL_API_RATE", "1000000/min")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

from _django import setup
from _machine import describe

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def interleaved(
    variants: dict[str, Callable[[int], None]], n: int
) -> dict[str, tuple[float, float]]:
    """Median wall and CPU milliseconds per operation of each variant."""
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(ROUNDS):
        for name in names if round_ % 2 == 0 else list(reversed(names)):
            start, process = time.perf_counter(), time.process_time()
            variants[name](n)
            wall[name].append((time.perf_counter() - start) / n * 1000)
            cpu[name].append((time.process_time() - process) / n * 1000)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in names}


def report(title: str, medians: dict[str, tuple[float, float]], reference: str) -> None:
    base_wall, base_cpu = medians[reference]
    print(f"{title} (median per operation; speed-up over {reference!r})")
    for name, (wall, cpu) in medians.items():
        print(
            f"  {name:<22} {wall:7.3f} ms (CPU {cpu:6.3f} ms)  "
            f"x{base_wall / wall:4.2f} (CPU x{base_cpu / cpu:4.2f})"
        )


def main() -> None:
    setup("cp_perf_bench_db")
    from cryptography.hazmat.primitives.serialization import Encoding
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from applications.services import create_application
    from certportal import generation, permissions
    from certportal.api import services as credentials
    from certportal.events import Actor
    from issuance.services import Ask, attached_profile, submit, submit_many
    from pki import csr as pki_csr
    from pki import keys
    from profiles import services
    from profiles.choices import Preset

    actor = Actor(label="bench")
    root = services.create_root_ca(
        services.CASpec(
            name="Bench Root", slug="bench-root", subject=services.CASubject("Bench Root")
        ),
        actor=actor,
    )
    profile = services.create_profile(
        actor=actor,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=root,
        dns_rules=["*.example.test"],
    )
    app = create_application(name="bench", profiles=[profile], actor=actor)
    user = get_user_model().objects.create_user("bench-operator")
    permissions.grant_role(user, app, "operator")
    _, token = credentials.create_token(user, name="bench", actor=actor)

    key = keys.generate_private_key("EC_P256")
    serial = iter(range(10**9))

    def csr() -> bytes:
        name = f"c{next(serial)}.example.test"
        return pki_csr.build_csr(key, name, dns_names=[name]).public_bytes(Encoding.PEM)

    pool = [csr() for _ in range(N * ROUNDS * 5 + 200)]

    def issue(n: int) -> None:
        for _ in range(n):
            generation.request_started()
            found = attached_profile(app, "tls")
            assert found is not None
            submit(application=app, profile=found, method="api", actor=actor, csr=pool.pop())
            generation.request_finished()

    def batch(n: int) -> None:
        for _ in range(n // 100):
            found = attached_profile(app, "tls")
            assert found is not None
            asks = [Ask(csr=pool.pop()) for _ in range(100)]
            submit_many(application=app, profile=found, method="api", actor=actor, asks=asks)

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = "/api/v1/applications/bench/certificates/"

    def api(n: int) -> None:
        for _ in range(n):
            body = {"profile": "tls", "csr": pool.pop().decode()}
            response = client.post(url, body, content_type="application/json")
            assert response.status_code == 201, response.content

    def one_statement(on: bool, work: Callable[[int], None]) -> Callable[[int], None]:
        def run(n: int) -> None:
            saved = settings.CERTPORTAL_DB_ONE_STATEMENT_WRITES
            settings.CERTPORTAL_DB_ONE_STATEMENT_WRITES = on
            try:
                work(n)
            finally:
                settings.CERTPORTAL_DB_ONE_STATEMENT_WRITES = saved

        return run

    for on in (False, True):  # warm caches and connections
        one_statement(on, issue)(10)
        one_statement(on, api)(10)
        with CaptureQueriesContext(connection) as ctx:
            one_statement(on, issue)(1)
        verbs = ", ".join(q["sql"].split()[0] for q in ctx.captured_queries)
        print(f"one statement {'on' if on else 'off'}: queries per certificate: {verbs}")
    for title, work, n in (
        ("1. one certificate per call", issue, N),
        ("2. batches of 100", batch, max(N // 100, 1) * 100),
        ("3. API issue request", api, max(N // 3, 20)),
    ):
        variants = {
            "plain ORM": one_statement(False, work),
            "one statement": one_statement(True, work),
        }
        report(title, interleaved(variants, n), "plain ORM")
    print(describe())


if __name__ == "__main__":
    main()
