"""PagerDuty Events API v2: trigger an event with the integration's routing key."""

from __future__ import annotations

from typing import Any

from alerts.channels.base import Message, post_json, url_error

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


def validate(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    errors = {}
    key = secrets.get("routing_key", "")
    if len(key) != 32 or not key.isalnum():
        errors["routing_key"] = "A PagerDuty routing (integration) key is 32 letters and digits."
    if config.get("url"):
        error = url_error(config["url"])
        if error:
            errors["url"] = error
    return errors


def body(routing_key: str, message: Message) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": message.dedupe_key or message.delivery_id,
        "payload": {
            "summary": message.subject[:1024],
            "source": "certportal",
            "severity": message.severity,
            "custom_details": {"text": message.text, **message.data},
        },
    }


def send(config: dict[str, Any], secrets: dict[str, str], message: Message) -> None:
    post_json(config.get("url") or EVENTS_URL, body(secrets["routing_key"], message))
