"""Login with failed-attempt throttling, per username and per source IP.

Counters live in the cache (local memory in the embedded mode, Redis when REDIS_URL is
set, so every web process shares them). A locked-out username or IP is refused before
the password is even checked, so guessing gains nothing while the lock holds.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest

MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_IP = 20
LOCKOUT_SECONDS = 15 * 60


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. Behind a proxy, configure it to set REMOTE_ADDR (we never trust
    X-Forwarded-For here: a client could forge it to dodge the IP throttle)."""
    return request.META.get("REMOTE_ADDR") or None


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.lower().encode()).hexdigest()[:32]
    return f"login-fail:{kind}:{digest}"


def _keys(request: HttpRequest | None, username: str) -> list[tuple[str, int]]:
    keys = [(_key("user", username), MAX_FAILURES_PER_USER)] if username else []
    ip = client_ip(request) if request is not None else None
    if ip:
        keys.append((_key("ip", ip), MAX_FAILURES_PER_IP))
    return keys


def is_locked_out(request: HttpRequest | None, username: str) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(request, username))


def note_failure(request: HttpRequest | None, username: str) -> None:
    for key, _limit in _keys(request, username):
        if cache.add(key, 1, LOCKOUT_SECONDS):
            continue
        try:
            cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, LOCKOUT_SECONDS)


def clear_failures(request: HttpRequest | None, username: str) -> None:
    # Only the username's counter: one good login must not reset an IP spraying others.
    if username:
        cache.delete(_key("user", username))


class ThrottledAuthenticationForm(AuthenticationForm):
    """AuthenticationForm that refuses locked-out usernames and IPs before authenticating."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": (
            "Too many failed log-in attempts. Wait %(minutes)d minutes before trying again."
        ),
    }

    def clean(self) -> dict[str, Any]:
        username = (self.data.get("username") or "").strip()
        if is_locked_out(self.request, username):
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"minutes": LOCKOUT_SECONDS // 60},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            note_failure(self.request, username)
            raise
        clear_failures(self.request, username)
        return cleaned


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True
