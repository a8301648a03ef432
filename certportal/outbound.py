"""Requests from the portal to other hosts: alert channels, the ACME validator, syncs.

The portal runs inside networks its users do not control, and an Application Admin
chooses the URLs it fetches. Every such request goes through here so one set of rules
holds everywhere:

- only http and https URLs, without a user name or password and without ambiguous
  numeric host forms (``2130706433``, ``0x7f.1``) that resolvers read differently;
- the host is resolved once, and every address it resolves to must be allowed (see
  ``refusal``: loopback, private, link-local, CGNAT, multicast, reserved and documentation
  ranges, and IPv6 forms that embed or translate to such an IPv4 address are not),
  unless CERTPORTAL_OUTBOUND_ALLOW_PRIVATE is set for a lab or a test;
- the connection goes to an address that was checked (the name is not resolved a second
  time, so DNS rebinding cannot swap it), with the URL's host in the Host header, as the
  TLS SNI and for certificate verification;
- no redirect is followed, connect and read time are bounded and at most ``max_body``
  bytes of the answer are read.

Errors carry a short reason that is safe to show or store (never the peer's body); a
caller that parses an answer (the ACME validator, a sync backend) reads ``Response.body``
and never puts it on a page or in a log.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import urllib3
from django.conf import settings
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InsecureRequestWarning,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Sequence[IPAddress]]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 64 * 1024
_CHUNK = 8192
# Every address is checked; only the first few are tried, so a long DNS answer cannot
# multiply the connect timeout.
MAX_ADDRESSES_TRIED = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class OutboundError(Exception):
    """A request was not made or did not succeed; str() is a short reason to show."""


class Refused(OutboundError):
    """The URL, or an address its host resolves to, may not be reached."""


class Unresolvable(OutboundError):
    """The host has no address (or the lookup failed)."""


# (network, what it is, refused even when private targets are allowed)
_V4 = [
    ("0.0.0.0/8", "unspecified", True),
    ("10.0.0.0/8", "private", False),
    ("100.64.0.0/10", "shared (CGNAT)", False),
    ("127.0.0.0/8", "loopback", False),
    ("169.254.0.0/16", "link-local", False),
    ("172.16.0.0/12", "private", False),
    ("192.0.0.0/24", "IETF protocol assignment", False),
    ("192.0.2.0/24", "documentation", False),
    ("192.88.99.0/24", "6to4 relay anycast", False),
    ("192.168.0.0/16", "private", False),
    ("198.18.0.0/15", "benchmarking", False),
    ("198.51.100.0/24", "documentation", False),
    ("203.0.113.0/24", "documentation", False),
    ("224.0.0.0/4", "multicast", True),
    ("240.0.0.0/4", "reserved", True),  # with 255.255.255.255, the broadcast address
]
_V6 = [
    ("::/128", "unspecified", True),
    ("::1/128", "loopback", False),
    ("64:ff9b::/96", "NAT64", False),
    ("64:ff9b:1::/48", "NAT64 (local use)", False),
    ("100::/64", "discard-only", False),
    ("2001::/32", "Teredo", False),
    ("2001:db8::/32", "documentation", False),
    ("2001::/23", "IETF protocol assignment", False),
    ("3fff::/20", "documentation", False),
    ("5f00::/16", "SRv6", False),
    ("fc00::/7", "unique local (private)", False),
    ("fe80::/10", "link-local", False),
    ("fec0::/10", "site-local", False),
    ("ff00::/8", "multicast", True),
]
_RANGES: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str, bool]] = [
    (ipaddress.ip_network(net), what, always) for net, what, always in _V4 + _V6
]
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 2765)


@dataclass(frozen=True)
class Refusal:
    """Why an address is not reached; ``always``: not even when private targets are allowed
    (no TCP peer lives there)."""

    reason: str
    always: bool = False


def refusal(address: IPAddress) -> Refusal | None:
    """Why the address is not a public unicast address, or None when it is."""
    embedded = _embedded_v4(address)
    if embedded is not None:
        inner = refusal(embedded[1])
        if inner is None:
            return None
        return Refusal(f"{embedded[0]} {embedded[1]}, {inner.reason}", inner.always)
    for network, what, always in _RANGES:
        if address.version == network.version and address in network:
            return Refusal(what, always)
    if not address.is_global:
        return Refusal("reserved")
    return None


def _embedded_v4(address: IPAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form carries and reaches (mapped, compatible, 6to4, SIIT)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4 of", address.sixtofour
    if address in _V4_TRANSLATED:
        return "IPv4-translated", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _V4_COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves
        return "IPv4-compatible", ipaddress.IPv4Address(int(address))
    return None


def allow_private() -> bool:
    return bool(settings.CERTPORTAL_OUTBOUND_ALLOW_PRIVATE)


def check_address(address: IPAddress, *, private_ok: bool | None = None) -> None:
    """Raise Refused unless the address may be reached."""
    found = refusal(address)
    if found is None:
        return
    if found.always or not (allow_private() if private_ok is None else private_ok):
        raise Refused(f"{address} is not a public address ({found.reason}).")


# --- URLs and hosts ---------------------------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")


@dataclass(frozen=True)
class Target:
    """A parsed, policy-checked URL (addresses are filled in by ``resolve_target``)."""

    scheme: str
    host: str  # lower-case name, or an IP address without brackets
    port: int
    path: str  # path and query, never empty
    addresses: tuple[IPAddress, ...] = ()

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def display(self) -> str:
        """scheme://host[:port], for reasons (the path may hold a secret, as Slack's does)."""
        return f"{self.scheme}://{self.host_header}"


