"""Slack incoming webhook: the URL is the secret; certificate fields are escaped mrkdwn."""

from __future__ import annotations

from typing import Any

from alerts.channels import text
from alerts.channels.base import Message, post_json, url_error


def validate(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    error = url_error(secrets.get("url", ""))
    return {"url": error} if error else {}


def mrkdwn(message: Message) -> str:
    """The subject in bold, then one line per fact; every certificate field escaped."""
    lines = [f"*{text.slack(message.subject)}*"]
    lines += [f"{name}: {text.slack(value)}" for name, value in message.facts]
    return "\n".join(lines)


def send(config: dict[str, Any], secrets: dict[str, str], message: Message) -> None:
    post_json(secrets["url"], {"text": mrkdwn(message)})
