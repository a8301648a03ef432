"""Typed environment parsers that fail loudly on bad values.

Every setting the portal reads from the environment goes through one of these, so a
typo in a deployment ("ture", "8O") stops the process at start with a message naming
the variable, instead of silently falling back to a default.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def get_str(name: str, default: str = "") -> str:
    """The variable's value, or the value of the file named by NAME_FILE, or default."""
    file_var = os.environ.get(f"{name}_FILE")
    if file_var:
        try:
            return Path(file_var).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_var!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def get_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")


def get_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_PERIODS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"(\d+)/(\d*)(" + "|".join(_PERIODS) + ")")


def get_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate limit as (count, seconds) from "<count>/<period>", the period s, min, hour
    or day with an optional multiple ("10/3hour"); "off" is None (no limit)."""
    raw = os.environ.get(name, default).strip().lower()
    if raw == "off":
        return None
    match = _RATE.fullmatch(raw)
    count, multiple = (int(match[1]), int(match[2] or 1)) if match else (0, 0)
    if not match or count < 1 or multiple < 1:
        raise ImproperlyConfigured(
            f"{name}={raw!r}: use <count>/<period> (period s, min, hour or day, optionally "
            "with a multiple: 10/3hour), or off"
        )
    return count, multiple * _PERIODS[match[3]]


def get_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def get_url(name: str, default: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    raw = os.environ.get(name, default).strip()
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not parsed.netloc:
        allowed = ", ".join(schemes)
        raise ImproperlyConfigured(f"{name}={raw!r} is not a URL with scheme {allowed}")
    return raw.rstrip("/")


def check_base64_key(name: str, value: str, *, length: int = 32) -> str:
    """Fail at start, not at first use, when a key is not `length` bytes of base64."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{name} is not valid base64") from exc
    if len(decoded) != length:
        raise ImproperlyConfigured(f"{name} must decode to {length} bytes, not {len(decoded)}")
    return value.strip()
