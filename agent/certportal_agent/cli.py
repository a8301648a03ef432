"""``certportal-agent once | run | status``.

Exit codes: 0 all well; 1 an entry failed (``once``) or is failing or near expiry
(``status``); 2 the configuration is unusable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from certportal_agent import __version__, crypto, engine, state, store
from certportal_agent.config import DEFAULT_CONFIG, Config, load
from certportal_agent.errors import ConfigError

log = logging.getLogger("certportal_agent")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry lines repeat ours
    try:
        config = load(args.config)
        if args.command != "status":  # status only reads
            state.ensure_dir(config.state_dir)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("state directory: %s", exc)
        return 2
    if args.command == "once":
        return once(config)
    if args.command == "status":
        return status(config, as_json=args.json)
    return run(args.config)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certportal-agent", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("CERTPORTAL_AGENT_CONFIG", DEFAULT_CONFIG),
        help="TOML config (default: $CERTPORTAL_AGENT_CONFIG or %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("once", help="one pass over every certificate (cron, CI)")
    commands.add_parser("run", help="daemon: wake on schedule and on SIGHUP")
    show = commands.add_parser("status", help="each certificate's expiry, renewal and errors")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def once(config: Config, *, force: bool = True) -> int:
    outcomes = [engine.run_entry(config, entry, force=force) for entry in config.entries]
    return 1 if any(outcome.error for outcome in outcomes) else 0


def run(config_path: str) -> int:
    """Pass, sleep until the next thing is due (or SIGHUP), repeat; SIGTERM stops."""
    wake = threading.Event()
    stop = threading.Event()
    hup = threading.Event()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        hup.set()
        wake.set()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    force = True
    while not stop.is_set():
        try:
            config = load(config_path)  # SIGHUP also picks up config changes
        except ConfigError as exc:
            log.error("%s", exc)
            return 2
        once(config, force=force)
        delay = next_wake(config)
        log.info("next pass in %d s", delay)
        wake.wait(delay)
        wake.clear()
        force = hup.is_set()
        hup.clear()
    return 0


def next_wake(config: Config) -> float:
    """Seconds until the earliest renewal, retry or approval poll, within the interval."""
    now = engine.now_utc()
    soonest = now + timedelta(seconds=config.interval)
    for entry in config.entries:
        memory = state.load(config.state_dir, entry.name)
        if memory.retry_at:  # failing: the backoff decides, not the overdue renewal
            moment = datetime.fromisoformat(memory.retry_at)
        elif memory.pending_request_id:
            moment = now + timedelta(seconds=config.poll_interval)
        elif memory.renew_at:
            moment = datetime.fromisoformat(memory.renew_at)
        else:
            continue
        soonest = min(soonest, moment)
    return max(1.0, (soonest - now).total_seconds())


def status(config: Config, *, as_json: bool = False) -> int:
    rows = [_status_row(config, entry) for entry in config.entries]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        for row in rows:
            sys.stdout.write(_status_line(row) + "\n")
    return 1 if any(row["problem"] for row in rows) else 0


def _status_row(config: Config, entry: Any) -> dict[str, Any]:
    memory = state.load(config.state_dir, entry.name)
    installed = store.read_current(entry)
    row: dict[str, Any] = {
        "name": entry.name,
        "serial": None,
        "not_after": None,
        "renew_at": memory.renew_at,
        "pending_request": memory.pending_request_id,
        "last_error": memory.last_error,
        "problem": None,
    }
    if installed is None:
        row["problem"] = "no certificate installed"
    else:
        leaf = crypto.load_certificates(installed.certificate)[0]
        not_after = crypto.lifetime(leaf).not_after
        row["serial"] = crypto.serial_hex(leaf)
        row["not_after"] = not_after.isoformat()
        if not_after - engine.now_utc() < timedelta(days=config.expiry_threshold_days):
            row["problem"] = f"expires within {config.expiry_threshold_days} days"
    if memory.last_error:
        row["problem"] = f"failing: {memory.last_error}"
    return row


def _status_line(row: dict[str, Any]) -> str:
    parts = [
        row["name"],
        f"serial={row['serial'] or '-'}",
        f"expires={row['not_after'] or '-'}",
        f"next_renewal={row['renew_at'] or '-'}",
    ]
    if row["pending_request"]:
        parts.append(f"pending_request={row['pending_request']}")
    parts.append(f"status={'PROBLEM: ' + row['problem'] if row['problem'] else 'ok'}")
    return "  ".join(parts)
