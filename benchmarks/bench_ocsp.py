"""OCSP throughput: the portal against OpenSSL's own responder, same client, same run.

Usage: .venv/bin/python benchmarks/bench_ocsp.py [CERTIFICATES] [SECONDS]
       (defaults 2000 and 10; needs `wrk`: apt-get install wrk)

A P-256 root CA issues CERTIFICATES leaf certificates through the pipeline; every tenth
is revoked through the revocation service. The same CA certificate and key, and an
index.txt of the same serials and statuses, are given to `openssl ocsp -index ...
-multi 4` (the responder signs every answer with the CA key, as the portal does with
CERTPORTAL_OCSP_RESPONDER=ca, which this benchmark sets so both sign with one key).
The portal runs as deployed: gunicorn with 4 workers (gthread), PostgreSQL and Redis.

One load client, wrk (16 connections, 2 threads), POSTs nonce-free SHA-1 CertID requests
cycling through every serial, to each responder in turn for BENCH_ROUNDS rounds
(default 3, the order alternating). Before timing, one answer per status from each
responder is decoded and checked. Reported: each responder's requests per second, the
median ratio, and the CPU time per answer of each server side.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.setdefault("CERTPORTAL_Q_NAME", f"bench-ocsp-{os.getpid()}")
os.environ["CERTPORTAL_OCSP_RESPONDER"] = "ca"

import _django
import _machine

DB = "certportal_bench_ocsp"
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PORTAL_PORT = int(os.environ.get("BENCH_PORT", "8791"))
OPENSSL_PORT = PORTAL_PORT + 1
NGINX_PORT = PORTAL_PORT + 2
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))


def seed(folder: Path) -> tuple[str, list[bytes], dict[str, bytes]]:
    """Issue and revoke through the services; write the CA and index.txt for openssl.

    Returns the CA slug, the request bodies and one request per status (good, revoked)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from certportal.events import Actor
    from issuance.services import Ask, KeySpec, revoke, submit_many

    actor = Actor(label="bench")
    ca, profile, app = _django.root_profile_application("ocsp-bench")
    certificates: list[Any] = []
    for start in range(0, COUNT, 500):
        asks = [
            Ask(key_spec=KeySpec("EC_P256", f"h{i}.example.test", [f"h{i}.example.test"]))
            for i in range(start, min(start + 500, COUNT))
        ]
        results = submit_many(
            application=app, profile=profile, method="api", actor=actor, asks=asks
        )
        certificates.extend(result.certificate for result in results)  # type: ignore[union-attr]
    for certificate in certificates[::10]:
        revoke(certificate, reason="superseded", actor=actor)

    issuer = ca.issuer()
    (folder / "ca.pem").write_bytes(issuer.certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "ca.key").write_bytes(
        issuer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    from issuance.models import Certificate

    lines: list[str] = []
    bodies: list[bytes] = []
    sample: dict[str, bytes] = {}
    for row in Certificate.objects.filter(ca=ca).order_by("pk"):
        cert = row.as_x509()
        expiry = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
        if row.status == "revoked":
            assert row.revoked_at is not None
            revoked = row.revoked_at.strftime("%y%m%d%H%M%SZ") + "," + row.revocation_reason
            lines.append(
                f"R\t{expiry}\t{revoked}\t{row.serial_number}\tunknown\t/CN={row.common_name}"
            )
        else:
            lines.append(f"V\t{expiry}\t\t{row.serial_number}\tunknown\t/CN={row.common_name}")
        body = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer.certificate, hashes.SHA1())
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        bodies.append(body)
        sample.setdefault(row.status, body)
    (folder / "index.txt").write_text("\n".join(lines) + "\n")
    (folder / "index.txt.attr").write_text("unique_subject = no\n")
    del x509
    return ca.slug, bodies, sample


def check(url: str, sample: dict[str, bytes]) -> None:
    """One answer per status decodes and says what the database says."""
    from cryptography.x509 import ocsp

    expected = {"active": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED}
    for status, body in sample.items():
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/ocsp-request"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer = ocsp.load_der_ocsp_response(reply.read())
        assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL, (url, status)
        assert answer.certificate_status is expected[status], (
            url,
            status,
            answer.certificate_status,
        )


def wrk_scripts(folder: Path, bodies: list[bytes]) -> dict[str, Path]:
    """wrk scripts cycling through every request: POST bodies, and GET paths (RFC 5019:
    base64, URL-encoded, after the responder's path)."""

    def lua(data: bytes) -> str:
        return '"' + "".join(f"\\{b}" for b in data) + '"'

    post, get = folder / "post.lua", folder / "get.lua"
    post.write_text(
        "bodies = {" + ",\n".join(lua(b) for b in bodies) + "}\n"
        "counter = 0\n"
        'headers = {["Content-Type"] = "application/ocsp-request"}\n'
        "request = function()\n"
        "  counter = counter + 1\n"
        '  return wrk.format("POST", nil, headers, bodies[(counter % #bodies) + 1])\n'
        "end\n"
    )
    paths = [urllib.parse.quote(base64.b64encode(b).decode(), safe="") for b in bodies]
    get.write_text(
        "paths = {" + ",\n".join(f'"{p}"' for p in paths) + "}\n"
        "counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        '  return wrk.format("GET", wrk.path .. paths[(counter % #paths) + 1])\n'
        "end\n"
    )
    return {"POST": post, "GET": get}


