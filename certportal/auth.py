"""Password checks with failed-attempt throttling, on every path that takes a password.

The portal's login form, the Django admin's login and both password-change forms share
one set of counters, kept in the cache (local memory in the embedded mode, Redis when
REDIS_URL is set, so every web process sees the same counts). Each failure counts
three ways:

- the (client address, username) pair, which locks first: one source guessing at one
  account stops after a few tries;
- the client address across usernames: one source spraying many accounts;
- the username across all addresses, at a much higher threshold and with a shorter
  lock, so strangers hammering an account lock its owner out only briefly and only
  after many tries from many addresses; the owner, coming from another address, logs
  in meanwhile.

A locked counter refuses before the password is checked, so guessing gains nothing
while the lock holds. Usernames are compared as NFKC case-folded text, so ``Alice``,
``ALICE`` and a fullwidth ``alice`` share their counters.

Password reset mails a link, so it exists only where mail is really delivered, and is
throttled per address and per client address.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponseBase

from certportal import cache as counters
from certportal.clientip import client_ip


@dataclass(frozen=True)
class Limit:
    """A counter kind: this many failures within `seconds` lock it for `seconds`."""

    kind: str
    failures: int
    seconds: int

    @property
    def minutes(self) -> int:
        return math.ceil(self.seconds / 60)


PAIR = Limit("pair", 5, 15 * 60)
ADDRESS = Limit("ip", 20, 15 * 60)
USER = Limit("user", 50, 5 * 60)
RESET_PER_EMAIL = Limit("reset-email", 3, 60 * 60)
RESET_PER_ADDRESS = Limit("reset-ip", 10, 60 * 60)

THROTTLED = "Too many failed log-in attempts. Wait %(minutes)d minutes before trying again."

# Backends that deliver nothing to a mailbox: a reset link sent through them reaches no
# one (console, file) or only this process (locmem), so reset is offered in debug only.
_UNDELIVERED_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
}


def normalise_username(username: str) -> str:
    """The form a username is counted under: NFKC, case-folded, stripped."""
    folded = unicodedata.normalize("NFKC", username).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def _key(limit: Limit, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
    return f"login-fail:{limit.kind}:{digest}"


def _counters(request: HttpRequest | None, username: str) -> list[tuple[str, Limit]]:
    name = normalise_username(username)
    address = client_ip(request) if request is not None else None
    found = []
    if name and address:
        found.append((_key(PAIR, address, name), PAIR))
    if name:
        found.append((_key(USER, name), USER))
    if address:
        found.append((_key(ADDRESS, address), ADDRESS))
    return found


def locked_out(request: HttpRequest | None, username: str) -> Limit | None:
    """The counter that refuses this attempt, if any (one cache round trip)."""
    keyed = _counters(request, username)
    values = cache.get_many([key for key, _limit in keyed])
    for key, limit in keyed:
        if int(values.get(key) or 0) >= limit.failures:
            return limit
    return None


def note_failure(request: HttpRequest | None, username: str) -> None:
    for key, limit in _counters(request, username):
        if counters.count(key, limit.seconds) == limit.failures:
            cache.touch(key, limit.seconds)  # the lock runs its full time from the last try


def clear_failures(request: HttpRequest | None, username: str) -> None:
    # Only this address's count for this user: a good login must neither reset an
    # address spraying others nor the strangers' count against the account.
    keyed = _counters(request, username)
    if keyed and keyed[0][1] is PAIR:
        cache.delete(keyed[0][0])


def _throttled(limit: Limit) -> ValidationError:
    return ValidationError(THROTTLED, code="throttled", params={"minutes": limit.minutes})


class ThrottledAuthenticationForm(AuthenticationForm):
    """AuthenticationForm that refuses locked-out usernames and addresses before
    checking the password, and counts each failure."""

    error_messages = {**AuthenticationForm.error_messages, "throttled": THROTTLED}

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username") or "")
        limit = locked_out(self.request, username)
        if limit is not None:
            raise _throttled(limit)
        try:
            cleaned = super().clean()
        except ValidationError:
            note_failure(self.request, username)
            raise
        clear_failures(self.request, username)
        return cleaned


class ThrottledAdminAuthenticationForm(ThrottledAuthenticationForm, AdminAuthenticationForm):
    """The Django admin's login form (staff only) on the same counters as the portal's."""

    error_messages = {**AdminAuthenticationForm.error_messages, "throttled": THROTTLED}


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "password_reset": password_reset_enabled()}


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """A wrong old password counts as a failed login: a borrowed session cannot be used
    to guess the password at leisure."""

    def __init__(self, user: Any, *args: Any, request: HttpRequest | None = None, **kwargs: Any):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        username = self.user.get_username()
        limit = locked_out(self.request, username)
        if limit is not None:
            raise _throttled(limit)
        try:
            old_password: str = super().clean_old_password()
        except ValidationError:
            note_failure(self.request, username)
            raise
        return old_password


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


def password_reset_enabled() -> bool:
    """Whether a reset link can reach its owner's mailbox."""
    if settings.EMAIL_BACKEND in _UNDELIVERED_EMAIL_BACKENDS:
        return bool(settings.DEBUG)
    return bool(settings.CERTPORTAL_EMAIL_CONFIGURED)


class ThrottledPasswordResetForm(PasswordResetForm):
    """Refuses once an email address, or a client address, asked for too many links."""

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"]
        address = client_ip(self.request) if self.request is not None else None
        keyed = [(_key(RESET_PER_EMAIL, normalise_username(email)), RESET_PER_EMAIL)]
        if address:
            keyed.append((_key(RESET_PER_ADDRESS, address), RESET_PER_ADDRESS))
        for key, limit in keyed:
            if counters.count(key, limit.seconds) > limit.failures:
                raise ValidationError(
                    "Too many password reset requests. Try again in %(minutes)d minutes.",
                    code="throttled",
                    params={"minutes": limit.minutes},
                )
        return email


class PasswordResetAvailableMixin:
    """Reset pages answer 404 where no reset mail could be delivered."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not password_reset_enabled():
            raise Http404("Password reset is not available.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class PasswordResetView(PasswordResetAvailableMixin, auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


class PasswordResetDoneView(PasswordResetAvailableMixin, auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(PasswordResetAvailableMixin, auth_views.PasswordResetConfirmView):
    pass


class PasswordResetCompleteView(PasswordResetAvailableMixin, auth_views.PasswordResetCompleteView):
    pass
