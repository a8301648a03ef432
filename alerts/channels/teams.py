"""Microsoft Teams incoming webhook (Workflows): an Adaptive Card; the URL is the secret."""

from __future__ import annotations

from typing import Any

from alerts.channels.base import Message, post_json, url_error


def validate(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    error = url_error(secrets.get("url", ""))
    return {"url": error} if error else {}


def card(message: Message) -> dict[str, Any]:
    facts = [{"title": k, "value": str(v)} for k, v in message.data.items() if v not in ("", None)]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": message.subject, "weight": "Bolder"},
                        {"type": "TextBlock", "text": message.text, "wrap": True},
                        {"type": "FactSet", "facts": facts[:10]},
                    ],
                },
            }
        ],
    }


def send(config: dict[str, Any], secrets: dict[str, str], message: Message) -> None:
    post_json(secrets["url"], card(message))
