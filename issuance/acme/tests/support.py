"""Test peers for ACME: a DNS server, challenge responders and a JWS-signing client.

The DNS server answers A for every name with 127.0.0.1 (like pebble-challtestsrv's
default) and TXT from a dict, so the portal resolves http-01, tls-alpn-01 and dns-01
targets through CERTPORTAL_ACME_DNS_RESOLVER exactly as it would in production.
"""

from __future__ import annotations

import datetime
import http.server
import json
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import josepy as jose
from acme import jws as acme_jws
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HTTP01_PORT = 5002
TLSALPN01_PORT = 5003


class DNSServer:
    """A UDP DNS server on 127.0.0.1: A -> 127.0.0.1 for any name, AAAA from ``aaaa``, TXT
    from ``txt``; names in ``nxdomain`` do not exist, names in ``servfail`` fail."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.aaaa: dict[str, str] = {}
        self.nxdomain: set[str] = set()
        self.servfail: set[str] = set()
        records = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                query = dns.message.from_wire(data)
                response = dns.message.make_response(query)
                question = query.question[0]
                name = question.name.to_text().rstrip(".").lower()
                if name in records.nxdomain:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                elif name in records.servfail:
                    response.set_rcode(dns.rcode.SERVFAIL)
                elif question.rdtype == dns.rdatatype.AAAA and name in records.aaaa:
                    response.answer.append(
                        dns.rrset.from_text(question.name, 1, "IN", "AAAA", records.aaaa[name])
                    )
                elif question.rdtype == dns.rdatatype.A:
                    response.answer.append(
                        dns.rrset.from_text(question.name, 1, "IN", "A", "127.0.0.1")
                    )
                elif question.rdtype == dns.rdatatype.TXT and name in records.txt:
                    values = [f'"{v}"' for v in records.txt[name]]
                    response.answer.append(
                        dns.rrset.from_text_list(question.name, 1, "IN", "TXT", values)
                    )
                sock.sendto(response.to_wire(), self.client_address)

        self.server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ReusableHTTPServer(http.server.ThreadingHTTPServer):
    allow_reuse_address = True


@contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def http01_responder(responses: dict[str, str], port: int = HTTP01_PORT) -> Iterator[None]:
    """Serve /.well-known/acme-challenge/<token> from ``responses`` on 127.0.0.1:port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = self.path.rsplit("/", 1)[-1]
            body = responses.get(token)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = _ReusableHTTPServer(("127.0.0.1", port), Handler)
    with _serving(server):
        yield


@contextmanager
def http_routes(
    routes: dict[str, tuple[int, str]], port: int, *, tls: bool = False
) -> Iterator[None]:
    """Serve fixed answers on 127.0.0.1:port: path -> (status, Location or body); with tls,
    over HTTPS with a throwaway self-signed certificate."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, value = routes.get(self.path, (404, ""))
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", value)
            self.end_headers()
            if status < 300:
                self.wfile.write(value.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = _ReusableHTTPServer(("127.0.0.1", port), Handler)
    if tls:
        cert_pem, key_pem = tls_alpn_certificate("redirect.example.test", "unused")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "c.pem").write_bytes(cert_pem)
            (Path(tmp) / "k.pem").write_bytes(key_pem)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(Path(tmp) / "c.pem", Path(tmp) / "k.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with _serving(server):
        yield


def tls_alpn_certificate(
    identifier: str,
    key_auth: str,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
) -> tuple[bytes, bytes]:
    """The RFC 8737 proof certificate and key, PEM; ``extensions`` (extension, critical)
    replace its SAN and acmeIdentifier, to send a malformed one."""
    import hashlib

    from asn1crypto.core import OctetString

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme tls-alpn-01")])
    now = datetime.datetime.now(datetime.UTC)
    digest = OctetString(hashlib.sha256(key_auth.encode()).digest()).dump()
    if extensions is None:
        extensions = [
            (x509.SubjectAlternativeName([x509.DNSName(identifier)]), False),
            (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"), digest), True),
        ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@contextmanager
def tls_alpn01_responder(
    identifier: str,
    key_auth: str,
    port: int = TLSALPN01_PORT,
    extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
) -> Iterator[None]:
    """A TLS server that answers ALPN acme-tls/1 with the proof certificate (or one with
    the given ``extensions`` instead of its own)."""
    cert_pem, key_pem = tls_alpn_certificate(identifier, key_auth, extensions)
    with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
        cert_file.write(cert_pem)
        cert_file.flush()
        key_file.write(key_pem)
        key_file.flush()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file.name, key_file.name)
    context.set_alpn_protocols(["acme-tls/1"])

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with context.wrap_socket(self.request, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(("127.0.0.1", port), Handler)
    with _serving(server):
        yield


def sign(
    payload: dict[str, Any] | bytes | None,
    *,
    key: jose.JWK,
    alg: jose.JWASignature,
    url: str,
    nonce: str | None,
    kid: str | None = None,
) -> str:
    """A flattened JWS as ACME clients send it (acme library's JWS)."""
    if payload is None:
        raw = b""
    elif isinstance(payload, bytes):
        raw = payload
    else:
        raw = json.dumps(payload).encode()
    signed = acme_jws.JWS.sign(
        raw,
        key=key,
        alg=alg,
        nonce=jose.decode_b64jose(nonce) if nonce else None,
        url=url,
        kid=kid,
    )
    return signed.json_dumps()
