"""The agent's TOML configuration: portal defaults and one entry per certificate.

The service-account token is never read from this file: ``token_file`` or ``token_env``
say where it is, so the config can be world-readable and checked into configuration
management.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certportal_agent.errors import ConfigError

KEY_TYPES = ("RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P384", "ED25519")
DEFAULT_CONFIG = "/etc/certportal-agent/config.toml"
DEFAULT_FILES = {
    "certificate": "cert.pem",
    "chain": "chain.pem",
    "fullchain": "fullchain.pem",
    "key": "privkey.pem",
    "bundle": "bundle.pem",
    "pkcs12": "cert.p12",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

AGENT_KEYS = {
    "state_dir",
    "interval",
    "poll_interval",
    "retries",
    "max_backoff",
    "expiry_threshold_days",
    "command_timeout",
}
PORTAL_KEYS = {"url", "application", "token_file", "token_env", "ca_bundle", "timeout"}
CHECK_KEYS = {"host", "port", "server_name", "timeout", "attempts"}
ENTRY_KEYS = {
    "name",
    "profile",
    "common_name",
    "sans",
    "key_type",
    "server_key",
    "validity_days",
    "directory",
    "files",
    "key_mode",
    "cert_mode",
    "owner",
    "group",
    "pkcs12_password_file",
    "reload",
    "check",
} | {f"portal_{key}" for key in PORTAL_KEYS}


@dataclass(frozen=True)
class Portal:
    """Where and as whom an entry talks to the portal."""

    url: str
    application: str
    token_file: Path | None
    token_env: str | None
    ca_bundle: Path | None
    timeout: float


@dataclass(frozen=True)
class ServiceCheck:
    """After a change: does host:port now serve the new certificate?"""

    host: str
    port: int
    server_name: str | None
    timeout: float
    attempts: int


@dataclass(frozen=True)
class Entry:
    """One certificate the agent keeps: what to ask for and where to put it."""

    name: str
    portal: Portal
    profile: str
    common_name: str
    sans: tuple[str, ...]
    key_type: str
    server_key: bool
    validity_days: int | None
    directory: Path
    files: dict[str, str]
    key_mode: int
    cert_mode: int
    owner: str | None
    group: str | None
    pkcs12_password_file: Path | None
    reload: tuple[tuple[str, ...], ...]
    check: ServiceCheck | None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the certificate must carry: the SANs, else the common name."""
        return self.sans or ((self.common_name,) if self.common_name else ())


