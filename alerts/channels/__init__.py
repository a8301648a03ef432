"""Alert channels, one module per kind. Each module has ``validate(config, secrets)``
(the errors by field, empty when the settings are usable) and ``send(config, secrets,
message)`` (raises DeliveryError with a reason a person can act on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from alerts.channels import email, pagerduty, slack, teams, webhook
from alerts.channels.base import DeliveryError, Message
from alerts.choices import ChannelKind

KINDS: dict[str, ModuleType] = {
    ChannelKind.EMAIL: email,
    ChannelKind.SLACK: slack,
    ChannelKind.TEAMS: teams,
    ChannelKind.PAGERDUTY: pagerduty,
    ChannelKind.WEBHOOK: webhook,
}

__all__ = ["KINDS", "ChannelSettings", "DeliveryError", "Message", "send", "validate"]


@dataclass(frozen=True)
class ChannelSettings:
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


def validate(settings: ChannelSettings) -> dict[str, str]:
    if settings.kind not in KINDS:
        return {"kind": f"Unknown channel kind {settings.kind!r}."}
    errors: dict[str, str] = KINDS[settings.kind].validate(settings.config, settings.secrets)
    return errors


def send(settings: ChannelSettings, message: Message) -> None:
    errors = validate(settings)
    if errors:
        raise DeliveryError("Channel misconfigured: " + "; ".join(errors.values()))
    KINDS[settings.kind].send(settings.config, settings.secrets, message)
