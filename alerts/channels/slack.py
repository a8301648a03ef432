"""Slack incoming webhook: the URL is the secret."""

from __future__ import annotations

from typing import Any

from alerts.channels.base import Message, post_json, url_error


def validate(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    error = url_error(secrets.get("url", ""))
    return {"url": error} if error else {}


def send(config: dict[str, Any], secrets: dict[str, str], message: Message) -> None:
    post_json(secrets["url"], {"text": f"*{message.subject}*\n{message.text}"})
