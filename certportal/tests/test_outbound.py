"""certportal.outbound: the address rules, and requests against real local servers
(pinned address, Host and SNI, no redirects, capped reads, bounded time)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certportal import outbound
from certportal.tests.test_settings import run_manage

REFUSED = [
    # IPv4
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.8", "IETF"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.1", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1, loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped 169.254.169.254, link-local"),
    ("::ffff:10.0.0.1", "IPv4-mapped 10.0.0.1, private"),
    ("::127.0.0.1", "IPv4-compatible 127.0.0.1, loopback"),
    ("::ffff:0:127.0.0.1", "IPv4-translated 127.0.0.1, loopback"),
    ("64:ff9b::7f00:1", "NAT64"),
    ("64:ff9b::808:808", "NAT64"),  # even to a public address: the translator is local
    ("64:ff9b:1::a00:1", "NAT64"),
    ("2002:7f00:1::1", "6to4 of 127.0.0.1, loopback"),
    ("2002:a9fe:a9fe::", "6to4 of 169.254.169.254, link-local"),
    ("2002:c0a8:101::1", "6to4 of 192.168.1.1, private"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:2::1", "IETF"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "discard-only"),
    ("5f00::1", "SRv6"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
NEVER = ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_every_internal_range_is_refused(address, reason):
    found = outbound.refusal(ipaddress.ip_address(address))
    assert found is not None
    assert reason in found.reason
    with pytest.raises(outbound.Refused, match="is not a public address"):
        outbound.check_address(ipaddress.ip_address(address), private_ok=False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert outbound.refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", NEVER)
def test_unspecified_multicast_and_broadcast_are_refused_even_in_a_lab(address):
    with pytest.raises(outbound.Refused):
        outbound.check_address(ipaddress.ip_address(address), private_ok=True)


def test_the_setting_allows_private_addresses(settings):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(outbound.Refused):
        outbound.check_address(ipaddress.ip_address("169.254.169.254"))
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    outbound.check_address(ipaddress.ip_address("169.254.169.254"))
    outbound.check_address(ipaddress.ip_address("::1"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://2130706433/", "not a host name"),
        ("http://0x7f.1/", "not a host name"),
        ("http://0x7f000001/", "not a host name"),
        ("http://0177.0.0.1/", "not a host name"),
        ("http://127.1/", "not a host name"),
        ("http://169.254.43518/", "not a host name"),
        ("http://127.0.0.1/", "loopback"),
        ("http://[::1]:8080/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped 127.0.0.1"),
        ("http://[0:0:0:0:0:ffff:7f00:1]/", "IPv4-mapped 127.0.0.1"),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data/", "IPv4-mapped 169.254.169.254"),
        ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
        ("http://[2002:a9fe:a9fe::1]/", "6to4 of 169.254.169.254"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://user:pass@example.com/", "user name or password"),
        ("http://example.com@127.0.0.1/", "user name or password"),
        ("http://127.0.0.1\\@example.com/", "backslashes"),
        ("http://example.com /", "spaces"),
        ("http://exa\nmple.com/", "control characters"),
        ("ftp://example.com/x", "Only http"),
        ("file:///etc/passwd", "Only http"),
        ("gopher://127.0.0.1:6379/_INFO", "Only http"),
        ("http://example.com:99999/", "port"),
        ("http:///path", "no host"),
        ("http://exa_mple..com/", "not a valid host name"),
    ],
)
def test_urls_are_refused_with_a_reason(url, reason, settings):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    problem = outbound.url_problem(url, resolve=lambda host: [ipaddress.ip_address("8.8.8.8")])
    assert problem is not None
    assert reason in problem


def test_a_name_is_refused_when_any_of_its_addresses_is_internal(settings):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    answers = {"mixed.example": ["8.8.8.8", "10.0.0.5"], "public.example": ["8.8.8.8"]}

    def resolve(host: str) -> list[outbound.IPAddress]:
        return [ipaddress.ip_address(a) for a in answers[host]]

    assert "10.0.0.5 is not a public address" in (
        outbound.url_problem("https://mixed.example/hook", resolve=resolve) or ""
    )
    assert outbound.url_problem("https://public.example/hook", resolve=resolve) is None


def test_a_name_the_system_resolves_to_loopback_is_refused(settings):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    assert "loopback" in (outbound.url_problem("http://localhost:8080/") or "")


def test_settings_alias_and_typed_parser(tmp_path):
    show = "from django.conf import settings; print(settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE)"
    base = {"CERTPORTAL_DEBUG": "1"}

    def value(**env: str) -> str:
        result = run_manage(tmp_path, "shell", "-c", show, **base, **env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    assert value() == "False"
    assert value(CERTPORTAL_OUTBOUND_ALLOW_PRIVATE="true") == "True"
    assert value(CERTPORTAL_ACME_ALLOW_PRIVATE="true") == "True"  # the former name
    assert (
        value(CERTPORTAL_ACME_ALLOW_PRIVATE="true", CERTPORTAL_OUTBOUND_ALLOW_PRIVATE="false")
        == "False"
    )
    bad = run_manage(tmp_path, "check", CERTPORTAL_OUTBOUND_ALLOW_PRIVATE="sometimes", **base)
    assert bad.returncode != 0
    assert "CERTPORTAL_OUTBOUND_ALLOW_PRIVATE='sometimes' is not a boolean" in bad.stderr


# --- Requests against real local servers --------------------------------------------------


@dataclass
class Seen:
    host: str
    path: str
    body: bytes


@dataclass
class Server:
    port: int
    seen: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


Behaviour = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def serve(behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    """A real HTTP(S) server on loopback; behaviour answers each request."""
    server_state = Server(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._record()

        def do_POST(self) -> None:
            self._record()

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            server_state.seen.append(Seen(self.headers.get("Host", ""), self.path, body))
            behaviour(self)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False  # a hanging handler must not hold up the test
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: server_state.sni.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    server_state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def loopback(host: str) -> list[outbound.IPAddress]:
    return [ipaddress.ip_address("127.0.0.1")]


@pytest.fixture
def lab(settings: Any) -> Any:
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = True
    return settings


def test_the_checked_address_is_used_with_the_name_in_the_host_header(lab):
    calls: list[str] = []

    def resolve_once_then_rebind(host: str) -> list[outbound.IPAddress]:
        calls.append(host)
        # A rebinding resolver: a second lookup would answer the metadata address.
        return [ipaddress.ip_address("127.0.0.1" if len(calls) == 1 else "169.254.169.254")]

    with serve(answer(204)) as server:
        response = outbound.request(
            "POST",
            f"http://hooks.example.test:{server.port}/a?b=c",
            body=b"{}",
            resolve=resolve_once_then_rebind,
        )
    assert response.status == 204
    assert calls == ["hooks.example.test"]
    assert server.seen == [Seen(f"hooks.example.test:{server.port}", "/a?b=c", b"{}")]


def test_a_redirect_is_refused_and_not_followed(lab):
    redirect = answer(302, headers={"Location": "http://169.254.169.254/"})
    with (
        serve(redirect) as server,
        pytest.raises(outbound.OutboundError, match=r"HTTP 302 .*redirects are refused"),
    ):
        outbound.request("GET", f"http://127.0.0.1:{server.port}/")
    assert len(server.seen) == 1


def test_an_oversized_answer_is_capped(lab):
    with serve(answer(200, b"x" * (1024 * 1024))) as server:
        response = outbound.request("GET", f"http://127.0.0.1:{server.port}/")
    assert len(response.body) == outbound.MAX_RESPONSE_BYTES
    assert response.truncated
    small = outbound.request
    with serve(answer(200, b"ok")) as server:
        assert small("GET", f"http://127.0.0.1:{server.port}/", max_body=2).truncated is False


def test_a_server_that_never_answers_times_out(lab):
    def hang(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(3)

    with serve(hang) as server:
        started = time.monotonic()
        with pytest.raises(outbound.OutboundError, match=r"did not answer within 0\.5 s"):
            outbound.request("GET", f"http://127.0.0.1:{server.port}/", read_timeout=0.5)
        assert time.monotonic() - started < 2.5


def test_a_server_that_dribbles_its_body_is_cut_off(lab):
    def dribble(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)

    with serve(dribble) as server:
        started = time.monotonic()
        with pytest.raises(outbound.OutboundError, match="did not finish answering in time"):
            outbound.request("GET", f"http://127.0.0.1:{server.port}/", read_timeout=0.5)
        assert time.monotonic() - started < 2.5


def test_a_closed_port_is_a_short_reason(lab):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(outbound.OutboundError, match=r"Cannot connect to http://127.0.0.1:\d+"):
        outbound.request("GET", f"http://127.0.0.1:{port}/")


def test_refused_before_any_connection_without_the_setting(settings):
    settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE = False
    with serve(answer(200)) as server:
        with pytest.raises(outbound.Refused, match="loopback"):
            outbound.request("GET", f"http://127.0.0.1:{server.port}/")
        with pytest.raises(outbound.Refused, match="loopback"):
            outbound.request("GET", f"http://hooks.example.test:{server.port}/", resolve=loopback)
    assert server.seen == []


def _tls_pair(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for name; a client that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


def test_https_to_the_pinned_address_sends_sni_and_checks_the_name(lab, tmp_path):
    server_tls, client_tls = _tls_pair(tmp_path, "hooks.example.test")
    with serve(answer(200), tls=server_tls) as server:
        response = outbound.request(
            "POST",
            f"https://hooks.example.test:{server.port}/x",
            body=b"{}",
            resolve=loopback,
            tls_context=client_tls,
        )
    assert response.status == 200
    assert server.sni == ["hooks.example.test"]
    assert server.seen[0].host == f"hooks.example.test:{server.port}"


def test_https_refuses_a_certificate_for_another_name(lab, tmp_path):
    server_tls, client_tls = _tls_pair(tmp_path, "other.example.test")
    with (
        serve(answer(200), tls=server_tls) as server,
        pytest.raises(outbound.OutboundError, match=r"TLS with https://hooks\.example\.test"),
    ):
        outbound.request(
            "GET",
            f"https://hooks.example.test:{server.port}/",
            resolve=loopback,
            tls_context=client_tls,
        )
    assert server.seen == []


def test_https_refuses_an_untrusted_certificate(lab, tmp_path):
    server_tls, _ = _tls_pair(tmp_path, "hooks.example.test")
    with (
        serve(answer(200), tls=server_tls) as server,
        pytest.raises(outbound.OutboundError, match="certificate"),
    ):
        outbound.request("GET", f"https://hooks.example.test:{server.port}/", resolve=loopback)
    assert server.seen == []
