"""API load: concurrent clients issue certificates from CSRs over HTTP against gunicorn.

PostgreSQL (a throwaway database), a P-256 intermediate, one operator token. CSRs are
made before the clock starts so the client's key generation is not measured; the client
runs in separate processes with keep-alive connections. Reports certificates/s and
p50/p99 latency. As deployed with PostgreSQL: Redis (REDIS_URL, default db 6; "" for
none) for cache, throttling and the broker, and a django-q2 cluster running beside
gunicorn (it drains the outbox the issuances write). Knobs: BENCH_REQUESTS,
BENCH_CLIENTS, BENCH_CLIENT_PROCS, GUNICORN_WORKERS, GUNICORN_THREADS, BENCH_NO_CLUSTER=1
(no cluster: the web tier alone).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
os.environ.setdefault("CERTPORTAL_Q_NAME", f"bench-api-{os.getpid()}")

import _django
import _machine

DB = "certportal_bench_api"
PORT = int(os.environ.get("BENCH_PORT", "8765"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "6000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
CLIENT_PROCS = int(os.environ.get("BENCH_CLIENT_PROCS", "2"))
WARMUP = 300


def prepare() -> tuple[str, str]:
    """CA, profile, Application, an operator with a token; returns (url path, token)."""
    from django.contrib.auth import get_user_model

    from applications.choices import Role
    from applications.services import create_application, set_member_role
    from certportal.api.services import create_token
    from certportal.events import Actor
    from profiles import services as ca

    actor = Actor(label="bench")
    root = ca.create_root_ca(
        ca.CASpec(name="Bench root", slug="bench-root", subject=ca.CASubject("Bench root")),
        actor=actor,
    )
    issuing = ca.create_intermediate_ca(
        ca.CASpec(name="Bench issuing", slug="bench-issuing", subject=ca.CASubject("Bench I")),
        parent=root,
        actor=actor,
    )
    profile = ca.create_profile(
        actor=actor,
        preset="tls_server",
        name="bench",
        slug="bench",
        issuing_ca=issuing,
        dns_rules=["*.bench.test"],
    )
    app = create_application(name="bench-app", profiles=[profile], actor=actor)
    user = get_user_model().objects.create_user("bench-operator")
    set_member_role(app, user, Role.OPERATOR, actor=actor)
    _, token = create_token(user, name="bench", actor=actor)
    return "/api/v1/applications/bench-app/certificates/", token


def make_csrs(count: int) -> list[str]:
    from cryptography.hazmat.primitives.serialization import Encoding

    from pki import csr, keys

    key = keys.generate_private_key("EC_P256")  # one key: CSR signing cost is client-side
    return [
        csr.build_csr(key, f"h{i}.bench.test", dns_names=[f"h{i}.bench.test"])
        .public_bytes(Encoding.PEM)
        .decode()
        for i in range(count)
    ]


def _client_thread(path: str, token: str, bodies: list[bytes], out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in bodies:
        start = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise SystemExit(f"unexpected {response.status}")
        out.append(time.perf_counter() - start)


def _client_process(args: tuple[str, str, list[bytes], int]) -> list[float]:
    import threading

    path, token, bodies, threads = args
    latencies: list[list[float]] = [[] for _ in range(threads)]
    workers = [
        threading.Thread(
            target=_client_thread, args=(path, token, bodies[i::threads], latencies[i])
        )
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [x for part in latencies for x in part]


def run(path: str, token: str, csrs: list[str]) -> tuple[float, list[float]]:
    bodies = [json.dumps({"profile": "bench", "csr": c}).encode() for c in csrs]
    per_proc = CLIENTS // CLIENT_PROCS
    chunks = [(path, token, bodies[i::CLIENT_PROCS], per_proc) for i in range(CLIENT_PROCS)]
    with multiprocessing.get_context("fork").Pool(CLIENT_PROCS) as pool:
        start = time.perf_counter()
        results = pool.map(_client_process, chunks)
        elapsed = time.perf_counter() - start
    return elapsed, [x for part in results for x in part]


def wait_ready() -> None:
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def main() -> None:
    _django.setup(DB)
    path, token = prepare()
    csrs = make_csrs(REQUESTS + WARMUP)
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "CERTPORTAL_API_RATE": "10000000/min",
        "CERTPORTAL_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            os.environ.get("BENCH_WSGI", "certportal.wsgi"),
            "-c",
            "gunicorn.conf.py",
        ],
        cwd=_django.ROOT,
        env=env,
    )
    cluster = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "qcluster" if not os.environ.get("BENCH_NO_CLUSTER") else "check",
        ],
        cwd=_django.ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready()
        run(path, token, csrs[:WARMUP])
        before, ticks = _machine.Processes.now(), _machine.cpu_ticks()
        elapsed, latencies = run(path, token, csrs[WARMUP:])
        after, stolen = _machine.Processes.now(), _machine.stolen(ticks, _machine.cpu_ticks())
    finally:
        for proc in (server, cluster):
            proc.terminate()
        for proc in (server, cluster):
            proc.wait(timeout=30)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"API issuance (CSR, P-256 intermediate, PostgreSQL, "
        f"Redis={'yes' if os.environ.get('REDIS_URL') else 'no'}, gunicorn "
        f"workers={os.environ.get('GUNICORN_WORKERS', 'auto')} "
        f"threads={os.environ.get('GUNICORN_THREADS', '2')}, {CLIENTS} clients in "
        f"{CLIENT_PROCS} processes, cpus={os.cpu_count()})"
    )
    print(
        f"  {len(latencies)} certificates in {elapsed:.2f} s: "
        f"{len(latencies) / elapsed:.0f} certificates/s; "
        f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    count = len(latencies)
    spent = {
        "gunicorn": after.tree([server.pid]) - before.tree([server.pid]),
        "PostgreSQL": after.named("postgres") - before.named("postgres"),
        "Redis": after.named("redis-server") - before.named("redis-server"),
        "q2 cluster": after.tree([cluster.pid]) - before.tree([cluster.pid]),
    }
    busy = sum(spent.values()) / ((os.cpu_count() or 1) * elapsed)
    print(
        "  CPU per certificate: "
        + ", ".join(f"{name} {cpu * 1000 / count:.2f} ms" for name, cpu in spent.items())
        + f" (clients not counted; these use {busy:.0%} of the machine; "
        f"the host stole {stolen} of its CPU time)"
    )
    print(_machine.describe())


if __name__ == "__main__":
    main()
