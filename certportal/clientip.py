"""The client's address, read from the right place behind a reverse proxy.

REMOTE_ADDR is the peer that opened the connection. Only when that peer is one of
CERTPORTAL_TRUSTED_PROXIES is X-Forwarded-For read, and then from the right: each
trusted proxy appends the address it received the request from, so the right-most
address that is not itself a trusted proxy is the client. Anything to its left was
written by the client and is never believed (it could name any address to dodge a
throttle or frame someone in the audit log).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address as a canonical string, or None when there is no usable one."""
    peer = parse_address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    proxies = trusted_networks(tuple(settings.CERTPORTAL_TRUSTED_PROXIES))
    if not _is_trusted(peer, proxies):
        return str(peer)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR") or ""
    hop = peer
    for entry in reversed([part.strip() for part in forwarded.split(",")]):
        address = parse_address(entry)
        if address is None:
            # Unparsable: whatever is left of here is not ours to read; the last hop
            # we could account for is as close to the client as we can tell.
            break
        hop = address
        if not _is_trusted(address, proxies):
            break
    return str(hop)


def parse_address(value: str) -> Address | None:
    """An IP address from a header entry: bare, or with a port (``1.2.3.4:80``,
    ``[2001:db8::1]:443``); an IPv4-mapped IPv6 address becomes its IPv4 address."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The parsed CERTPORTAL_TRUSTED_PROXIES (settings checks them at start)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)
