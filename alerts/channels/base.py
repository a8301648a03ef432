"""What every channel shares: the message, the error, and HTTP POST of JSON (through
certportal.outbound, so every address rule holds at send as at save)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from certportal import outbound

# Read (and dropped) of a receiver's answer: only its status is kept.
ANSWER_BYTES = 1024
_url_validator = URLValidator(schemes=["http", "https"])


class DeliveryError(Exception):
    """A send failed; the message says why (shown in the delivery log)."""


@dataclass(frozen=True)
class Message:
    """One alert, rendered once and formatted by each channel."""

    event: str
    subject: str
    text: str
    severity: str = "info"  # info | warning | error | critical (PagerDuty's levels)
    delivery_id: str = ""
    dedupe_key: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # (name, one-line plain value) of what text lists: chat channels escape the values.
    facts: tuple[tuple[str, str], ...] = ()


def url_error(url: str) -> str | None:
    """Why the URL cannot be used as a webhook, or None: its form, then the outbound
    address rules on every address its host resolves to now."""
    if not url:
        return "A URL is required."
    try:
        _url_validator(url)
    except ValidationError:
        return f"{url[:80]!r} is not a valid http(s) URL."
    return outbound.url_problem(url)


def post_json(url: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> int:
    """POST JSON through the outbound rules; returns the status, raises DeliveryError with
    a short reason (never the receiver's body) on a refusal, a network error or non-2xx."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    try:
        response = outbound.request("POST", url, body=data, headers=sent, max_body=ANSWER_BYTES)
    except outbound.OutboundError as exc:
        raise DeliveryError(str(exc)) from exc
    if not 200 <= response.status < 300:
        raise DeliveryError(f"{response.reason} from {outbound.parse_url(url).display}.")
    return response.status
