"""Shared set-up for benchmark scripts: a throwaway PostgreSQL database, migrated."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def setup(db_name: str) -> None:
    """Create db_name afresh, point Django at it, migrate."""
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", db_name], check=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db_name], check=True)
    os.environ["DATABASE_URL"] = f"{PG}/{db_name}"
    os.environ.setdefault("CERTPORTAL_KEK", base64.b64encode(os.urandom(32)).decode())
    os.environ.setdefault(
        "CERTPORTAL_SECRET_KEY", "bench-" + base64.b64encode(os.urandom(24)).decode()
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def root_profile_application(name: str = "bench") -> tuple[Any, Any, Any]:
    """A P-256 root CA, a TLS server profile on it for *.example.test and an Application
    with that profile, made through the services (after ``setup``)."""
    from applications.services import create_application
    from certportal.events import Actor
    from profiles import services
    from profiles.choices import Preset

    actor = Actor(label="bench")
    root = services.create_root_ca(
        services.CASpec(
            name=f"{name} root",
            slug=f"{name}-root",
            subject=services.CASubject(f"{name} root"),
            path_length=1,
        ),
        actor=actor,
    )
    profile = services.create_profile(
        actor=actor,
        preset=Preset.TLS_SERVER,
        name="tls",
        slug="tls",
        issuing_ca=root,
        dns_rules=["*.example.test"],
    )
    return root, profile, create_application(name=name, profiles=[profile], actor=actor)
