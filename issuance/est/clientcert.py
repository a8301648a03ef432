"""Client certificates handed over by the TLS-terminating proxy, and whether one chains
to a set of trusted certificates. The header is believed only from a trusted proxy."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from django.conf import settings
from django.http import HttpRequest

from certportal.clientip import parse_address, trusted_networks


def from_proxy(request: HttpRequest) -> x509.Certificate | None:
    """The client certificate the proxy passed, or None: no header configured, the peer
    is not a trusted proxy, no certificate sent, or one that does not parse."""
    header = settings.CERTPORTAL_EST_CLIENT_CERT_HEADER
    if not header or not _peer_is_trusted_proxy(request):
        return None
    raw = request.headers.get(header, "")
    if not raw.strip():
        return None
    pem = urllib.parse.unquote(raw).strip()
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None


def _peer_is_trusted_proxy(request: HttpRequest) -> bool:
    peer = parse_address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return False
    proxies = trusted_networks(tuple(settings.CERTPORTAL_TRUSTED_PROXIES))
    return any(peer.version == net.version and peer in net for net in proxies)


def chains_to(
    leaf: x509.Certificate, anchors: Sequence[x509.Certificate], *, now: datetime | None = None
) -> bool:
    """Whether the leaf is valid now and was signed by a certificate in ``anchors``, every
    one of which is trusted (a CA's intermediates are anchors in their own right). The
    proxy passes the leaf alone, so there is no client-sent chain to walk."""
    now = now or datetime.now(UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        return False
    issuer = _issuer_in(leaf, anchors)
    return issuer is not None and issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc


def _issuer_in(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    return None
