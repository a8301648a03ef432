"""The one family of refusals: every service verb that declines an ask raises a
``Refused`` (through its own subclass, IssuanceRejected, RevocationError, ...).

A refusal says what went wrong in terms of the ask, not of a protocol: ``code`` for
machines, ``message`` for people, ``field`` for the input at fault (None: the ask as a
whole). Each front turns the family into its own error format in one place: forms with
``certportal.web.add_refusal_to_form``, the REST API in its exception handler
(``certportal.api.errors``), ACME with ``issuance.acme.messages.problem_for``. This module
imports nothing else of the project, so any layer that may use Django can raise one.
"""

from __future__ import annotations

import copy
from typing import ClassVar, Self


class Refused(Exception):
    """A service verb declined the ask; what it declined is not written."""

    default_code: ClassVar[str] = "refused"
    # Codes that say the state of things stands in the way (another request got there
    # first, the object is in the wrong state), not the input: an API answers 409.
    conflict_codes: ClassVar[frozenset[str]] = frozenset()
    # Codes that say this caller may not do it, whatever the input: an API answers 403.
    forbidden_codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message

    @property
    def conflict(self) -> bool:
        return self.code in self.conflict_codes

    @property
    def forbidden(self) -> bool:
        return self.code in self.forbidden_codes

    def on_field(self, field: str | None) -> Self:
        """The same refusal naming a front's own input, where a front calls it otherwise
        than the service (the REST API's ``key`` for a renewal's key mode)."""
        renamed = copy.copy(self)
        renamed.field = field
        return renamed

    def __copy__(self) -> Self:
        # Exceptions copy through their args, which are not every subclass's signature.
        renamed = self.__class__.__new__(self.__class__)
        renamed.__dict__.update(self.__dict__)
        renamed.args = self.args
        return renamed


class MessageRefused(Refused):
    """A refusal of a verb whose callers mostly say only why: the message first, the
    field second, the code when it is not the class's default."""

    def __init__(self, message: str, field: str | None = None, *, code: str | None = None) -> None:
        super().__init__(code or self.default_code, message, field)
