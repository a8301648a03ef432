"""Service-level issuance throughput: CSRs against a P-256 intermediate on PostgreSQL.

Usage: .venv/bin/python benchmarks/bench_issuance.py [N]  (default 3000)
Measures, in one process, (1) issuance.services.submit(): one certificate per call, each
in its own transaction, as the protocol fronts do; (2) submit_many() in batches of 100,
as bulk issuance and renewal sweeps do. CSR generation happens before the clock starts.
"""

from __future__ import annotations

import statistics
import sys
import time

from _django import setup

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000


def main() -> None:
    setup("certportal_bench_issuance")
    from cryptography.hazmat.primitives.serialization import Encoding
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from applications.services import create_application
    from certportal.events import Actor
    from issuance.services import Ask, Submission, submit, submit_many
    from pki import csr as pki_csr
    from pki import keys
    from profiles import services
    from profiles.choices import Preset
    from profiles.models import CertificateProfile

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
    services.create_profile(
        actor=actor,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=inter,
        dns_rules=["*.example.test"],
    )
    profile = CertificateProfile.objects.select_related("issuing_ca").get(slug="tls")
    app = create_application(name="bench", profiles=[profile], actor=actor)

    print(f"generating {N} P-256 CSRs ...", flush=True)
    key = keys.generate_private_key("EC_P256")  # one key: CSR generation is not what we measure
    csrs = [
        pki_csr.build_csr(key, f"h{i}.example.test", dns_names=[f"h{i}.example.test"]).public_bytes(
            Encoding.PEM
        )
        for i in range(N)
    ]

    submit(application=app, profile=profile, method="api", actor=actor, csr=csrs[0])  # warm caches
    with CaptureQueriesContext(connection) as ctx:
        submit(application=app, profile=profile, method="api", actor=actor, csr=csrs[1])
    queries = len(ctx.captured_queries)

    latencies = []
    start = time.perf_counter()
    for csr in csrs[2:]:
        t0 = time.perf_counter()
        submit(application=app, profile=profile, method="api", actor=actor, csr=csr)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    issued = len(csrs) - 2
    latencies.sort()
    print(f"issued {issued} certificates in {elapsed:.2f} s: {issued / elapsed:.0f} certificates/s")
    print(
        f"latency p50 {statistics.median(latencies) * 1000:.2f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.2f} ms"
    )
    print(
        f"queries per certificate: {queries} (incl. BEGIN/COMMIT: "
        f"{', '.join(q['sql'].split()[0] for q in ctx.captured_queries)})"
    )

    single = issued / elapsed

    batch_csrs = [
        pki_csr.build_csr(key, f"b{i}.example.test", dns_names=[f"b{i}.example.test"]).public_bytes(
            Encoding.PEM
        )
        for i in range(N)
    ]
    start = time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        for i in range(0, N, 100):
            asks = [Ask(csr=c) for c in batch_csrs[i : i + 100]]
            results = submit_many(
                application=app, profile=profile, method="api", actor=actor, asks=asks
            )
            assert all(isinstance(r, Submission) and r.certificate for r in results)
    elapsed = time.perf_counter() - start
    print(
        f"batched, 100 per transaction: {N} certificates in {elapsed:.2f} s: "
        f"{N / elapsed:.0f} certificates/s, "
        f"{len(ctx.captured_queries) / N:.2f} queries per certificate"
    )
    print(f"SUMMARY single={single:.0f}/s batched={N / elapsed:.0f}/s")


if __name__ == "__main__":
    main()
