"""The outage test's set-up, run as a subprocess against the private PostgreSQL server.

    python tests/faults/outage_helper.py setup

Prints one JSON object: an Operator's API token, the Application and profile slugs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def setup() -> dict[str, str]:
    from django.contrib.auth import get_user_model

    from applications.choices import Role
    from applications.services import create_application, set_member_role
    from certportal.api.services import create_token
    from certportal.events import Actor
    from profiles import services as ca
    from profiles.choices import Preset

    actor = Actor(label="outage-test")
    root = ca.create_root_ca(
        ca.CASpec(name="O Root", slug="o-root", subject=ca.CASubject("O Root")), actor=actor
    )
    profile = ca.create_profile(
        actor=actor,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=root,
        dns_rules=["*.example.test"],
    )
    app = create_application(name="outage", profiles=[profile], actor=actor)
    user = get_user_model().objects.create_user(username="operator", password="x" * 16)
    set_member_role(app, user, Role.OPERATOR, actor=actor)
    _, token = create_token(user, name="load", actor=actor)
    return {"token": token, "app": app.slug, "profile": profile.slug}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certportal.settings")
    import django

    django.setup()
    sys.stdout.write(json.dumps(setup()) + "\n")
