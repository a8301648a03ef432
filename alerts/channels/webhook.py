"""Generic webhook: a JSON body signed with HMAC-SHA256 (see docs/alerts.md).

Headers: X-Certportal-Timestamp (unix seconds), X-Certportal-Signature
("sha256=" + hex HMAC-SHA256 over "<timestamp>.<body>" with the channel's secret),
X-Certportal-Delivery (the delivery id, stable across retries: dedupe on it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from alerts.channels.base import Message, post_json, url_error


def validate(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    errors = {}
    error = url_error(config.get("url", ""))
    if error:
        errors["url"] = error
    if len(secrets.get("secret", "")) < 16:
        errors["secret"] = "The signing secret must be at least 16 characters."
    return errors


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str, *, max_age: int = 300) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > max_age:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def send(config: dict[str, Any], secrets: dict[str, str], message: Message) -> None:
    body = json.dumps(
        {
            "id": message.delivery_id,
            "event": message.event,
            "subject": message.subject,
            "text": message.text,
            "severity": message.severity,
            "data": message.data,
        },
        sort_keys=True,
    ).encode()
    timestamp = str(int(time.time()))
    post_json(
        config["url"],
        body,
        {
            "X-Certportal-Timestamp": timestamp,
            "X-Certportal-Signature": signature(secrets["secret"], timestamp, body),
            "X-Certportal-Delivery": message.delivery_id,
            "X-Certportal-Event": message.event,
        },
    )
