"""Alerting verbs: configure channels and rules, turn events and expiry into deliveries,
send deliveries with retries.

Deliveries are rows first, sends second. Turning an outbox event or a crossed expiry
threshold into Delivery rows is idempotent (unique constraint per rule, channel and
dedupe key; duplicates are ignored), and each send is claimed by a conditional update,
so any number of workers deliver each alert once.

- ``rules``: saving channels and rules, matching a rule to a subject, the rules' cache,
  building and storing deliveries.
- ``consumer``: the outbox consumer (``wants_event``, ``consume_events``), approvers,
  alert subjects.
- ``expiry``: the expiry scan (``scan_expiring``) and its thresholds.
- ``sending``: claiming, sending and retrying deliveries, queueing the send task, the
  channel's test message.

Callers import this package (``from alerts import services``); a test that patches a
function patches the submodule that looks it up.
"""

from alerts.services.consumer import (
    approvers_for,
    consume_events,
    render_subject,
    wants_event,
)
from alerts.services.expiry import crossed_key, scan_expiring
from alerts.services.rules import (
    Subject,
    clean_rule,
    matches,
    max_validity_days,
    save_channel,
    save_rule,
)
from alerts.services.sending import (
    MAX_SEND_ATTEMPTS,
    SEND_TASK,
    claim,
    deliver,
    due_deliveries,
    message_for,
    queue_send,
    queue_test_message,
    retry_delay,
    send_due,
)

__all__ = [
    "MAX_SEND_ATTEMPTS",
    "SEND_TASK",
    "Subject",
    "approvers_for",
    "claim",
    "clean_rule",
    "consume_events",
    "crossed_key",
    "deliver",
    "due_deliveries",
    "matches",
    "max_validity_days",
    "message_for",
    "queue_send",
    "queue_test_message",
    "render_subject",
    "retry_delay",
    "save_channel",
    "save_rule",
    "scan_expiring",
    "send_due",
    "wants_event",
]
