"""Challenge checks (RFC 8555 8.3 http-01, 8.4 dns-01; RFC 8737 tls-alpn-01).

Ports and the resolver come from settings, never from the client; which addresses may be
reached is certportal.outbound's rule, as for every request the portal makes. Each check
returns None when the proof is right, or the ACME problem (type, detail) that says why not.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import Callable

import dns.exception
import dns.resolver
from asn1crypto.core import OctetString
from cryptography import x509
from django.conf import settings

from certportal import outbound
from issuance.acme import messages

ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
TIMEOUT = 10.0
MAX_BODY = 4096
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})

Failure = tuple[str, str] | None
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Refused(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _resolver() -> dns.resolver.Resolver:
    configured = settings.CERTPORTAL_ACME_DNS_RESOLVER
    if not configured:
        return dns.resolver.Resolver()
    host, _, port = configured.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host.strip("[]")]
    resolver.port = int(port)
    resolver.lifetime = TIMEOUT
    return resolver


def resolve_addresses(name: str) -> list[IPAddress]:
    """The addresses to contact for an identifier, through the configured resolver."""
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        pass
    addresses: list[IPAddress] = []
    if not settings.CERTPORTAL_ACME_DNS_RESOLVER:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise _Refused("dns", f"{name} does not resolve: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    else:
        resolver = _resolver()
        for rdtype in ("A", "AAAA"):
            try:
                addresses += [
                    ipaddress.ip_address(r.to_text()) for r in resolver.resolve(name, rdtype)
                ]
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                raise _Refused("dns", f"Looking up {name} failed: {exc}") from exc
    if not addresses:
        raise _Refused("dns", f"{name} has no A or AAAA record.")
    return list(dict.fromkeys(addresses))


def _reachable(identifier: str) -> list[IPAddress]:
    """The identifier's addresses from the configured resolver, each held to the outbound
    rules (certportal.outbound): one internal address refuses the identifier."""
    try:
        return outbound.checked_addresses(identifier, resolve=resolve_addresses)
    except outbound.OutboundError as exc:
        raise _Refused("connection", str(exc)) from exc


def _checked(check: Callable[[], Failure]) -> Failure:
    try:
        return check()
    except _Refused as refused:
        return (refused.kind, refused.detail)


def http01(identifier: str, token: str, key_auth: str) -> Failure:
    return _checked(lambda: _http01(identifier, token, key_auth))


def _http01(identifier: str, token: str, key_auth: str) -> Failure:
    """Fetch the key authorization, following at most MAX_REDIRECTS redirects (RFC 8555
    8.3 lets the server follow them; as Let's Encrypt does: http or https only, on the
    ports settings name, each new host resolved and checked like the first)."""
    port = settings.CERTPORTAL_ACME_HTTP01_PORT
    url = urllib.parse.urlsplit(
        f"http://{_url_host(identifier)}:{port}/.well-known/acme-challenge/{token}"
    )
    for _ in range(MAX_REDIRECTS + 1):
        status, location, body = _fetch(url)
        if status in REDIRECTS and location:
            url = _redirect_target(url, location)
            continue
        if status != 200:
            return ("unauthorized", f"http-01 answer had HTTP status {status}.")
        if body.strip().decode(errors="replace") != key_auth:
            return ("unauthorized", "http-01 answer is not the key authorization.")
        return None
    return ("connection", f"More than {MAX_REDIRECTS} redirects.")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _redirect_target(current: urllib.parse.SplitResult, location: str) -> urllib.parse.SplitResult:
    target = urllib.parse.urlsplit(urllib.parse.urljoin(current.geturl(), location.strip()))
    ports = {
        "http": settings.CERTPORTAL_ACME_HTTP01_PORT,
        "https": settings.CERTPORTAL_ACME_TLSALPN01_PORT,
    }
    if target.scheme not in ports:
        raise _Refused("connection", f"Redirect to {target.scheme or 'a relative'} URL refused.")
    try:
        port = target.port or (80 if target.scheme == "http" else 443)
    except ValueError as exc:
        raise _Refused("connection", "Redirect to a malformed URL refused.") from exc
    if not target.hostname or port != ports[target.scheme]:
        raise _Refused("connection", f"Redirect to {target.scheme} port {port} refused.")
    return target


def _fetch(url: urllib.parse.SplitResult) -> tuple[int, str, bytes]:
    """GET url through certportal.outbound: the host resolved with the configured resolver,
    every address checked, the connection made to a checked one. A redirect comes back
    to _http01, which checks the next hop the same way. The certificate of an https hop
    is not checked: the proof is the body (as Let's Encrypt does)."""
    try:
        answer = outbound.request(
            "GET",
            url.geturl(),
            headers={"User-Agent": "certportal-acme"},
            resolve=resolve_addresses,
            verify=False,
            redirects_ok=True,
            max_body=MAX_BODY,
            connect_timeout=TIMEOUT,
            read_timeout=TIMEOUT,
        )
    except outbound.OutboundError as exc:
        raise _Refused("connection", str(exc)) from exc
    return answer.status, answer.location, answer.body


def dns01(identifier: str, key_auth: str) -> Failure:
    return _checked(lambda: _dns01(identifier, key_auth))


def _dns01(identifier: str, key_auth: str) -> Failure:
    name = f"_acme-challenge.{identifier.removeprefix('*.')}"
    try:
        answer = _resolver().resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ("unauthorized", f"No TXT record at {name}.")
    except dns.exception.DNSException as exc:
        return ("dns", f"Looking up TXT {name} failed: {exc}")
    expected = messages.dns01_txt(key_auth)
    found = {b"".join(r.strings).decode(errors="replace") for r in answer}
    if expected not in found:
        return ("unauthorized", f"No TXT record at {name} holds the expected digest.")
    return None


def tls_alpn01(identifier: str, key_auth: str) -> Failure:
    return _checked(lambda: _tls_alpn01(identifier, key_auth))


def _tls_alpn01(identifier: str, key_auth: str) -> Failure:
    port = settings.CERTPORTAL_ACME_TLSALPN01_PORT
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the self-signed proof certificate is the point
    context.set_alpn_protocols(["acme-tls/1"])
    server_name = _sni(identifier)
    last: Failure = ("connection", f"No address of {identifier} answered.")
    for address in _reachable(identifier):
        try:
            with (
                socket.create_connection((str(address), port), timeout=TIMEOUT) as raw,
                context.wrap_socket(raw, server_hostname=server_name) as tls,
            ):
                protocol = tls.selected_alpn_protocol()
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as exc:
            last = ("connection", f"TLS to {address}:{port} failed: {exc}")
            continue
        if protocol != "acme-tls/1" or not der:
            return ("unauthorized", "The server did not negotiate acme-tls/1.")
        return _check_alpn_certificate(der, identifier, key_auth)
    return last


def _sni(identifier: str) -> str:
    try:
        return ipaddress.ip_address(identifier).reverse_pointer
    except ValueError:
        return identifier


def _check_alpn_certificate(der: bytes, identifier: str, key_auth: str) -> Failure:
    """RFC 8737 3: one SAN, the identifier; a critical acmeIdentifier extension holding
    the key authorization's SHA-256 as a DER OCTET STRING and nothing after it. The
    certificate comes from whoever answers: anything malformed is a failed proof."""
    try:
        cert = x509.load_der_x509_certificate(der)
        extensions = cert.extensions  # parsed here: a malformed or repeated one raises
    except ValueError as exc:
        return ("unauthorized", f"The tls-alpn-01 certificate cannot be read: {exc}")
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ext = extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except x509.ExtensionNotFound:
        return ("unauthorized", "The certificate lacks a SAN or the acmeIdentifier extension.")
    names = [
        *(name.lower() for name in san.get_values_for_type(x509.DNSName)),
        *map(str, san.get_values_for_type(x509.IPAddress)),
    ]
    if names != [identifier] or len(list(san)) != 1:
        return ("unauthorized", "The certificate must name exactly the identifier.")
    if not ext.critical:
        return ("unauthorized", "The acmeIdentifier extension must be critical.")
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    try:
        digest = OctetString.load(raw, strict=True).native
    except ValueError:
        return ("unauthorized", "The acmeIdentifier extension is not one DER OCTET STRING.")
    if digest != messages.tls_alpn01_digest(key_auth):
        return ("unauthorized", "The acmeIdentifier digest is not that of the key authorization.")
    return None
