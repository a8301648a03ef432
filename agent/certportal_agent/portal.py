"""certportal's REST API as the agent uses it: issue, renew, poll a held request, read
the renewal window, and OCSP for a certificate's revocation state.

The bearer token goes only to the configured portal URL, never into a log line or an
exception message.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from certportal_agent.config import Portal
from certportal_agent.errors import ConfigError, PortalRefused, PortalUnreachable

USER_AGENT = "certportal-agent/0.1"


def read_token(portal: Portal, where: str) -> str:
    """The service-account token from its file or environment variable."""
    if portal.token_file is not None:
        try:
            token = portal.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{where}: token file {portal.token_file} cannot be read ({exc.strerror})"
            ) from exc
    else:
        token = os.environ.get(portal.token_env or "", "").strip()
        if not token:
            raise ConfigError(f"{where}: environment variable {portal.token_env} is not set")
    if not token:
        raise ConfigError(f"{where}: token file {portal.token_file} is empty")
    return token


@dataclass(frozen=True)
class Answer:
    """An issue or renew answer: the certificate (201) or a held request (202)."""

    certificate: dict[str, Any] | None
    request_id: str | None


def pool(portal: Portal, retries: int) -> urllib3.PoolManager:
    retry = urllib3.Retry(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        backoff_factor=0.5,
        backoff_max=10,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET"}),  # a POST is resent only when it never connected
        raise_on_status=False,
    )
    ca = str(portal.ca_bundle) if portal.ca_bundle else None
    return urllib3.PoolManager(retries=retry, timeout=portal.timeout, ca_certs=ca)


class Client:
    """One Application's certificates on one portal, as a service account."""

    def __init__(self, portal: Portal, token: str, retries: int = 3) -> None:
        self.base = f"{portal.url}/api/v1/applications/{portal.application}"
        self._http = pool(portal, retries)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def issue(self, profile: str, **ask: Any) -> Answer:
        body = {"profile": profile, **{k: v for k, v in ask.items() if v not in (None, [], "")}}
        return self._answer(self._call("POST", "/certificates/", body))

    def renew(self, certificate_id: str, csr: str) -> Answer:
        path = f"/certificates/{certificate_id}/renew/"
        return self._answer(self._call("POST", path, {"key": "csr", "csr": csr}))

    def request(self, request_id: str) -> dict[str, Any] | None:
        status, body = self._call("GET", f"/requests/{request_id}/", ok_missing=True)
        return None if status == 404 else body

    def renewal_window(self, certificate_id: str) -> tuple[str, datetime, datetime] | None:
        """(status, start, end), or None when the portal does not know the certificate."""
        path = f"/certificates/{certificate_id}/renewal-window/"
        status, body = self._call("GET", path, ok_missing=True)
        if status == 404:
            return None
        start = datetime.fromisoformat(body["start"])
        return body["status"], start, datetime.fromisoformat(body["end"])

    def held_key(self, certificate_id: str) -> bytes:
        """A portal-generated key after approval: fetched once through PKCS#12."""
        password = secrets.token_urlsafe(24)
        path = f"/certificates/{certificate_id}/pkcs12/"
        response = self._send("POST", path, {"password": password})
        if response.status != 200:
            raise _refusal(response)
        from certportal_agent import crypto

        return crypto.key_pem(crypto.key_from_pkcs12(response.data, password.encode()))

    def _answer(self, result: tuple[int, Any]) -> Answer:
        status, body = result
        if status == 202:
            return Answer(certificate=None, request_id=str(body["request_id"]))
        return Answer(certificate=body, request_id=None)

    def _call(
        self, method: str, path: str, body: Any = None, ok_missing: bool = False
    ) -> tuple[int, Any]:
        response = self._send(method, path, body)
        if ok_missing and response.status == 404:
            return 404, None
        if response.status not in (200, 201, 202):
            raise _refusal(response)
        try:
            return response.status, json.loads(response.data)
        except ValueError as exc:
            raise PortalUnreachable(f"portal answered {method} {path} with non-JSON") from exc

    def _send(self, method: str, path: str, body: Any) -> urllib3.BaseHTTPResponse:
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            return self._http.request(method, self.base + path, body=data, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise PortalUnreachable(f"portal unreachable: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    """urllib3's innermost cause ("Connection refused"), without the pool's prefix."""
    text = str(getattr(exc, "reason", None) or exc)
    return text.split(": ", 1)[-1]


def _refusal(response: urllib3.BaseHTTPResponse) -> Exception:
    if response.status >= 500 or response.status == 429:
        return PortalUnreachable(f"portal failed with HTTP {response.status}; will retry")
    try:
        body = json.loads(response.data)
    except ValueError:
        body = {}
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    details = _details(body.get("errors")) if isinstance(body, dict) else ""
    text = f"portal refused (HTTP {response.status}{', ' + code if code else ''}): {message}"
    return PortalRefused(text + (f" [{details}]" if details else ""), code, response.status)


def _details(errors: Any) -> str:
    """The portal's field errors ([{"field", "code", "message"}]) on one log line."""
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors:
        if isinstance(error, dict):
            field = error.get("field")
            parts.append(f"{field}: {error.get('message')}" if field else str(error.get("message")))
    return "; ".join(parts)


def ocsp_status(certificate: x509.Certificate, issuer: x509.Certificate, timeout: float) -> str:
    """good, revoked or unknown from the certificate's OCSP responder; "" when it has
    none or it cannot be asked (the portal's renewal window still covers revocation)."""
    url = _ocsp_url(certificate)
    if url is None:
        return ""
    # RFC 5019 responders expect SHA-1 in the CertID; it names, it does not sign.
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())  # noqa: S303
    der = request.build().public_bytes(serialization.Encoding.DER)
    http = urllib3.PoolManager(retries=urllib3.Retry(total=1, read=0), timeout=timeout)
    try:
        response = http.request(
            "POST",
            url,
            body=der,
            headers={"Content-Type": "application/ocsp-request", "User-Agent": USER_AGENT},
        )
        answer = ocsp.load_der_ocsp_response(response.data)
    except (urllib3.exceptions.HTTPError, ValueError):
        return ""
    if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return ""
    return answer.certificate_status.name.lower()


def _ocsp_url(certificate: x509.Certificate) -> str | None:
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return None
    for description in aia.value:
        if description.access_method == AuthorityInformationAccessOID.OCSP:
            return str(description.access_location.value)
    return None
