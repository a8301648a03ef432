"""What the agent remembers per entry between passes and restarts (JSON, one file each).

A held request's id and the key generated for it live here, so a restart keeps waiting
for the same approval instead of submitting again.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass
class EntryState:
    """One entry's memory: the portal certificate behind the files, a pending request,
    the last outcome and when to look again."""

    certificate_id: str | None = None
    serial: str | None = None
    not_after: str | None = None
    renew_at: str | None = None
    renew_basis: str | None = None
    pending_request_id: str | None = None
    pending_since: str | None = None
    hooks_pending: bool = False
    last_error: str | None = None
    last_error_at: str | None = None
    failures: int = 0
    retry_at: str | None = None
    last_success_at: str | None = None


def path_for(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.json"


def pending_key_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.pending-key.pem"


def load(state_dir: Path, name: str) -> EntryState:
    try:
        raw: dict[str, Any] = json.loads(path_for(state_dir, name).read_text())
    except (OSError, ValueError):
        return EntryState()
    known = {f.name for f in fields(EntryState)}
    return EntryState(**{k: v for k, v in raw.items() if k in known})


def save(state_dir: Path, name: str, state: EntryState) -> None:
    write_private(path_for(state_dir, name), json.dumps(asdict(state), indent=2).encode())


def ensure_dir(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def write_private(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename: a crash leaves the old file or the new one."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