@dataclass(frozen=True)
class Config:
    """The whole file: schedule, retry bounds and the entries."""

    path: Path
    state_dir: Path
    interval: float
    poll_interval: float
    retries: int
    max_backoff: float
    expiry_threshold_days: int
    command_timeout: float
    entries: tuple[Entry, ...]


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check the file; raise ConfigError naming the file or entry at fault."""
    source = Path(path)
    try:
        raw = tomllib.loads(source.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config {source}: no such file") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config {source}: {exc}") from exc
    return parse(raw, source)


def parse(raw: dict[str, Any], source: Path) -> Config:
    _refuse_tokens(raw, f"config {source}")
    _known(raw, {"agent", "portal", "certificate"}, f"config {source}")
    agent = _table(raw.get("agent", {}), "[agent]")
    _known(agent, AGENT_KEYS, "[agent]")
    defaults = _table(raw.get("portal", {}), "[portal]")
    _known(defaults, PORTAL_KEYS, "[portal]")
    tables = raw.get("certificate", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"config {source}: no [[certificate]] entries")
    entries = tuple(_entry(_table(t, "[[certificate]]"), defaults, i) for i, t in enumerate(tables))
    names = [entry.name for entry in entries]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"certificate {name!r}: the name is used by more than one entry")
    return Config(
        path=source,
        state_dir=Path(agent.get("state_dir", "/var/lib/certportal-agent")),
        interval=_duration(agent.get("interval", "1h"), "[agent] interval"),
        poll_interval=_duration(agent.get("poll_interval", "1m"), "[agent] poll_interval"),
        retries=_int(agent.get("retries", 3), "[agent] retries", 0, 10),
        max_backoff=_duration(agent.get("max_backoff", "6h"), "[agent] max_backoff"),
        expiry_threshold_days=_int(
            agent.get("expiry_threshold_days", 14), "[agent] expiry_threshold_days", 0, 3650
        ),
        command_timeout=_duration(agent.get("command_timeout", "2m"), "[agent] command_timeout"),
        entries=entries,
    )


def _entry(table: dict[str, Any], defaults: dict[str, Any], index: int) -> Entry:
    name = table.get("name")
    where = f"certificate #{index + 1}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: 'name' must be letters, digits, '.', '_' or '-'")
    where = f"certificate {name!r}"
    _known(table, ENTRY_KEYS, where)
    portal = _portal(table, defaults, where)
    key_type = table.get("key_type", "EC_P256")
    if key_type not in KEY_TYPES:
        raise ConfigError(f"{where}: key_type must be one of {', '.join(KEY_TYPES)}")
    common_name = _str(table.get("common_name", ""), f"{where}: common_name")
    sans = tuple(_str(s, f"{where}: sans") for s in _list(table.get("sans", []), where, "sans"))
    if not common_name and not sans:
        raise ConfigError(f"{where}: give common_name and/or sans")
    validity = table.get("validity_days")
    return Entry(
        name=name,
        portal=portal,
        profile=_str(_required(table, "profile", where), f"{where}: profile"),
        common_name=common_name,
        sans=sans,
        key_type=key_type,
        server_key=bool(table.get("server_key", False)),
        validity_days=None if validity is None else _int(validity, f"{where}: validity_days"),
        directory=Path(_str(_required(table, "directory", where), f"{where}: directory")),
        files=_files(table.get("files", {}), where),
        key_mode=_mode(table.get("key_mode", "0600"), f"{where}: key_mode"),
        cert_mode=_mode(table.get("cert_mode", "0644"), f"{where}: cert_mode"),
        owner=table.get("owner"),
        group=table.get("group"),
        pkcs12_password_file=_path(table.get("pkcs12_password_file")),
        reload=tuple(_command(c, where) for c in _list(table.get("reload", []), where, "reload")),
        check=_check(table.get("check"), where),
    )


def _portal(table: dict[str, Any], defaults: dict[str, Any], where: str) -> Portal:
    merged = {**defaults, **{k[7:]: v for k, v in table.items() if k.startswith("portal_")}}
    url = _str(_required(merged, "url", where, "portal url"), f"{where}: portal url").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: portal url must start with http:// or https://")
    if not merged.get("token_file") and not merged.get("token_env"):
        raise ConfigError(f"{where}: set token_file or token_env (never the token itself)")
    return Portal(
        url=url,
        application=_str(
            _required(merged, "application", where, "portal application"), f"{where}: application"
        ),
        token_file=_path(merged.get("token_file")),
        token_env=merged.get("token_env"),
        ca_bundle=_path(merged.get("ca_bundle")),
        timeout=float(merged.get("timeout", 30)),
    )


def _check(raw: Any, where: str) -> ServiceCheck | None:
    if raw is None:
        return None
    table = _table(raw, f"{where}: check")
    _known(table, CHECK_KEYS, f"{where}: check")
    return ServiceCheck(
        host=_str(_required(table, "host", where, "check host"), f"{where}: check host"),
        port=_int(_required(table, "port", where, "check port"), f"{where}: check port", 1, 65535),
        server_name=table.get("server_name"),
        timeout=float(table.get("timeout", 10)),
        attempts=_int(table.get("attempts", 5), f"{where}: check attempts", 1, 100),
    )


def _files(raw: Any, where: str) -> dict[str, str]:
    table = _table(raw, f"{where}: files")
    _known(table, set(DEFAULT_FILES), f"{where}: files")
    files = {**DEFAULT_FILES, **table}
    for kind, name in files.items():
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            raise ConfigError(f"{where}: files.{kind} must be a plain file name")
    if len(set(files.values())) != len(files):
        raise ConfigError(f"{where}: two output files share a name")
    return files


def _refuse_tokens(raw: Any, where: str) -> None:
    """A token pasted into the config is refused: the file is not a place for secrets."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key in ("token", "portal_token", "password"):
                raise ConfigError(
                    f"{where}: '{key}' is not allowed in the config; "
                    "use token_file/token_env or a password file"
                )
            _refuse_tokens(value, where)
    elif isinstance(raw, list):
        for item in raw:
            _refuse_tokens(item, where)


def _known(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")


def _required(table: dict[str, Any], key: str, where: str, label: str = "") -> Any:
    if key not in table:
        raise ConfigError(f"{where}: {label or key} is required")
    return table[key]


def _table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    return raw


def _list(raw: Any, where: str, key: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: {key} must be a list")
    return raw


def _str(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{where} must be a string")
    return raw


def _int(raw: Any, where: str, low: int = 1, high: int = 36500) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        raise ConfigError(f"{where} must be a whole number from {low} to {high}")
    return raw


def _mode(raw: Any, where: str) -> int:
    if isinstance(raw, str) and re.fullmatch(r"0?[0-7]{3}", raw):
        return int(raw, 8)
    raise ConfigError(f'{where} must be an octal string such as "0640"')


def _duration(raw: Any, where: str) -> float:
    """Seconds, from a number or "30s", "5m", "1h", "1d"."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > 0:
        return float(raw)
    found = _DURATION.match(str(raw).strip())
    if not found or int(found.group(1)) <= 0:
        raise ConfigError(f'{where} must be a positive duration such as "30s", "5m" or "1h"')
    return float(int(found.group(1)) * _UNITS[found.group(2)])


def _command(raw: Any, where: str) -> tuple[str, ...]:
    """A command as a string (split like a shell would, but run without one) or a list."""
    if isinstance(raw, str):
        words = shlex.split(raw)
    elif isinstance(raw, list) and all(isinstance(word, str) for word in raw):
        words = list(raw)
    else:
        raise ConfigError(f"{where}: each reload command is a string or a list of strings")
    if not words:
        raise ConfigError(f"{where}: a reload command is empty")
    return tuple(words)


def _path(raw: Any) -> Path | None:
    return None if raw in (None, "") else Path(str(raw))
