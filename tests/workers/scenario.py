"""One side of the multi-process tests, run as a subprocess against a throwaway database.

    python tests/workers/scenario.py setup HELD CSR RECEIVER_URL
    python tests/workers/scenario.py kick
    python tests/workers/scenario.py status

Prints one JSON object. The environment names the database, Redis and the cluster.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certportal.settings")

import django

django.setup()

from django.db.models import Count  # noqa: E402

SECRET = "workers-test-webhook-secret-0123"


def setup(held: int, csr: int, receiver_url: str) -> dict[str, int]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cryptography.hazmat.primitives.serialization import Encoding

    from alerts import services as alerts
    from alerts.models import AlertRule
    from applications.services import create_application
    from certportal.events import Actor
    from issuance.services import Ask, KeySpec, submit_many
    from pki import csr as pki_csr
    from pki import keys
    from profiles import services as ca
    from profiles.choices import Preset

    actor = Actor(label="workers-test")
    root = ca.create_root_ca(
        ca.CASpec(name="W Root", slug="w-root", subject=ca.CASubject("W Root"), path_length=1),
        actor=actor,
    )
    profile = ca.create_profile(
        actor=actor,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=root,
        dns_rules=["*.example.test"],
    )
    app = create_application(name="workers", profiles=[profile], actor=actor)
    channel = alerts.save_channel(
        app,
        name="hook",
        kind="webhook",
        config={"url": receiver_url},
        secrets={"secret": SECRET},
        actor=actor,
    )
    for name, events in (("renewals", ["renewed"]), ("expiry", ["expiring"])):
        rule = AlertRule(application=app, name=name, events=events, thresholds_days=[7])
        alerts.save_rule(app, rule, [channel.pk], actor=actor)
    # Held keys (RSA: slow enough to kill a worker mid-batch), valid 20 days: the
    # profile's 30-day window makes them due at once.
    specs = [
        Ask(
            key_spec=KeySpec("RSA_2048", f"h{i}.example.test", [f"h{i}.example.test"]),
            validity_days=20,
        )
        for i in range(held)
    ]
    # CSR certificates valid 5 days: one expiry alert each (threshold 7 days).
    key = keys.generate_private_key("EC_P256")
    csrs = [
        Ask(
            csr=pki_csr.build_csr(
                key, f"c{i}.example.test", dns_names=[f"c{i}.example.test"]
            ).public_bytes(Encoding.PEM),
            validity_days=5,
        )
        for i in range(csr)
    ]
    for chunk in range(0, len(specs), 50):
        submit_many(
            application=app,
            profile=profile,
            method="ui",
            actor=actor,
            asks=specs[chunk : chunk + 50],
        )
    submit_many(application=app, profile=profile, method="api", actor=actor, asks=csrs)
    return {"held": held, "csr": csr}


def kick() -> dict[str, str]:
    """What the schedules do: the renewal sweep, the expiry scan, the outbox sweep and
    alert retries, queued to the broker for whichever cluster takes them."""
    from django_q.tasks import async_task

    for func in (
        "issuance.renewal.tasks.renew_due_certificates",
        "alerts.tasks.scan_expiring_certificates",
        "certportal.tasks.sweep_outbox",
        "alerts.tasks.send_due_deliveries",
    ):
        async_task(func)
    return {"kicked": "yes"}


def status() -> dict[str, object]:
    from alerts.models import Delivery
    from certportal.models import OutboxEvent
    from issuance.choices import CertificateStatus
    from issuance.models import Certificate, CertificateRequest

    originals = Certificate.objects.filter(method__in=["ui", "api"])
    return {
        "held_active": originals.filter(method="ui", status=CertificateStatus.ACTIVE).count(),
        "superseded": originals.filter(status=CertificateStatus.SUPERSEDED).count(),
        "renewals": Certificate.objects.filter(method="renewal").count(),
        "renewal_requests": CertificateRequest.objects.filter(replaces__isnull=False).count(),
        "max_successors": max(
            [
                r["n"]
                for r in CertificateRequest.objects.filter(replaces__isnull=False)
                .values("replaces")
                .annotate(n=Count("id"))
            ],
            default=0,
        ),
        "failed_renewals": originals.filter(renewal_attempts__gt=0).count(),
        "outbox_pending": OutboxEvent.objects.filter(dispatched_at__isnull=True).count(),
        "deliveries": dict(
            Delivery.objects.values_list("status").annotate(n=Count("id")).order_by()
        ),
        "deliveries_by_event": dict(
            Delivery.objects.values_list("event").annotate(n=Count("id")).order_by()
        ),
        "delivery_ids": sorted(str(pk) for pk in Delivery.objects.values_list("pk", flat=True)),
    }


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "setup":
        out: object = setup(int(args[0]), int(args[1]), args[2])
    elif command == "kick":
        out = kick()
    else:
        out = status()
    sys.stdout.write(json.dumps(out) + "\n")
