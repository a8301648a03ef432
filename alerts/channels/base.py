"""What every channel shares: the message, the error, and HTTP POST of JSON."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

HTTP_TIMEOUT = 10
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


def url_error(url: str, *, https_only: bool = False) -> str | None:
    """Why the URL cannot be used as a webhook, or None."""
    if not url:
        return "A URL is required."
    try:
        _url_validator(url)
    except ValidationError:
        return f"{url[:80]!r} is not a valid http(s) URL."
    if https_only and not url.startswith("https://"):
        return "Use an https:// URL."
    return None


def post_json(url: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> int:
    """POST JSON; returns the status, raises DeliveryError on a network error or non-2xx."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL was validated as http(s)
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "certportal", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode(errors="replace")
        raise DeliveryError(f"HTTP {exc.code} from {_host(url)}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"Cannot reach {_host(url)}: {reason}") from exc


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc
