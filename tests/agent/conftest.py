"""A live portal, a service account's token on disk, and a runner for the agent's
command line (``python -m certportal_agent``, a separate process like on a host)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from applications import services as members
from applications.choices import Role
from applications.services import create_application
from certportal.api import services as credentials
from certportal.events import Actor

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"
ACTOR = Actor(label="pytest")


@dataclass
class Host:
    """A host running the agent: its config, token file and output directory."""

    root: Path
    portal_url: str
    token_file: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    agent: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "agent.toml"

    def directory(self, name: str = "web") -> Path:
        return self.root / "out" / name

    def entry(self, name: str = "web", **settings: Any) -> dict[str, Any]:
        entry = {
            "name": name,
            "profile": "tls-server",
            "common_name": f"{name}.example.test",
            "sans": [f"{name}.example.test"],
            "directory": str(self.directory(name)),
            **settings,
        }
        self.entries.append(entry)
        return entry

    def write(self) -> Path:
        agent = {"state_dir": str(self.root / "state"), "retries": 0, **self.agent}
        lines = ["[agent]", *_pairs(agent), "", "[portal]"]
        lines += _pairs(
            {"url": self.portal_url, "application": "web-hosts", "token_file": str(self.token_file)}
        )
        for entry in self.entries:
            check = entry.get("check")
            lines += [
                "",
                "[[certificate]]",
                *_pairs({k: v for k, v in entry.items() if k != "check"}),
            ]
            if check:
                lines += ["[certificate.check]", *_pairs(check)]
        self.config.write_text("\n".join(lines) + "\n")
        return self.config

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        self.write()
        env = {**os.environ, "PYTHONPATH": str(AGENT_DIR)}
        return subprocess.run(
            [sys.executable, "-m", "certportal_agent", "-c", str(self.config), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )


def _pairs(table: dict[str, Any]) -> list[str]:
    return [f"{key} = {_toml(value)}" for key, value in table.items()]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def portal(
    live_server: Any, settings: Any, tls_profile: Any, make_profile: Any, issuing_ca: Any
) -> Any:
    """The portal at live_server, with an Application holding a normal and a short-lived
    profile; certificates point OCSP at it."""
    settings.CERTPORTAL_BASE_URL = live_server.url
    short = make_profile(
        "short-lived",
        issuing_ca,
        validity_days_default=3,
        validity_days_max=3,
        renewal_window_days=2,
    )
    return create_application(name="web-hosts", profiles=[tls_profile, short], actor=ACTOR)


@pytest.fixture
def service_token(portal: Any) -> str:
    account = members.create_service_account(
        portal, name="host-agent", role=Role.OPERATOR, actor=ACTOR
    )
    return credentials.create_token(account.user, name="agent", actor=ACTOR)[1]


@pytest.fixture
def host(tmp_path: Path, live_server: Any, service_token: str) -> Host:
    token_file = tmp_path / "token"
    token_file.write_text(service_token + "\n")
    token_file.chmod(0o600)
    return Host(root=tmp_path, portal_url=live_server.url, token_file=token_file)


@pytest.fixture
def admin_token(portal: Any, make_user: Callable[..., Any]) -> str:
    admin = make_user("web-admin")
    members.set_member_role(portal, admin, Role.ADMIN, actor=ACTOR)
    return credentials.create_token(admin, name="admin", actor=ACTOR)[1]
