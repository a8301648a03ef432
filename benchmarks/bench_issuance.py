"""Service-level issuance throughput: CSRs against a P-256 intermediate on PostgreSQL.

Usage: .venv/bin/python benchmarks/bench_issuance.py [N]  (default 3000)
Measures issuance.services.submit() in one process, one certificate per call, each in
its own transaction (as the fronts do). CSR generation happens before the clock starts.
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
    from issuance.services import submit
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


if __name__ == "__main__":
    main()
