"""Sync push throughput to AWS Certificate Manager (moto's server) on PostgreSQL.

Usage: .venv/bin/python benchmarks/bench_syncs.py [CERTIFICATES]   (default 1000)

CERTIFICATES certificates with held P-256 keys are seeded through the pipeline and an
ACM sync is created for their profile (its items are planned at save). Then one worker
runs ``syncs.lifecycle.push_due`` until every item is synced: the wall time gives items
per second, and the time spent inside the backend's ``upsert`` (boto3 building, signing
and sending the ImportCertificate call, and moto answering it) against the rest (claim,
payload with the unsealed key, outcome and audit rows) gives the share of time in the
SDK versus the portal. moto runs on the same machine, so its CPU time counts as "SDK".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from _django import setup

DB = "certportal_bench_syncs"
MOTO_PORT = 18610


def start_moto() -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(MOTO_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{MOTO_PORT}/moto-api/", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("moto_server did not start")


def seed(count: int) -> Any:
    from applications.services import create_application
    from certportal.events import Actor
    from issuance.services import Ask, KeySpec, submit_many
    from profiles import services as ca
    from profiles.choices import Preset
    from syncs import services

    actor = Actor(label="bench")
    root = ca.create_root_ca(
        ca.CASpec(name="Bench Root", slug="bench-root", subject=ca.CASubject("Bench Root")),
        actor=actor,
    )
    profile = ca.create_profile(
        actor=actor,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=root,
        dns_rules=["*.example.test"],
    )
    app = create_application(name="bench", profiles=[profile], actor=actor)
    for start in range(0, count, 500):
        asks = [
            Ask(key_spec=KeySpec("EC_P256", f"h{i}.example.test", [f"h{i}.example.test"]))
            for i in range(start, min(start + 500, count))
        ]
        submit_many(application=app, profile=profile, method="ui", actor=actor, asks=asks)
    connection = services.save_connection(
        app,
        name="moto",
        kind="aws",
        credentials={"access_key_id": "bench", "secret_access_key": "bench"},
        config={"endpoint_url": f"http://127.0.0.1:{MOTO_PORT}"},
        actor=actor,
    )
    return services.save_sync(
        app,
        services.SyncSpec(
            name="acm",
            destination="aws-acm",
            connection=connection,
            profile=profile,
            options={"region": "us-east-1"},
        ),
        actor=actor,
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    os.environ["CERTPORTAL_OUTBOUND_ALLOW_PRIVATE"] = "true"  # moto is on loopback
    moto = start_moto()
    try:
        setup(DB)
        sync = seed(count)
        from syncs import lifecycle
        from syncs.backends import aws
        from syncs.models import SyncItem

        in_sdk = [0.0]
        upsert = aws.ACM.upsert

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return upsert(*args, **kwargs)
            finally:
                in_sdk[0] += time.perf_counter() - started

        aws.ACM.upsert = timed  # type: ignore[method-assign]
        started = time.perf_counter()
        pushed = lifecycle.push_due(limit=count)
        wall = time.perf_counter() - started
        synced = SyncItem.objects.filter(sync=sync, status="synced").count()
        sys.stdout.write(
            f"pushed {pushed} certificates to ACM (moto) in {wall:.1f} s: "
            f"{pushed / wall:.1f} items/s; synced {synced}/{count}\n"
            f"time in the SDK (incl. moto): {in_sdk[0]:.1f} s ({100 * in_sdk[0] / wall:.0f} %), "
            f"in the portal: {wall - in_sdk[0]:.1f} s ({100 * (wall - in_sdk[0]) / wall:.0f} %)\n"
        )
    finally:
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    main()
