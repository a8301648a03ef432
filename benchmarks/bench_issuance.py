"""Service-level issuance throughput: CSRs against a P-256 intermediate on PostgreSQL.

Usage: .venv/bin/python benchmarks/bench_issuance.py [N]  (default 3000)

Measures, in one process, what a protocol front pays per certificate:
``attached_profile()`` (the profile, its CA, the attachment and whether approval
policies exist: one query) then ``submit()`` (its four rows in one statement):
 1. sequentially, one certificate per call;
 2. from BENCH_THREADS threads (default 4) of this one process, one certificate per call,
    as a threaded web worker does; PostgreSQL commits them in groups;
 3. ``submit_many()`` in batches of 100, as bulk issuance and renewal sweeps do.
Each call runs in a web request's scope for the configuration generation (read from
Redis once per request, certportal.generation). CSR generation happens before the
clock starts. REDIS_URL (default
redis://127.0.0.1:6379/6, "" for none) is the broker that takes the after-commit
outbox dispatch, as in a PostgreSQL deployment; without it the ORM broker does.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
os.environ.setdefault("CERTPORTAL_Q_NAME", f"bench-issuance-{os.getpid()}")

from _django import setup
from _machine import Processes, cpu_ticks, describe, stolen

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
THREADS = int(os.environ.get("BENCH_THREADS", "4"))


def main() -> None:
    setup("certportal_bench_issuance")
    from cryptography.hazmat.primitives.serialization import Encoding
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from applications.services import create_application
    from certportal import generation
    from certportal.events import Actor
    from issuance.services import Ask, Submission, attached_profile, submit, submit_many
    from pki import csr as pki_csr
    from pki import keys
    from profiles import services
    from profiles.choices import Preset

    actor = Actor(label="bench")
    root = services.create_root_ca(
        services.CASpec(
            name="Bench Root",
            slug="bench-root",
            subject=services.CASubject("Bench Root"),
            path_length=1,
        ),
        actor=actor,
    )
    inter = services.create_intermediate_ca(
        services.CASpec(
            name="Bench Inter", slug="bench-inter", subject=services.CASubject("Bench Inter")
        ),
        parent=root,
        actor=actor,
    )
    profile = services.create_profile(
        actor=actor,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=inter,
        dns_rules=["*.example.test"],
    )
    app = create_application(name="bench", profiles=[profile], actor=actor)

    print(f"generating {3 * N} P-256 CSRs ...", flush=True)
    key = keys.generate_private_key("EC_P256")  # one key: CSR generation is not what we measure

    def csrs(prefix: str) -> list[bytes]:
        return [
            pki_csr.build_csr(
                key, f"{prefix}{i}.example.test", dns_names=[f"{prefix}{i}.example.test"]
            ).public_bytes(Encoding.PEM)
            for i in range(N)
        ]

    sequential, threaded, batched = csrs("s"), csrs("t"), csrs("b")

    def issue(csr: bytes) -> float:
        t0 = time.perf_counter()
        generation.request_started()  # as in a web request: the generation is read once
        found = attached_profile(app, "tls")
        assert found is not None
        submit(application=app, profile=found, method="api", actor=actor, csr=csr)
        generation.request_finished()
        return time.perf_counter() - t0

    issue(sequential[0])  # warm caches and prepared statements
    with CaptureQueriesContext(connection) as ctx:
        issue(sequential[1])
    verbs = [q["sql"].split()[0] for q in ctx.captured_queries]
    redis = bool(os.environ.get("REDIS_URL"))
    print(
        f"broker: {'Redis' if redis else 'ORM'}; "
        f"queries per certificate: {len(verbs)} ({', '.join(verbs)}); the outbox dispatch "
        + ("is queued in Redis, coalesced" if redis else "is the last INSERT (ORM broker)")
    )

    ticks, server = cpu_ticks(), Processes.now().named("postgres")
    cpu, start = time.process_time(), time.perf_counter()
    latencies = [issue(csr) for csr in sequential[2:]]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    server = Processes.now().named("postgres") - server
    count = len(latencies)
    latencies.sort()
    single = count / elapsed
    print(
        f"1. sequential: {count} certificates in {elapsed:.2f} s: {single:.0f} certificates/s; "
        f"p50 {statistics.median(latencies) * 1000:.2f} ms, "
        f"p99 {latencies[int(count * 0.99)] * 1000:.2f} ms; "
        f"CPU per certificate {cpu / count * 1000:.2f} ms, "
        f"PostgreSQL {server / count * 1000:.2f} ms"
    )

    local = threading.local()

    def threaded_issue(csr: bytes) -> float:
        if not hasattr(local, "warm"):
            local.warm = True
        return issue(csr)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(threaded_issue, threaded[:THREADS]))  # each thread's connection
        start = time.perf_counter()
        latencies = list(pool.map(threaded_issue, threaded[THREADS:]))
        elapsed = time.perf_counter() - start
        pool.submit(connection.close)  # threads' connections close with the pool
    count = len(latencies)
    latencies.sort()
    concurrent = count / elapsed
    print(
        f"2. {THREADS} threads: {count} certificates in {elapsed:.2f} s: "
        f"{concurrent:.0f} certificates/s; p50 {statistics.median(latencies) * 1000:.2f} ms, "
        f"p99 {latencies[int(count * 0.99)] * 1000:.2f} ms"
    )

    start = time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        for i in range(0, N, 100):
            asks = [Ask(csr=c) for c in batched[i : i + 100]]
            found = attached_profile(app, "tls")
            assert found is not None
            results = submit_many(
                application=app, profile=found, method="api", actor=actor, asks=asks
            )
            assert all(isinstance(r, Submission) and r.certificate for r in results)
    elapsed = time.perf_counter() - start
    bulk = N / elapsed
    print(
        f"3. batches of 100: {N} certificates in {elapsed:.2f} s: {bulk:.0f} certificates/s, "
        f"{len(ctx.captured_queries) / N:.2f} queries per certificate"
    )
    print(f"the host stole {stolen(ticks, cpu_ticks())} of the machine's CPU time")
    print(f"SUMMARY sequential={single:.0f}/s threads={concurrent:.0f}/s batched={bulk:.0f}/s")
    print(describe())


if __name__ == "__main__":
    main()
