"""nginx in front of the live portal, the way EST is deployed: it terminates TLS with a
trustme server certificate, asks for an optional client certificate of any issuer, and
passes it to the portal in X-SSL-Client-Cert. One nginx per module; the portal is
pytest-django's live server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HEADER = "X-SSL-Client-Cert"

NGINX_CONF = """
worker_processes 1;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  client_max_body_size 1m;
  # Bodies stay in memory: as root, nginx's workers run as nobody and cannot write into
  # the test's private temporary directory.
  client_body_buffer_size 1m;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {tmp}/server.pem;
    ssl_certificate_key {tmp}/server.key;
    ssl_verify_client optional_no_ca;
    location / {{
      proxy_pass {upstream};
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
    }}
  }}
}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("nginx exited at start (see stderr.log in its directory)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


@pytest.fixture(scope="module")
def tls_front(
    live_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """https://127.0.0.1:<free port> -> the live server; yields the base URL and the CA file."""
    import trustme

    for tool in ("nginx", "curl", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (scripts/setup.sh installs it)")
    tmp = tmp_path_factory.mktemp("nginx")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(tmp / "server.pem"))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(tmp / "server.pem"), append=True)
    server.private_key_pem.write_to_path(str(tmp / "server.key"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    port = _free_port()
    conf = NGINX_CONF.format(tmp=tmp, port=port, upstream=live_server.url)
    (tmp / "nginx.conf").write_text(conf)
    stderr = (tmp / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [
            "nginx",
            "-p",
            str(tmp),
            "-c",
            str(tmp / "nginx.conf"),
            "-g",
            f"daemon off; pid {tmp}/nginx.pid;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        _wait_for_port(port, proc)
        yield {"url": f"https://127.0.0.1:{port}", "ca": tmp / "ca.pem", "tmp": tmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.close()


@pytest.fixture(autouse=True)
def behind_nginx(settings: Any) -> None:
    settings.CERTPORTAL_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.CERTPORTAL_EST_CLIENT_CERT_HEADER = HEADER


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path