def parse_url(url: str) -> Target:
    """Check the URL's form; raise Refused with the reason it cannot be used."""
    if _UNSAFE.search(url):
        raise Refused("The URL contains spaces, control characters or backslashes.")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused("Only http:// and https:// URLs can be used.")
    if "@" in parts.netloc:
        raise Refused("A URL with a user name or password cannot be used.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise Refused("The URL's port is not a number from 1 to 65535.") from exc
    host = _host(parts.hostname or "")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path)


def _host(raw: str) -> str:
    if not raw:
        raise Refused("The URL has no host.")
    literal = _ip_literal(raw)
    if literal is not None:
        return str(literal)
    labels = raw.rstrip(".").split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        # inet_aton reads 2130706433, 0x7f.1 and 0177.0.0.1 as 127.0.0.1: refuse the forms
        # a resolver and this check could read differently.
        raise Refused(f"{raw!r} is not a host name; write an IPv4 address as a.b.c.d.")
    try:
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise Refused(f"{raw!r} is not a valid host name.") from exc
    if len(host) > 253 or not _HOST.match(host):
        raise Refused(f"{raw!r} is not a valid host name.")
    return host


def _ip_literal(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise Refused("An IPv6 address with a zone cannot be used.")
    return address


def system_resolve(host: str) -> list[IPAddress]:
    """The host's addresses from the system resolver, each once, in its order."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"{host} does not resolve.") from exc
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return list(dict.fromkeys(found))


def checked_addresses(
    host: str, *, resolve: Resolver | None = None, private_ok: bool | None = None
) -> list[IPAddress]:
    """Resolve host (an IP literal stands for itself) and check every address: one refused
    address refuses the host, so a name cannot mix a public and an internal answer."""
    literal = _ip_literal(host)
    addresses = [literal] if literal is not None else list((resolve or system_resolve)(host))
    if not addresses:
        raise Unresolvable(f"{host} has no address.")
    for address in addresses:
        check_address(address, private_ok=private_ok)
    return addresses


def resolve_target(
    url: str, *, resolve: Resolver | None = None, private_ok: bool | None = None
) -> Target:
    """Parse and resolve the URL, checking every address; raise OutboundError if not usable."""
    target = parse_url(url)
    addresses = checked_addresses(target.host, resolve=resolve, private_ok=private_ok)
    return Target(target.scheme, target.host, target.port, target.path, tuple(addresses))


def url_problem(url: str, *, resolve: Resolver | None = None) -> str | None:
    """Why the URL cannot be used for outbound requests, or None (for forms and services)."""
    try:
        resolve_target(url, resolve=resolve)
    except OutboundError as exc:
        return str(exc)
    return None


# --- Requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """An answer: status and at most max_body bytes of body (``truncated`` says more came)."""

    status: int
    body: bytes
    truncated: bool
    location: str = ""

    @property
    def reason(self) -> str:
        return f"HTTP {self.status}"


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    resolve: Resolver | None = None,
    private_ok: bool | None = None,
    verify: bool = True,
    tls_context: ssl.SSLContext | None = None,
    redirects_ok: bool = False,
    max_body: int = MAX_RESPONSE_BYTES,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> Response:
    """Send one request to a checked address of the URL's host; raise OutboundError.

    A redirect is refused (OutboundError) unless redirects_ok, when the 3xx is returned
    with its Location for a caller that checks each hop itself (RFC 8555 8.3 lets the
    ACME validator follow them). verify=False skips certificate checks (http-01 over
    https, where the body is the proof)."""
    target = resolve_target(url, resolve=resolve, private_ok=private_ok)
    sent = {"User-Agent": "certportal", "Accept-Encoding": "identity", **(headers or {})}
    sent["Host"] = target.host_header
    read_timeout = READ_TIMEOUT if read_timeout is None else read_timeout
    timeout = urllib3.Timeout(
        connect=CONNECT_TIMEOUT if connect_timeout is None else connect_timeout, read=read_timeout
    )
    last: OutboundError = OutboundError(f"No address of {target.host} answered.")
    for address in target.addresses[:MAX_ADDRESSES_TRIED]:
        with _pool(target, address, timeout, verify, tls_context) as pool, _quiet(verify):
            try:
                response = pool.urlopen(
                    method,
                    target.path,
                    body=body,
                    headers=sent,
                    retries=False,
                    redirect=False,
                    preload_content=False,
                    decode_content=False,
                    assert_same_host=False,
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                last = OutboundError(_short(exc, target, read_timeout))
                continue  # another address of the host may answer
            except (HTTPError, OSError) as exc:
                raise OutboundError(_short(exc, target, read_timeout)) from exc
            answer = _read(response, target, max_body, read_timeout)
        if 300 <= answer.status < 400 and not redirects_ok:
            raise OutboundError(f"{answer.reason} from {target.display}: redirects are refused.")
        return answer
    raise last


@contextmanager
def _quiet(verify: bool) -> Iterator[None]:
    """Without urllib3's warning when the caller chose not to check the certificate."""
    if verify:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureRequestWarning)
        yield


