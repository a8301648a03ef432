"""The contract every destination backend keeps.

A backend is the only code that talks to its provider (through the provider's official
SDK). It validates its options and names, tests a connection, upserts a certificate,
removes one, and lists what it owns. Endpoints a user can set (an AWS-compatible
endpoint URL, an Azure authority host, a Cloudflare API base URL) are checked with
``certportal.outbound``'s address rules before any SDK client is built (``endpoint``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings

from certportal import outbound


class SyncError(Exception):
    """A provider call failed; str() is a short reason that is safe to show and store.

    ``retryable``: a transient fault (throttling, 5xx, timeouts) worth trying again;
    anything else (bad credentials, not ours, invalid input) waits for a person."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message[:450])
        self.retryable = retryable


class OptionsError(Exception):
    """Options or a name template the destination would refuse: field -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ConnectionSpec:
    """A connection as backends see it: kind, unsealed credentials and plain settings."""

    kind: str
    credentials: Mapping[str, str]
    config: Mapping[str, str]


@dataclass(frozen=True)
class Payload:
    """What to push: the certificate, its chain (nearest issuer first), the root, the key."""

    certificate_id: str
    application: str
    name: str
    common_name: str
    sans: Sequence[str]
    serial_number: str
    not_after_epoch: int
    certificate_pem: str
    chain_pems: Sequence[str]
    root_pem: str
    key_pem: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pushed:
    """Where the certificate now lives at the destination."""

    external_id: str
    version: str = ""


@dataclass(frozen=True)
class Remote:
    """An object the destination holds that carries our ownership marks."""

    external_id: str
    serial_number: str
    certificate_id: str = ""


class Backend(Protocol):
    @property
    def destination(self) -> str: ...

    # Characters the destination refuses in a name (replaced in template values).
    @property
    def refused(self) -> re.Pattern[str]: ...

    # Whether an upsert needs the private key (with these options).
    def needs_key(self, options: Mapping[str, Any]) -> bool: ...

    def clean_options(self, options: Mapping[str, Any]) -> dict[str, Any]: ...

    def name_problem(self, name: str) -> str | None: ...

    def test(self, connection: ConnectionSpec, options: Mapping[str, Any]) -> str: ...

    def upsert(
        self,
        connection: ConnectionSpec,
        options: Mapping[str, Any],
        payload: Payload,
        current: Pushed | None,
        *,
        look_up: bool,
    ) -> Pushed: ...

    def remove(
        self, connection: ConnectionSpec, options: Mapping[str, Any], current: Pushed, app: str
    ) -> str: ...

    def owned(
        self, connection: ConnectionSpec, options: Mapping[str, Any], app: str
    ) -> list[Remote]: ...


# Options every destination takes where they apply.
COMMON_OPTIONS = ("include_root", "include_private_key", "remove_on_revoke", "remove_on_expiry")


def common_options(options: Mapping[str, Any], *, key_default: bool = True) -> dict[str, Any]:
    """The shared booleans, typed; anything not a boolean is refused."""
    cleaned: dict[str, Any] = {}
    defaults = {
        "include_root": False,
        "include_private_key": key_default,
        "remove_on_revoke": True,
        "remove_on_expiry": False,
    }
    for name, default in defaults.items():
        value = options.get(name, default)
        if not isinstance(value, bool):
            raise OptionsError({name: "Must be true or false."})
        cleaned[name] = value
    return cleaned


def text_option(
    options: Mapping[str, Any], name: str, *, required: bool = False, max_length: int = 255
) -> str:
    value = options.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > max_length:
        raise OptionsError({name: f"Must be text of at most {max_length} characters."})
    if required and not value.strip():
        raise OptionsError({name: "Required."})
    return value.strip()


def unknown_options(options: Mapping[str, Any], known: Sequence[str]) -> None:
    extra = sorted(set(options) - set(known) - set(COMMON_OPTIONS))
    if extra:
        raise OptionsError({extra[0]: "Unknown option for this destination."})


def endpoint(url: str) -> str:
    """Check a user-set SDK endpoint with the outbound rules (scheme, host, every address it
    resolves to; private ranges only when CERTPORTAL_OUTBOUND_ALLOW_PRIVATE is set) and
    return it. The SDK then opens its own connections to that host."""
    try:
        outbound.resolve_target(url)
    except outbound.OutboundError as exc:
        raise SyncError(f"Endpoint refused: {exc}") from exc
    return url


def verify() -> str | bool:
    """TLS verification for SDK clients: the system store, or the bundle named by
    CERTPORTAL_SYNC_CA_BUNDLE (a lab's private CA)."""
    bundle: str = getattr(settings, "CERTPORTAL_SYNC_CA_BUNDLE", "")
    return bundle or True


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
PLACEHOLDERS = ("application", "profile", "common_name", "serial")


def template_problem(template: str) -> str | None:
    """Unknown placeholders or stray braces; the destination checks the rest."""
    for name in _PLACEHOLDER.findall(template):
        if name not in PLACEHOLDERS:
            return f"Unknown placeholder {{{name}}}; use {', '.join(PLACEHOLDERS)}."
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        return "Braces only around a placeholder."
    if not template.strip():
        return "Required."
    return None


def render(template: str, values: Mapping[str, str], safe: re.Pattern[str]) -> str:
    """Fill the placeholders, replacing every character the destination refuses in a
    value with '-' (a CN like *.example.test becomes --example-test where dots are not
    allowed), so a template that was valid at save stays valid for any certificate."""
    return _PLACEHOLDER.sub(lambda m: safe.sub("-", values.get(m.group(1), "")), template)


def sample_values() -> dict[str, str]:
    """Long, plausible values to check a template against a destination's length limit."""
    return {
        "application": "a" * 40,
        "profile": "p" * 30,
        "common_name": "c" * 64,
        "serial": "0" * 40,
    }
