"""Email over Django's email backend (SMTP by default; CERTPORTAL_EMAIL_URL or EMAIL_*)."""

from __future__ import annotations

import smtplib
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email

from alerts.channels import text
from alerts.channels.base import DeliveryError, Message


def validate(config: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    recipients = config.get("recipients") or []
    if not recipients:
        return {"recipients": "Give at least one email address."}
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            return {"recipients": f"{address!r} is not an email address."}
    return {}


def send(config: dict[str, Any], secrets: dict[str, str], message: Message) -> None:
    send_to(list(config["recipients"]), message)


def send_to(recipients: list[str], message: Message) -> None:
    """Send one message; SMTP and network failures become a DeliveryError naming the server."""
    connection = get_connection(settings.CERTPORTAL_ALERT_EMAIL_BACKEND, fail_silently=False)
    mail = EmailMessage(
        subject=text.header(message.subject),
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        headers={"X-Certportal-Delivery": message.delivery_id},
        connection=connection,
    )
    try:
        mail.send()
    except (smtplib.SMTPException, OSError) as exc:
        server = f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        raise DeliveryError(f"SMTP server {server}: {exc or type(exc).__name__}") from exc
