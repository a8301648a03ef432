"""Exceptions raised by the pki package.

Every error carries a stable machine-readable ``code`` (mapped to API/ACME/EST error types by
the callers), a human ``message`` that is safe to show to the requester, and optionally the
``field`` of the input it is about, so forms can attach it to the right widget.
"""

from __future__ import annotations

from typing import Any


class PKIError(Exception):
    code: str = "pki_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, field={self.field!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Task queues (django-q2) pickle exceptions; the default Exception pickling replays
        # only positional args and would silently lose ``code`` and ``field``.
        return (_rebuild, (type(self), self.message, self.code, self.field))


def _rebuild(cls: type[PKIError], message: str, code: str, field: str | None) -> PKIError:
    return cls(message, code=code, field=field)


class DecodeError(PKIError):
    """Input could not be decoded: garbage, truncated PEM/DER/PKCS#12, wrong password."""

    code = "malformed"


class CSRError(PKIError):
    code = "bad_csr"


class PolicyViolation(PKIError):
    """The request is well-formed but the profile refuses it.

    Raisers always pass ``code``: one of "rejected_identifier", "bad_key", "bad_subject",
    "bad_validity", "bad_csr". The class default only exists so a forgotten code is visible.
    """

    code = "policy_violation"


class KeyMismatch(PKIError):
    code = "key_mismatch"
