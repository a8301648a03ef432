"""Cloudflare custom certificates through the official SDK.

The certificate goes up with its whole chain (a portal CA is private: Cloudflare cannot
bundle it, so ``bundle_method`` defaults to "force", which serves the chain as given);
a renewal edits the same custom certificate; removal deletes it. Custom certificates
carry no tags, so what a sync owns is what it recorded. Creation is idempotent: the SDK's
own retries are off (it would resend a POST whose answer was lost), and when an item is
tried again after a failed or lost attempt (a timeout, a killed worker) the zone is
listed first and a certificate with the same hosts and expiry is taken over instead of
uploading a second one.

An API base URL the user set is checked with the outbound address rules first.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import cloudflare
import httpx
from cloudflare import Cloudflare

from syncs.backends.base import (
    ConnectionSpec,
    OptionsError,
    Payload,
    Pushed,
    Remote,
    SyncError,
    common_options,
    endpoint,
    render,
    sample_values,
    text_option,
    unknown_options,
    verify,
)
from syncs.choices import Destination

BUNDLE_METHODS = ("ubiquitous", "optimal", "force")
TYPES = ("sni_custom", "legacy_custom")
_ZONE = re.compile(r"^[0-9a-f]{32}$")


def _client(connection: ConnectionSpec) -> Cloudflare:
    base = connection.config.get("api_base_url", "")
    kwargs: dict[str, Any] = {}
    if base:
        kwargs["base_url"] = endpoint(base)
    return Cloudflare(
        api_token=connection.credentials.get("api_token", ""),
        max_retries=0,
        timeout=30.0,
        http_client=httpx.Client(verify=_ssl_context(), follow_redirects=False),
        **kwargs,
    )


def _ssl_context() -> ssl.SSLContext:
    bundle = verify()
    return ssl.create_default_context(cafile=bundle if isinstance(bundle, str) else None)


@contextmanager
def _errors() -> Iterator[None]:
    """The SDK's exceptions as SyncError with Cloudflare's own error message."""
    try:
        yield
    except cloudflare.APIConnectionError as exc:
        raise SyncError(f"Cloudflare unreachable: {exc}", retryable=True) from exc
    except cloudflare.APIStatusError as exc:
        status = exc.status_code
        raise SyncError(
            f"Cloudflare {status}: {_message(exc)}", retryable=status >= 500 or status == 429
        ) from exc
    except cloudflare.APIError as exc:
        raise SyncError(f"Cloudflare: {exc.message}") from exc


def _message(exc: cloudflare.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = body.get("errors") or []
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        return f"{first.get('code', '')} {first.get('message', '')}".strip()
    return str(exc.message)


def identity(connection: ConnectionSpec) -> str:
    with _errors():
        answer = _client(connection).user.tokens.verify()
    status = getattr(answer, "status", "") if answer is not None else ""
    if status != "active":
        raise SyncError(f"Cloudflare says the token is {status or 'not valid'}.")
    return "The API token is valid and active."


class CustomCertificateBackend:
    """A zone's custom certificate; a renewal edits it in place."""

    destination = Destination.CLOUDFLARE
    # Custom certificates have no name; the template names the item in the portal only.
    refused = re.compile(r"[^\w.\-]")

    def needs_key(self, options: Mapping[str, Any]) -> bool:
        return True

    def clean_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown_options(options, ("zone_id", "bundle_method", "type"))
        cleaned = common_options(options)
        if not cleaned["include_private_key"]:
            raise OptionsError({"include_private_key": "Custom certificates need the key."})
        zone = text_option(options, "zone_id", required=True, max_length=32)
        if not _ZONE.match(zone):
            raise OptionsError({"zone_id": "A zone id is 32 hexadecimal characters."})
        bundle = options.get("bundle_method", "force")
        if bundle not in BUNDLE_METHODS:
            raise OptionsError({"bundle_method": f"One of {', '.join(BUNDLE_METHODS)}."})
        kind = options.get("type", "sni_custom")
        if kind not in TYPES:
            raise OptionsError({"type": f"One of {', '.join(TYPES)}."})
        cleaned.update(zone_id=zone, bundle_method=bundle, type=kind)
        return cleaned

    def name_problem(self, template: str) -> str | None:
        name = render(template, sample_values(), self.refused)
        if len(name) > 255:
            return "At most 255 characters."
        return None

    def test(self, connection: ConnectionSpec, options: Mapping[str, Any]) -> str:
        with _errors():
            _client(connection).custom_certificates.list(zone_id=options["zone_id"], per_page=5)
        return f"Zone {options['zone_id']} answers."

    def _bundle(self, options: Mapping[str, Any], payload: Payload) -> str:
        chain = list(payload.chain_pems) + ([payload.root_pem] if options["include_root"] else [])
        return payload.certificate_pem + "".join(chain)

    def upsert(
        self,
        connection: ConnectionSpec,
        options: Mapping[str, Any],
        payload: Payload,
        current: Pushed | None,
        *,
        look_up: bool,
    ) -> Pushed:
        client = _client(connection)
        zone = options["zone_id"]
        common = {
            "zone_id": zone,
            "certificate": self._bundle(options, payload),
            "private_key": payload.key_pem or "",
            "bundle_method": options["bundle_method"],
        }
        with _errors():
            if current is not None:
                edited = client.custom_certificates.edit(current.external_id, **common)
                return Pushed(str(getattr(edited, "id", "") or current.external_id))
            existing = self._find(client, zone, payload) if look_up else ""
            if existing:
                client.custom_certificates.edit(existing, **common)
                return Pushed(existing)
            created = client.custom_certificates.create(type=options["type"], **common)
        if created is None or not getattr(created, "id", None):
            raise SyncError("Cloudflare created the certificate but returned no id.")
        return Pushed(str(created.id))

    def _find(self, client: Cloudflare, zone: str, payload: Payload) -> str:
        """A custom certificate already holding these names and this expiry (ours from a
        lost answer or a killed worker)."""
        names = {n.lower() for n in [payload.common_name, *payload.sans] if n}
        for cert in client.custom_certificates.list(zone_id=zone, per_page=50):
            hosts = {h.lower() for h in (getattr(cert, "hosts", None) or [])}
            expires = getattr(cert, "expires_on", None)
            if hosts == names and _epoch(expires) == payload.not_after_epoch:
                return str(cert.id)
        return ""

    def remove(
        self, connection: ConnectionSpec, options: Mapping[str, Any], current: Pushed, app: str
    ) -> str:
        client = _client(connection)
        with _errors():
            try:
                client.custom_certificates.delete(current.external_id, zone_id=options["zone_id"])
            except cloudflare.NotFoundError:
                return f"Custom certificate {current.external_id} was already gone."
        return f"Deleted custom certificate {current.external_id} from zone {options['zone_id']}."

    def owned(
        self, connection: ConnectionSpec, options: Mapping[str, Any], app: str
    ) -> list[Remote]:
        client = _client(connection)
        with _errors():
            return [
                Remote(str(c.id), "")
                for c in client.custom_certificates.list(zone_id=options["zone_id"], per_page=50)
            ]


def _epoch(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


CUSTOM_CERTIFICATES = CustomCertificateBackend()
