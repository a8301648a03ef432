"""The output files of one entry, switched as a set.

Layout under the entry's directory::

    versions/<time>-<serial>/   cert.pem chain.pem fullchain.pem privkey.pem bundle.pem [cert.p12]
    current  -> versions/...    (what services read: current/fullchain.pem, current/privkey.pem)
    previous -> versions/...    (the pair before, kept as a backup)

A new version is written into a temporary directory (each file created with its mode,
written, fsynced), renamed into ``versions/``, and then ``current`` is replaced by a new
symlink with one rename(2). The key and its certificate therefore change together: a
reader that resolves ``current`` once sees either the old pair or the new pair, never a
mix, and ``bundle.pem`` (key + full chain in one file) is consistent on its own. Only
the two versions named by ``current`` and ``previous`` are kept.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from certportal_agent.config import Entry
from certportal_agent.errors import ConfigError

CURRENT = "current"
PREVIOUS = "previous"
VERSIONS = "versions"


@dataclass(frozen=True)
class Material:
    """What one version holds, PEM: key, leaf certificate, issuers above it."""

    key: bytes
    certificate: bytes
    chain: bytes
    pkcs12: bytes | None = None

    @property
    def fullchain(self) -> bytes:
        return self.certificate.strip() + b"\n" + self.chain.strip() + b"\n"


def current_dir(entry: Entry) -> Path:
    return entry.directory / CURRENT


def read_current(entry: Entry) -> Material | None:
    """The installed pair, read through one resolution of ``current``."""
    link = current_dir(entry)
    if not link.is_symlink():
        return None
    real = link.resolve()
    try:
        return Material(
            key=(real / entry.files["key"]).read_bytes(),
            certificate=(real / entry.files["certificate"]).read_bytes(),
            chain=(real / entry.files["chain"]).read_bytes(),
        )
    except OSError:
        return None


def preflight(entry: Entry) -> None:
    """Before asking the portal: the directory exists or can be created, and is writable
    (so a refused write never follows an issued certificate)."""
    where = f"certificate {entry.name!r}"
    try:
        (entry.directory / VERSIONS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{where}: directory {entry.directory}: {exc.strerror}") from exc
    for path in (entry.directory, entry.directory / VERSIONS):
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: directory {path} is not writable")
    _ids(entry, where)


def install(entry: Entry, material: Material, serial: str) -> Path:
    """Write a new version and switch ``current`` to it; returns the version directory."""
    versions = entry.directory / VERSIONS
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = versions / f"{stamp}-{serial}"
    staging = versions / f".staging-{secrets.token_hex(6)}"
    staging.mkdir(mode=0o755)
    try:
        _write_all(entry, staging, material)
        _fsync_dir(staging)
        os.rename(staging, final)
        _fsync_dir(versions)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = _target(entry.directory / CURRENT)
    if old is not None:
        _point(entry.directory, PREVIOUS, old)
    _point(entry.directory, CURRENT, f"{VERSIONS}/{final.name}")
    _prune(entry.directory)
    return final


def _write_all(entry: Entry, folder: Path, material: Material) -> None:
    files = entry.files
    private = entry.key_mode
    public = entry.cert_mode
    _write(entry, folder / files["certificate"], material.certificate, public)
    _write(entry, folder / files["chain"], material.chain, public)
    _write(entry, folder / files["fullchain"], material.fullchain, public)
    _write(entry, folder / files["key"], material.key, private)
    _write(
        entry, folder / files["bundle"], material.key.strip() + b"\n" + material.fullchain, private
    )
    if material.pkcs12 is not None:
        _write(entry, folder / files["pkcs12"], material.pkcs12, private)


def _write(entry: Entry, path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask does not decide the mode
        uid, gid = _ids(entry, f"certificate {entry.name!r}")
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _ids(entry: Entry, where: str) -> tuple[int, int]:
    try:
        uid = pwd.getpwnam(entry.owner).pw_uid if entry.owner else -1
        gid = grp.getgrnam(entry.group).gr_gid if entry.group else -1
    except KeyError as exc:
        raise ConfigError(f"{where}: unknown owner or group {exc.args[0]}") from exc
    return uid, gid


def _point(directory: Path, name: str, target: str) -> None:
    """Replace the symlink ``name`` with one rename: readers see the old or the new link."""
    temporary = directory / f".{name}-{secrets.token_hex(6)}"
    os.symlink(target, temporary)
    os.replace(temporary, directory / name)
    _fsync_dir(directory)


def _target(link: Path) -> str | None:
    return os.readlink(link) if link.is_symlink() else None


def _prune(directory: Path) -> None:
    keep = {
        Path(t).name for t in (_target(directory / CURRENT), _target(directory / PREVIOUS)) if t
    }
    for version in (directory / VERSIONS).iterdir():
        if version.name not in keep:  # older versions and a crashed run's staging folder
            shutil.rmtree(version, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