@contextmanager
def _pool(
    target: Target,
    address: IPAddress,
    timeout: urllib3.Timeout,
    verify: bool,
    tls_context: ssl.SSLContext | None,
) -> Iterator[urllib3.HTTPConnectionPool]:
    """A one-connection pool to the checked address; https keeps the name for SNI and for
    checking the certificate."""
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            str(address),
            target.port,
            timeout=timeout,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host if verify else False,
            cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
            ssl_context=tls_context,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(address), target.port, timeout=timeout, maxsize=1)
    try:
        yield pool
    finally:
        pool.close()


def _read(
    response: urllib3.BaseHTTPResponse, target: Target, max_body: int, read_timeout: float
) -> Response:
    """At most max_body bytes, within one read timeout of the headers: each read is
    bounded by the socket timeout, and a server dribbling bytes is cut off at the deadline."""
    deadline = time.monotonic() + read_timeout
    chunks: list[bytes] = []
    size = 0
    truncated = False
    try:
        while size <= max_body:
            if time.monotonic() > deadline:
                raise OutboundError(f"{target.display} did not finish answering in time.")
            chunk = response.read1(min(_CHUNK, max_body + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (HTTPError, OSError) as exc:
        raise OutboundError(_short(exc, target, read_timeout)) from exc
    finally:
        response.close()
    data = b"".join(chunks)
    if len(data) > max_body:
        data, truncated = data[:max_body], True
    location = response.headers.get("Location", "") if response.status in REDIRECTS else ""
    return Response(response.status, data, truncated, location.strip())


def _short(exc: BaseException, target: Target, read_timeout: float) -> str:
    """A short reason for a network failure (no peer-provided text beyond TLS alerts)."""
    where = target.display
    if isinstance(exc, NewConnectionError):  # a ConnectTimeoutError subclass: test it first
        return f"Cannot connect to {where}: {_errno_text(exc)}."
    if isinstance(exc, ConnectTimeoutError):
        return f"Connecting to {where} timed out."
    if isinstance(exc, ReadTimeoutError | socket.timeout):
        return f"{where} did not answer within {read_timeout:g} s."
    if isinstance(exc, SSLError):
        return f"TLS with {where} failed: {_tls_text(exc)}."
    if isinstance(exc, ProtocolError):
        return f"{where} closed the connection or answered something other than HTTP."
    return f"Request to {where} failed ({type(exc).__name__})."


def _errno_text(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return "connection failed"


def _tls_text(exc: BaseException) -> str:
    for inner in (exc, *exc.args, exc.__cause__, exc.__context__):
        if isinstance(inner, ssl.SSLCertVerificationError):
            return str(inner.verify_message or "certificate verification failed")
        if isinstance(inner, ssl.SSLError) and inner.reason:
            return str(inner.reason).lower().replace("_", " ")
    return "handshake failed"
