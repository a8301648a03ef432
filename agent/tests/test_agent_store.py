"""Files switch as a pair: a reader never sees a key with another certificate."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from agent_certs import self_signed
from cryptography import x509

from certportal_agent import crypto, store
from certportal_agent.config import DEFAULT_FILES, Entry, Portal


def entry(directory: Path, **changes: Any) -> Entry:
    fields: dict[str, Any] = {
        "name": "web",
        "portal": Portal("http://p", "app", None, "T", None, 5),
        "profile": "tls-server",
        "common_name": "web.example.test",
        "sans": ("web.example.test",),
        "key_type": "EC_P256",
        "server_key": False,
        "validity_days": None,
        "directory": directory,
        "files": dict(DEFAULT_FILES),
        "key_mode": 0o640,
        "cert_mode": 0o644,
        "owner": None,
        "group": None,
        "pkcs12_password_file": None,
        "reload": (),
        "check": None,
    }
    return Entry(**{**fields, **changes})


def matches(key_pem: bytes, cert_pem: bytes) -> bool:
    key = crypto.load_key(key_pem)
    return crypto.key_matches(key, x509.load_pem_x509_certificates(cert_pem)[0])


def test_a_reader_never_sees_a_mismatched_pair(tmp_path: Path) -> None:
    target = entry(tmp_path / "web")
    store.preflight(target)
    store.install(target, self_signed(), "first")
    stop = threading.Event()
    counts = {"reads": 0, "mismatches": 0}
    serials: set[bytes] = set()

    def read() -> None:
        while not stop.is_set():
            real = (target.directory / "current").resolve()
            key = (real / "privkey.pem").read_bytes()
            cert = (real / "cert.pem").read_bytes()
            bundle = (target.directory / "current" / "bundle.pem").read_bytes()
            counts["reads"] += 1
            serials.add(cert)
            if not matches(key, cert) or not matches(bundle, bundle):
                counts["mismatches"] += 1

    reader = threading.Thread(target=read)
    reader.start()
    for number in range(40):
        store.install(target, self_signed(), f"n{number}")
    stop.set()
    reader.join()
    assert counts["mismatches"] == 0
    assert counts["reads"] > 10 and len(serials) > 2
    assert len(list((target.directory / "versions").iterdir())) == 2  # current and previous


def test_modes_and_the_previous_pair_are_kept(tmp_path: Path) -> None:
    target = entry(tmp_path / "web")
    store.preflight(target)
    first, second = self_signed(), self_signed()
    store.install(target, first, "a")
    store.install(target, second, "b")
    current = target.directory / "current"
    assert stat.S_IMODE((current / "privkey.pem").stat().st_mode) == 0o640
    assert stat.S_IMODE((current / "fullchain.pem").stat().st_mode) == 0o644
    assert (target.directory / "previous" / "cert.pem").read_bytes() == first.certificate
    assert (current / "cert.pem").read_bytes() == second.certificate


def test_a_failed_write_leaves_the_current_pair_and_no_partial_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = entry(tmp_path / "web")
    store.preflight(target)
    store.install(target, self_signed(), "a")
    before = os.readlink(target.directory / "current")
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        store.install(target, self_signed(), "b")
    assert os.readlink(target.directory / "current") == before
    assert [p.name for p in (target.directory / "versions").iterdir()] == [Path(before).name]
