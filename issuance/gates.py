"""Gates: what may hold a request between the policy check and the signature.

The pipeline knows no gate by name. A feature that holds requests (approvals) registers
its gate at start-up, in its AppConfig.ready(), the way outbox consumers and Application
tabs register; so issuance imports none of the apps built on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from uuid import UUID

    from django.db.models import Exists

    from applications.models import Application
    from issuance.models import CertificateRequest
    from pki.policy import Decision


class Gate(Protocol):
    """One reason a request may wait before it is signed."""

    def present(self, application_id: int) -> Exists:
        """A queryset expression: may this Application's requests be held at all?
        ``attached_profile`` caches the answer with the profile."""
        ...

    def begin(self, application: Application, present: bool | None) -> None:
        """A pipeline call starts; ``present`` is the cached answer, None when unknown."""
        ...

    def may_hold(self, application: Application) -> bool:
        """Whether this call may hold a request (the pipeline then opens a transaction
        for what the gate writes)."""
        ...

    def hold_if_required(self, request: CertificateRequest, decision: Decision) -> bool:
        """Hold the request if the gate requires it, writing what keeps it held (inside
        the pipeline's transaction, before the request row is inserted); True if held."""
        ...


_GATES: dict[str, Gate] = {}


def register(name: str, gate: Gate) -> None:
    """Add (or replace) a gate; called from an AppConfig.ready()."""
    _GATES[name] = gate


def registered() -> list[Gate]:
    return list(_GATES.values())


# Who a gate waits on: (request id, 0-based step) -> the people asked to decide it.
Deciders = Callable[["UUID", int], list[Any]]
_DECIDERS: dict[str, Deciders] = {}


def register_deciders(name: str, deciders: Deciders) -> None:
    """Say who decides the requests a gate holds (for the notices that ask them);
    called from an AppConfig.ready()."""
    _DECIDERS[name] = deciders


def deciders(request_id: UUID, step: int) -> list[Any]:
    """The people asked to decide a held request's step, by every gate, each once."""
    people: dict[int, Any] = {}
    for find in _DECIDERS.values():
        people.update((person.pk, person) for person in find(request_id, step))
    return sorted(people.values(), key=lambda person: person.get_username())