class Nginx:
    """nginx in front of the portal, caching GET answers as their Cache-Control says
    (RFC 5019 6): the deployment the caching headers are for."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "cache").mkdir(exist_ok=True)
        (folder / "nginx.conf").write_text(
            f"""
user root;
worker_processes 2;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  proxy_cache_path {folder}/cache keys_zone=ocsp:10m;
  upstream portal {{ server 127.0.0.1:{PORTAL_PORT}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{NGINX_PORT};
    location /pki/ocsp/ {{
      proxy_pass http://portal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_cache ocsp;
    }}
  }}
}}
"""
        )

    def __enter__(self) -> int:
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(self.folder / "nginx.conf"), "-p", str(self.folder)]
        )
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", NGINX_PORT)) == 0:
                    return self.proc.pid
            time.sleep(0.05)
        raise SystemExit("nginx did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def load(url: str, script: Path, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{url} answered errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


class OpenSSLResponder:
    """`openssl ocsp -multi 4`, started afresh for each round: OpenSSL 3.0's responder
    children spin forever on a connection its client dropped mid-request, as wrk does
    to the connections in flight when it stops, and answer nothing after that."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> int:
        self.proc = subprocess.Popen(
            [
                "openssl",
                "ocsp",
                "-index",
                "index.txt",
                "-port",
                str(OPENSSL_PORT),
                "-rsigner",
                "ca.pem",
                "-rkey",
                "ca.key",
                "-CA",
                "ca.pem",
                "-nmin",
                "720",
                "-multi",
                "4",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip (with -multi it makes itself a process group leader)
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", OPENSSL_PORT)) == 0:
                    return self.proc.pid
            time.sleep(0.05)
        raise SystemExit("openssl ocsp did not start")

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # its children too
        self.proc.wait(timeout=30)


def wait_ready(url: str) -> None:
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not start")


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("bench_ocsp.py needs wrk (apt-get install wrk)")
    _django.setup(DB)
    folder = Path(tempfile.mkdtemp(prefix="bench-ocsp-"))
    started = time.perf_counter()
    slug, bodies, sample = seed(folder)
    elapsed = time.perf_counter() - started
    print(f"seeded {COUNT} certificates ({COUNT // 10} revoked) in {elapsed:.1f}s")
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{PORTAL_PORT}",
        "GUNICORN_WORKERS": "4",
        "CERTPORTAL_LOG_LEVEL": "WARNING",
    }
    portal = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "certportal.wsgi", "-c", "gunicorn.conf.py"],
        cwd=_django.ROOT,
        env=env,
    )
    scripts = wrk_scripts(folder, bodies)
    portal_url = f"http://127.0.0.1:{PORTAL_PORT}/pki/ocsp/{slug}"
    openssl_url = f"http://127.0.0.1:{OPENSSL_PORT}/"
    nginx_url = f"http://127.0.0.1:{NGINX_PORT}/pki/ocsp/{slug}/"
    # name: (method, URL, what serves it and whose CPU time counts)
    variants: dict[str, tuple[str, str, Callable[[], AbstractContextManager[int]]]] = {
        "openssl POST": ("POST", openssl_url, lambda: OpenSSLResponder(folder)),
        "certportal POST": ("POST", portal_url, lambda: contextlib.nullcontext(portal.pid)),
        "openssl GET": ("GET", openssl_url, lambda: OpenSSLResponder(folder)),
        "certportal GET": ("GET", portal_url + "/", lambda: contextlib.nullcontext(portal.pid)),
        "certportal GET via nginx": ("GET", nginx_url, lambda: Nginx(folder)),
    }
    try:
        wait_ready(f"http://127.0.0.1:{PORTAL_PORT}/healthz")
        time.sleep(0.5)
        with OpenSSLResponder(folder):
            check(openssl_url, sample)
        check(portal_url, sample)
        load(portal_url, scripts["POST"], 2)  # warm-up: every worker has its caches
        with Nginx(folder):
            load(nginx_url, scripts["GET"], 3)  # nginx's cache holds every answer
        print(_machine.describe())
        rates: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(ROUNDS):
            order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for name in order:
                method, url, serving = variants[name]
                with serving() as pid:
                    before = _machine.Processes.now()
                    rate = load(url, scripts[method], SECONDS)
                    after = _machine.Processes.now()
                spent = after.tree([pid]) - before.tree([pid])
                if name.startswith("certportal"):
                    if pid != portal.pid:  # nginx in front: count the portal too
                        spent += after.tree([portal.pid]) - before.tree([portal.pid])
                    spent += after.named("postgres") - before.named("postgres")
                    spent += after.named("redis-server") - before.named("redis-server")
                rates[name].append(rate)
                cpu[name].append(spent / (rate * SECONDS))
                print(f"  round {round_ + 1} {name}: {rate:.0f} answers/s")
    finally:
        portal.terminate()
        portal.wait(timeout=30)
    for name in variants:
        print(
            f"{name}: median {statistics.median(rates[name]):.0f} answers/s, "
            f"server CPU {statistics.median(cpu[name]) * 1e3:.3f} ms per answer"
        )
    for portal_name, openssl_name in (
        ("certportal POST", "openssl POST"),
        ("certportal GET", "openssl GET"),
        ("certportal GET via nginx", "openssl GET"),
    ):
        pairs = zip(rates[portal_name], rates[openssl_name], strict=True)
        ratio = statistics.median(ours / theirs for ours, theirs in pairs)
        print(f"ratio {portal_name} / {openssl_name} (median of {ROUNDS} rounds): {ratio:.2f}")


if __name__ == "__main__":
    main()
