"""The agent's failures: each says which certificate entry it concerns and why."""

from __future__ import annotations


class AgentError(Exception):
    """A failure the log and ``status`` report; the entry is retried after a backoff."""


class ConfigError(AgentError):
    """The configuration (or a file it names) is unusable; nothing is attempted."""


class PortalUnreachable(AgentError):
    """No answer, or a server-side failure: try again later, touch nothing."""


class PortalRefused(AgentError):
    """The portal answered no (policy, permission, unknown profile): fix and retry."""

    def __init__(self, message: str, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
