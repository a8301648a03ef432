"""One side of the syncs multi-process test, run as a subprocess against a throwaway
database (see tests/syncs/test_clusters.py).

    python tests/syncs/cluster_scenario.py setup N KEY_VAULT_URL CLOUDFLARE_API_URL
    python tests/syncs/cluster_scenario.py issue N
    python tests/syncs/cluster_scenario.py revoke N
    python tests/syncs/cluster_scenario.py kick
    python tests/syncs/cluster_scenario.py status

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

from certportal.events import Actor  # noqa: E402

ACTOR = Actor(label="syncs-workers-test")


def setup(key_vault: str, cloudflare_api: str) -> dict[str, object]:
    """CA, profile, Application, two connections and two syncs (before any certificate:
    every certificate then reaches the syncs through the outbox)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from applications.services import create_application
    from profiles import services as ca
    from profiles.choices import Preset
    from syncs import services
    from tests.syncs import fakes

    root = ca.create_root_ca(
        ca.CASpec(name="S Root", slug="s-root", subject=ca.CASubject("S Root"), path_length=1),
        actor=ACTOR,
    )
    profile = ca.create_profile(
        actor=ACTOR,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=root,
        dns_rules=["*.example.test"],
    )
    app = create_application(name="syncs", profiles=[profile], actor=ACTOR)
    azure = services.save_connection(
        app,
        name="azure",
        kind="azure",
        credentials={
            "tenant_id": fakes.TENANT,
            "client_id": fakes.CLIENT_ID,
            "client_secret": fakes.CLIENT_SECRET,
        },
        config={"authority_host": key_vault},
        actor=ACTOR,
    )
    cf = services.save_connection(
        app,
        name="cf",
        kind="cloudflare",
        credentials={"api_token": fakes.CF_TOKEN},
        config={"api_base_url": cloudflare_api},
        actor=ACTOR,
    )
    for name, destination, connection, options in (
        ("kv", "azure-key-vault", azure, {"vault_url": key_vault}),
        ("cf", "cloudflare", cf, {"zone_id": fakes.ZONE}),
    ):
        services.save_sync(
            app,
            services.SyncSpec(
                name=name,
                destination=destination,
                connection=connection,
                profile=profile,
                options=options,
            ),
            actor=ACTOR,
        )
    return {"ok": True}


def issue(count: int) -> dict[str, int]:
    from applications.models import Application
    from issuance.services import Ask, KeySpec, submit_many

    app = Application.objects.get(name="syncs")
    profile = app.profiles.get()
    for start in range(0, count, 50):
        asks = [
            Ask(key_spec=KeySpec("EC_P256", f"h{i}.example.test", [f"h{i}.example.test"]))
            for i in range(start, min(start + 50, count))
        ]
        submit_many(application=app, profile=profile, method="ui", actor=ACTOR, asks=asks)
    return {"issued": count}


def revoke(count: int) -> dict[str, int]:
    from issuance.models import Certificate
    from issuance.services import revoke as revoke_one

    for certificate in Certificate.objects.order_by("common_name")[:count]:
        revoke_one(certificate, reason="superseded", actor=ACTOR)
    return {"revoked": count}


def kick() -> dict[str, str]:
    """What the schedules do: the outbox sweep and the sync pushes."""
    from django_q.tasks import async_task

    for func in ("certportal.tasks.sweep_outbox", "syncs.tasks.push_due"):
        async_task(func)
    return {"kicked": "yes"}


def status() -> dict[str, object]:
    from certportal.models import OutboxEvent
    from syncs.models import SyncItem

    by_sync: dict[str, dict[str, int]] = {}
    for name, item_status, n in (
        SyncItem.objects.values_list("sync__name", "status").annotate(n=Count("id")).order_by()
    ):
        by_sync.setdefault(name, {})[item_status] = n
    return {
        "outbox_pending": OutboxEvent.objects.filter(dispatched_at__isnull=True).count(),
        "items": by_sync,
        "max_attempts": max(SyncItem.objects.values_list("attempts", flat=True), default=0),
    }


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "setup":
        out: object = setup(args[0], args[1])
    elif command == "issue":
        out = issue(int(args[0]))
    elif command == "revoke":
        out = revoke(int(args[0]))
    elif command == "kick":
        out = kick()
    else:
        out = status()
    sys.stdout.write(json.dumps(out) + "\n")
