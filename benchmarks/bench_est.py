"""EST simpleenroll against the REST API: the same CSR workload through both fronts of
one gunicorn, in the same run.

PostgreSQL (a throwaway database), a P-256 intermediate, one profile with an EST
enrollment (HTTP Basic) and an operator's API token. CSRs are made before the clock
starts. Each round issues BENCH_REQUESTS certificates through each front from
BENCH_CLIENTS keep-alive connections (in BENCH_CLIENT_PROCS processes); rounds alternate
which front goes first, and the median ratio EST / API is reported (target: 0.9 or
more). As deployed: Redis (REDIS_URL, default db 7; "" for none) and a django-q2 cluster
beside gunicorn (BENCH_NO_CLUSTER=1: the web tier alone). EST runs over plain HTTP here,
as it reaches the portal behind its TLS proxy.
"""

from __future__ import annotations

import base64
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

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.setdefault("CERTPORTAL_Q_NAME", f"bench-est-{os.getpid()}")

import _django
import _machine

DB = "certportal_bench_est"
PORT = int(os.environ.get("BENCH_PORT", "18480"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1500"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
CLIENT_PROCS = int(os.environ.get("BENCH_CLIENT_PROCS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
WARMUP = 200

Workload = tuple[str, dict[str, str], list[bytes], int]


def prepare() -> tuple[Workload, Workload]:
    """CA, profile, Application, an operator token and an EST credential; returns the
    API and EST workloads without their bodies."""
    from django.contrib.auth import get_user_model

    from applications.choices import Role
    from applications.services import create_application, set_member_role
    from certportal.api.services import create_token
    from certportal.events import Actor
    from issuance.est import services as est
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
    enrollment = est.save_enrollment(app, est.EnrollmentSpec(profile=profile), actor=actor)
    _, password = est.create_credential(enrollment, username="bench", actor=actor)
    basic = base64.b64encode(f"bench:{password}".encode()).decode()
    api: Workload = (
        "/api/v1/applications/bench-app/certificates/",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        [],
        201,
    )
    est_front: Workload = (
        f"/.well-known/est/{enrollment.label}/simpleenroll",
        {"Authorization": f"Basic {basic}", "Content-Type": "application/pkcs10"},
        [],
        200,
    )
    return api, est_front


def make_csrs(count: int, prefix: str) -> list[bytes]:
    """DER CSRs for distinct names, one key (signing the CSR is the client's cost)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from pki import csr, keys

    key = keys.generate_private_key("EC_P256")
    return [
        csr.build_csr(
            key, f"{prefix}{i}.bench.test", dns_names=[f"{prefix}{i}.bench.test"]
        ).public_bytes(Encoding.DER)
        for i in range(count)
    ]


def api_body(der: bytes) -> bytes:
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(der).decode()
    pem += "-----END CERTIFICATE REQUEST-----\n"
    return json.dumps({"profile": "bench", "csr": pem}).encode()


def est_body(der: bytes) -> bytes:
    return base64.encodebytes(der)


def _client_thread(work: Workload, out: list[float]) -> None:
    path, headers, bodies, expected = work
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    for body in bodies:
        start = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != expected:
            raise SystemExit(f"{path}: unexpected {response.status}")
        out.append(time.perf_counter() - start)


def _client_process(args: tuple[Workload, int]) -> list[float]:
    import threading

    (path, headers, bodies, expected), threads = args
    latencies: list[list[float]] = [[] for _ in range(threads)]
    workers = [
        threading.Thread(
            target=_client_thread,
            args=((path, headers, bodies[i::threads], expected), latencies[i]),
        )
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [x for part in latencies for x in part]


def run(work: Workload) -> tuple[float, list[float]]:
    path, headers, bodies, expected = work
    per_proc = CLIENTS // CLIENT_PROCS
    chunks = [
        ((path, headers, bodies[i::CLIENT_PROCS], expected), per_proc) for i in range(CLIENT_PROCS)
    ]
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


def with_bodies(work: Workload, bodies: list[bytes]) -> Workload:
    return (work[0], work[1], bodies, work[3])


def start_servers() -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "CERTPORTAL_API_RATE": "10000000/min",
        "CERTPORTAL_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "certportal.wsgi", "-c", "gunicorn.conf.py"],
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
    return [server, cluster]


def main() -> None:
    _django.setup(DB)
    api, est = prepare()
    total = WARMUP + REQUESTS * ROUNDS
    api_csrs = [api_body(d) for d in make_csrs(total, "a")]
    est_csrs = [est_body(d) for d in make_csrs(total, "e")]
    procs = start_servers()
    rates: dict[str, list[float]] = {"API": [], "EST": []}
    latencies: dict[str, list[float]] = {"API": [], "EST": []}
    try:
        wait_ready()
        run(with_bodies(api, api_csrs[:WARMUP]))
        run(with_bodies(est, est_csrs[:WARMUP]))
        for round_no in range(ROUNDS):
            part = slice(WARMUP + round_no * REQUESTS, WARMUP + (round_no + 1) * REQUESTS)
            order = [("API", api, api_csrs), ("EST", est, est_csrs)]
            for name, work, bodies in order if round_no % 2 == 0 else order[::-1]:
                elapsed, lat = run(with_bodies(work, bodies[part]))
                rates[name].append(len(lat) / elapsed)
                latencies[name] += lat
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    print(
        f"EST simpleenroll vs REST API issuance (CSR, P-256 intermediate, PostgreSQL, "
        f"Redis={'yes' if os.environ.get('REDIS_URL') else 'no'}, one gunicorn, {CLIENTS} "
        f"clients in {CLIENT_PROCS} processes, {REQUESTS} certificates per front and round, "
        f"{ROUNDS} rounds, cpus={os.cpu_count()})"
    )
    for name in ("API", "EST"):
        lat = sorted(latencies[name])
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(
            f"  {name}: " + ", ".join(f"{r:.0f}" for r in rates[name]) + " certificates/s "
            f"(median {statistics.median(rates[name]):.0f}); latency p50 "
            f"{statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
        )
    ratios = [e / a for e, a in zip(rates["EST"], rates["API"], strict=True)]
    print(
        "  EST / API per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f"; median {statistics.median(ratios):.2f} (target 0.90 or more)"
    )
    print(_machine.describe())


if __name__ == "__main__":
    main()
