"""ACME throughput, certportal against pebble, with the same client loop.

Usage: .venv/bin/python benchmarks/bench_acme.py [CERTS] [CONCURRENCY]  (default 60, 4)
BENCH_ONLY=certportal or BENCH_ONLY=pebble runs one side only. BENCH_ROUNDS (default 3)
repeats the pair, alternating which server runs first, and reports the median ratio: on
a shared 2-core machine one pair's ratio moves by 10-20% from run to run.

The loop (acme library): one account per worker; per certificate a new order for a new
name, http-01 answered from an in-process responder on 127.0.0.1:5002 and validated for
real by the server, short polling (50 ms) of authorization and order, finalize with a
fresh P-256 CSR, download. Both servers resolve names through the same in-process DNS
server. certportal: gunicorn with the project's gunicorn.conf.py (gthread;
GUNICORN_WORKERS=3, GUNICORN_THREADS=2 unless set) + a django-q2 cluster and the ACME
validation cluster (Redis broker, db 7; newOrder rate limits off) on a throwaway
PostgreSQL database; pebble: PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0
PEBBLE_AUTHZREUSE=0 (no reused authorizations: every certificate is validated).
Besides the rates it reports CPU time per certificate during the timed loop: the server's
(all its processes: gunicorn and the cluster, or pebble; PostgreSQL and Redis not
included) and this client's, steadier figures than the rates on a shared machine.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _machine import Processes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N = int(sys.argv[1]) if len(sys.argv) > 1 else 60
CONCURRENCY = int(sys.argv[2]) if len(sys.argv) > 2 else 4
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PORTAL = "127.0.0.1:8765"
POLL = 0.05


def _wait_http(url: str, timeout: float = 30, context: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2, context=context)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _client(directory_url: str, eab: tuple[str, str] | None, verify: bool) -> tuple[Any, Any]:
    import josepy as jose
    from acme import client, messages
    from cryptography.hazmat.primitives.asymmetric import ec

    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=verify, user_agent="bench")
    directory = client.ClientV2.get_directory(directory_url, net)
    acme = client.ClientV2(directory, net)
    binding = (
        messages.ExternalAccountBinding.from_data(key.public_key(), *eab, directory)
        if eab
        else None
    )
    acme.new_account(
        messages.NewRegistration.from_data(
            email="bench@example.test",
            terms_of_service_agreed=True,
            external_account_binding=binding,
        )
    )
    return acme, key


def _one_certificate(acme: Any, key: Any, name: str, answers: dict[str, str]) -> None:
    from acme import challenges, messages
    from cryptography.hazmat.primitives.serialization import Encoding

    from pki import csr as pki_csr
    from pki import keys

    csr = pki_csr.build_csr(keys.generate_private_key("EC_P256"), None, dns_names=[name])
    order = acme.new_order(csr.public_bytes(Encoding.PEM))
    for authzr in order.authorizations:
        challb = next(c for c in authzr.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challb.response_and_validation(key)
        answers[challb.chall.encode("token")] = validation
        acme.answer_challenge(challb, response)
        while True:
            authzr, _ = acme.poll(authzr)
            if authzr.body.status == messages.STATUS_VALID:
                break
            if authzr.body.status == messages.STATUS_INVALID:
                raise RuntimeError(f"{name}: authorization invalid {authzr.body}")
            time.sleep(POLL)
    order = acme.begin_finalization(order)
    while order.body.status not in (messages.STATUS_VALID, messages.STATUS_INVALID):
        time.sleep(POLL)
        body = messages.Order.from_json(acme._post_as_get(order.uri).json())
        order = order.update(body=body)
    if order.body.certificate is None:
        raise RuntimeError(f"{name}: order {order.body.status}")
    pem = acme._post_as_get(order.body.certificate)
    assert b"BEGIN CERTIFICATE" in pem.content


def run_loop(
    label: str,
    directory_url: str,
    eab: tuple[str, str] | None,
    verify: bool,
    server: list[subprocess.Popen],
) -> float:
    from issuance.acme.tests.support import http01_responder

    answers: dict[str, str] = {}
    clients = [_client(directory_url, eab, verify) for _ in range(CONCURRENCY)]
    run_id = int(time.time())

    def work(index: int) -> None:
        acme, key = clients[index % CONCURRENCY]
        _one_certificate(acme, key, f"{label}-{run_id}-{index}.example.test", answers)

    def worker(w: int) -> None:
        for i in range(N // CONCURRENCY):
            work(w + CONCURRENCY * i)

    with http01_responder(answers):
        work(-1)  # warm-up
        pids = [proc.pid for proc in server]
        server_cpu, client_cpu = Processes.now().tree(pids), time.process_time()
        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            # One client per thread: requests of one ClientNetwork are not thread-safe.
            list(pool.map(worker, range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
        server_cpu = Processes.now().tree(pids) - server_cpu
        client_cpu = time.process_time() - client_cpu
    done = (N // CONCURRENCY) * CONCURRENCY
    rate = done / elapsed
    print(
        f"{label}: {done} certificates in {elapsed:.1f} s = {rate:.1f} certificates/s; "
        f"CPU per certificate: server {server_cpu * 1000 / done:.1f} ms, "
        f"client (this process) {client_cpu * 1000 / done:.1f} ms"
    )
    return rate


def start_portal(
    env: dict[str, str], dns_address: str
) -> tuple[list[subprocess.Popen], str, tuple[str, str]]:
    db = "certportal_acme_bench"
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", db], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db], check=True)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}",
        REDIS_URL="redis://127.0.0.1:6379/7",
        CERTPORTAL_Q_NAME=f"bench-acme-{os.getpid()}",
        CERTPORTAL_Q_WORKERS=os.environ.get("CERTPORTAL_Q_WORKERS", "2"),
        CERTPORTAL_BASE_URL=f"http://{PORTAL}",
        CERTPORTAL_ACME_HTTP01_PORT="5002",
        CERTPORTAL_OUTBOUND_ALLOW_PRIVATE="true",
        CERTPORTAL_ACME_DNS_RESOLVER=dns_address,
        CERTPORTAL_LOG_LEVEL="WARNING",
        # A benchmark orders far faster than any client should: no ACME rate limits.
        CERTPORTAL_ACME_NEW_ORDER_RATE_PER_ACCOUNT="off",
        CERTPORTAL_ACME_NEW_ORDER_RATE_PER_APPLICATION="off",
    )
    python = sys.executable
    manage = str(ROOT / "manage.py")
    subprocess.run([python, manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    demo = json.loads(
        subprocess.run(
            [python, manage, "bootstrap_demo", "--json"],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
    )["acme"]
    gunicorn = str(Path(python).with_name("gunicorn"))
    procs = [
        subprocess.Popen(
            [
                gunicorn,
                os.environ.get("BENCH_WSGI", "certportal.wsgi"),
                "-b",
                PORTAL,
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "-w",
                os.environ.get("GUNICORN_WORKERS", "3"),
                "--threads",
                os.environ.get("GUNICORN_THREADS", "2"),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        ),
        subprocess.Popen(
            [python, manage, "qcluster"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
        ),
        subprocess.Popen(  # challenge validation has its own queue
            [python, manage, "qcluster"],
            env={**env, "Q_CLUSTER_NAME": f"{env['CERTPORTAL_Q_NAME']}-acme"},
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        ),
    ]
    _wait_http(demo["directory"])
    return procs, demo["directory"], (demo["eab_kid"], demo["eab_hmac"])


def start_pebble(tmp: Path, dns_address: str) -> tuple[subprocess.Popen, str]:
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = {
        "pebble": {
            "listenAddress": "127.0.0.1:14000",
            "managementListenAddress": "127.0.0.1:15000",
            "certificate": str(tmp / "cert.pem"),
            "privateKey": str(tmp / "key.pem"),
            "httpPort": 5002,
            "tlsPort": 5003,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (tmp / "pebble.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    proc = subprocess.Popen(
        ["pebble", "-config", str(tmp / "pebble.json"), "-dnsserver", dns_address],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    _wait_http("https://127.0.0.1:14000/dir", context=insecure)
    return proc, "https://127.0.0.1:14000/dir"


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    import base64

    import urllib3

    urllib3.disable_warnings()
    env = {
        **os.environ,
        "CERTPORTAL_KEK": base64.b64encode(os.urandom(32)).decode(),
        "CERTPORTAL_SECRET_KEY": "bench-" + base64.b64encode(os.urandom(24)).decode(),
        "DJANGO_SETTINGS_MODULE": "certportal.settings",
    }
    os.environ.update(
        CERTPORTAL_KEK=env["CERTPORTAL_KEK"], CERTPORTAL_SECRET_KEY=env["CERTPORTAL_SECRET_KEY"]
    )
    from issuance.acme.tests.support import DNSServer

    dns = DNSServer()
    print(
        f"{N} certificates per server, {CONCURRENCY} concurrent clients, http-01, "
        f"{POLL * 1000:.0f} ms polling"
    )
    only = os.environ.get("BENCH_ONLY", "")
    ratios = []
    for round_ in range(ROUNDS):
        if ROUNDS > 1:
            print(f"round {round_ + 1} of {ROUNDS}")
        # Alternate which server goes first, so neither always runs on a warmer machine.
        order = ["pebble", "certportal"] if round_ % 2 == 0 else ["certportal", "pebble"]
        rates = {name: _run(name, env, dns.address) for name in order if only in ("", name)}
        if len(rates) == 2:
            ratios.append(rates["certportal"] / rates["pebble"])
            print(f"certportal / pebble = {ratios[-1]:.2f}")
    if len(ratios) > 1:
        print(
            f"median certportal / pebble over {len(ratios)} rounds = "
            f"{statistics.median(ratios):.2f} (each: {', '.join(f'{r:.2f}' for r in ratios)})"
        )


def _run(name: str, env: dict[str, str], dns_address: str) -> float:
    """Start one server, run the timed loop against it, stop it; its rate."""
    if name == "pebble":
        with tempfile.TemporaryDirectory() as tmp:
            pebble, pebble_dir = start_pebble(Path(tmp), dns_address)
            try:
                return run_loop("pebble", pebble_dir, None, verify=False, server=[pebble])
            finally:
                stop([pebble])
    procs, directory, eab = start_portal(env, dns_address)
    try:
        return run_loop("certportal", directory, eab, verify=True, server=procs)
    finally:
        stop(procs)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
