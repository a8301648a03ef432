"""Microsoft Teams incoming webhook (Workflows): an Adaptive Card; the URL is the secret."""

from __future__ import annotations

from typing import Any

from alerts.channels import text
from alerts.channels.base import Message, post_json, url_error


def validate(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    error = url_error(secrets.get("url", ""))
    return {"url": error} if error else {}


def card(message: Message) -> dict[str, Any]:
    """Subject, the facts as text and as a FactSet; every certificate field escaped."""
    facts = [{"title": name, "value": text.teams(value)} for name, value in message.facts]
    lines = "\n\n".join(f"{fact['title']}: {fact['value']}" for fact in facts)
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
                        {
                            "type": "TextBlock",
                            "text": text.teams(message.subject),
                            "weight": "Bolder",
                        },
                        {"type": "TextBlock", "text": lines, "wrap": True},
                        {"type": "FactSet", "facts": facts[:10]},
                    ],
                },
            }
        ],
    }


def send(config: dict[str, Any], secrets: dict[str, str], message: Message) -> None:
    post_json(secrets["url"], card(message))
