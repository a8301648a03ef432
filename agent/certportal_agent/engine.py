"""One pass over one entry: decide whether a certificate is needed, obtain it, install
it, reload the service and check it serves the new certificate.

Files change only after the portal issued a certificate whose key is in hand and
matches; any failure before that leaves them as they were.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509

from certportal_agent import crypto, portal, state, store
from certportal_agent.config import Config, Entry
from certportal_agent.errors import AgentError, PortalRefused
from certportal_agent.state import EntryState

log = logging.getLogger("certportal_agent")

WAITING_STATES = {"submitted", "pending_approval", "approved"}


@dataclass(frozen=True)
class Outcome:
    """What a pass did for an entry (for the log and the exit code)."""

    name: str
    changed: bool = False
    waiting: bool = False
    error: str | None = None


def now_utc() -> datetime:
    return datetime.now(UTC)


def run_entry(config: Config, entry: Entry, *, force: bool = True) -> Outcome:
    """One pass for an entry; errors are logged and remembered, never raised."""
    memory = state.load(config.state_dir, entry.name)
    if not force and memory.retry_at and datetime.fromisoformat(memory.retry_at) > now_utc():
        return Outcome(entry.name, error=memory.last_error)
    try:
        outcome = Pass(config, entry, memory).run()
    except AgentError as exc:
        outcome = _report(config, entry, memory, str(exc))
    except (OSError, ValueError, KeyError) as exc:  # a disk, key or answer the agent cannot use
        outcome = _report(config, entry, memory, f"{type(exc).__name__}: {exc}")
    state.save(config.state_dir, entry.name, memory)
    return outcome


def _report(config: Config, entry: Entry, memory: EntryState, error: str) -> Outcome:
    where = f"certificate {entry.name!r}"
    message = error if error.startswith(where) else f"{where}: {error}"
    _failed(config, memory, message)
    log.error("%s", message)
    return Outcome(entry.name, error=message)


def _failed(config: Config, memory: EntryState, message: str) -> None:
    """Remember the error and back off: one minute, doubling, up to max_backoff."""
    memory.failures += 1
    memory.last_error = message
    memory.last_error_at = now_utc().isoformat()
    delay = min(config.max_backoff, 60.0 * 2 ** min(memory.failures - 1, 16))
    memory.retry_at = (now_utc() + timedelta(seconds=delay)).isoformat()


class Pass:
    """The steps of one entry's pass, sharing its config, state and portal client."""

    def __init__(self, config: Config, entry: Entry, memory: EntryState) -> None:
        self.config = config
        self.entry = entry
        self.memory = memory
        self.where = f"certificate {entry.name!r}"
        # A renewal (linked by ``replaces``) only for the installed certificate with the
        # same names, not revoked; anything else is a new issue.
        self.renewable = False

    def run(self) -> Outcome:
        store.preflight(self.entry)
        password = self._pkcs12_password()
        self.client = portal.Client(
            self.entry.portal,
            portal.read_token(self.entry.portal, self.where),
            retries=self.config.retries,
        )
        if self.memory.pending_request_id:
            return self._poll(password)
        if self.memory.hooks_pending:
            self._after_change(None)
        installed = store.read_current(self.entry)
        reason = self._why_renew(installed)
        if reason is None:
            self._succeeded()
            return Outcome(self.entry.name)
        log.info("%s: requesting a certificate: %s", self.entry.name, reason)
        return self._obtain(password)

    # -- deciding --------------------------------------------------------------------

    def _why_renew(self, installed: store.Material | None) -> str | None:
        if installed is None:
            return "no certificate installed"
        chain = crypto.load_certificates(installed.certificate + b"\n" + installed.chain)
        leaf = chain[0]
        if not set(self.entry.names) <= crypto.names_of(leaf):
            return "the configured names differ from the installed certificate's"
        if crypto.serial_hex(leaf) != self.memory.serial:
            self.memory.certificate_id = None  # files replaced by someone else
        if len(chain) > 1 and portal.ocsp_status(leaf, chain[1], 10) == "revoked":
            return "OCSP says the certificate is revoked"
        renew_at, basis = self._renew_at(leaf)
        self.memory.renew_at = renew_at.isoformat()
        self.memory.renew_basis = basis
        self.memory.not_after = crypto.lifetime(leaf).not_after.isoformat()
        if basis == "revoked":
            return "the portal says the certificate is revoked"
        self.renewable = True
        if now_utc() >= renew_at:
            return f"renewal due since {renew_at.isoformat(timespec='seconds')} ({basis})"
        return None

    def _renew_at(self, leaf: x509.Certificate) -> tuple[datetime, str]:
        """A moment inside the portal's window, the same one on every pass (the jitter is
        derived from the serial), or two thirds of the lifetime without a window."""
        window = None
        if self.memory.certificate_id:
            window = self.client.renewal_window(self.memory.certificate_id)
        if window is None:
            return crypto.lifetime(leaf).two_thirds(), "two thirds of the lifetime"
        status, start, end = window
        if status == "revoked":
            return start, "revoked"
        return jittered(start, end, crypto.serial_hex(leaf)), "portal renewal window"

    # -- obtaining ---------------------------------------------------------------------

    def _obtain(self, password: bytes | None) -> Outcome:
        entry = self.entry
        if entry.server_key:
            answer = self.client.issue(
                entry.profile,
                key_algorithm=entry.key_type,
                common_name=entry.common_name,
                sans=list(entry.sans),
                validity_days=entry.validity_days,
            )
            key_pem = None
        else:
            key = crypto.generate_key(entry.key_type)
            key_pem = crypto.key_pem(key)
            csr = crypto.build_csr(key, entry.common_name, entry.sans).decode()
            answer = self._send_csr(csr)
        if answer.request_id is not None:
            return self._held(answer.request_id, key_pem)
        assert answer.certificate is not None
        if key_pem is None:
            key_pem = str(answer.certificate["private_key"]).encode()
        self._install(answer.certificate, key_pem, password)
        return Outcome(entry.name, changed=True)

    def _send_csr(self, csr: str) -> portal.Answer:
        """Renew (linked to the old certificate, the approval policy's renewal rules
        apply) when the portal knows the installed one; else a new issue."""
        if self.renewable and self.memory.certificate_id:
            try:
                return self.client.renew(self.memory.certificate_id, csr)
            except PortalRefused as exc:
                if exc.code not in ("already_renewed", "already_revoked") and exc.status != 404:
                    raise
                log.info("%s: renewal refused (%s); issuing anew", self.entry.name, exc.code)
        return self.client.issue(
            self.entry.profile, csr=csr, validity_days=self.entry.validity_days
        )

    def _held(self, request_id: str, key_pem: bytes | None) -> Outcome:
        log.info(
            "%s: request %s is held for approval; files unchanged", self.entry.name, request_id
        )
        state.ensure_dir(self.config.state_dir)
        if key_pem is not None:
            state.write_private(
                state.pending_key_path(self.config.state_dir, self.entry.name), key_pem
            )
        self.memory.pending_request_id = request_id
        self.memory.pending_since = now_utc().isoformat()
        self._succeeded()
        return Outcome(self.entry.name, waiting=True)

    def _poll(self, password: bytes | None) -> Outcome:
        request_id = self.memory.pending_request_id
        assert request_id is not None
        found = self.client.request(request_id)
        status = "gone" if found is None else str(found.get("status"))
        if status in WAITING_STATES:
            log.info("%s: request %s still %s", self.entry.name, request_id, status)
            self._succeeded()
            return Outcome(self.entry.name, waiting=True)
        key_file = state.pending_key_path(self.config.state_dir, self.entry.name)
        self.memory.pending_request_id = None
        if found is None or status != "issued" or not found.get("certificate"):
            key_file.unlink(missing_ok=True)
            raise PortalRefused(f"request {request_id} ended {status}; a new one follows")
        certificate = found["certificate"]
        if self.entry.server_key:
            key_pem = self.client.held_key(str(certificate["id"]))
        else:
            key_pem = key_file.read_bytes()
        self._install(certificate, key_pem, password)
        key_file.unlink(missing_ok=True)
        return Outcome(self.entry.name, changed=True)

    # -- installing --------------------------------------------------------------------

    def _install(self, issued: dict[str, object], key_pem: bytes, password: bytes | None) -> None:
        certificate_pem = str(issued["certificate"]).encode()
        chain_pem = str(issued.get("chain") or "").encode()
        key = crypto.load_key(key_pem)
        leaf = crypto.load_certificates(certificate_pem)[0]
        if not crypto.key_matches(key, leaf):
            raise PortalRefused("the issued certificate does not match the key; files unchanged")
        p12 = None
        if password is not None:
            chain = crypto.load_certificates(chain_pem)
            p12 = crypto.pkcs12_bytes(self.entry.name, key, leaf, chain, password)
        serial = crypto.serial_hex(leaf)
        material = store.Material(key_pem, certificate_pem, chain_pem, p12)
        version = store.install(self.entry, material, serial)
        log.info("%s: installed serial %s (%s)", self.entry.name, serial, version.name)
        self.memory.certificate_id = str(issued["id"])
        self.memory.serial = serial
        self.memory.not_after = crypto.lifetime(leaf).not_after.isoformat()
        self.memory.renew_at = None
        try:
            renew_at, self.memory.renew_basis = self._renew_at(leaf)
            self.memory.renew_at = renew_at.isoformat()
        except AgentError as exc:  # installed all the same; the next pass asks again
            log.warning("%s: no renewal window yet: %s", self.entry.name, exc)
        self.memory.hooks_pending = True
        state.save(self.config.state_dir, self.entry.name, self.memory)
        self._after_change(serial)

    def _after_change(self, serial: str | None) -> None:
        """Reload commands, then the service check; remembered until they succeed."""
        for command in self.entry.reload:
            run_command(command, self.config.command_timeout, self.where)
        self.memory.hooks_pending = False
        if self.entry.check is not None:
            verify_served(self.entry, serial or self.memory.serial or "", self.where)
        self._succeeded()

    def _succeeded(self) -> None:
        self.memory.failures = 0
        self.memory.last_error = None
        self.memory.last_error_at = None
        self.memory.retry_at = None
        self.memory.last_success_at = now_utc().isoformat()

    def _pkcs12_password(self) -> bytes | None:
        path = self.entry.pkcs12_password_file
        if path is None:
            return None
        try:
            password = path.read_bytes().strip()
        except OSError as exc:
            raise AgentError(
                f"{self.where}: PKCS#12 password file {path} cannot be read ({exc.strerror})"
            ) from exc
        if not password:
            raise AgentError(f"{self.where}: PKCS#12 password file {path} is empty")
        return password


def jittered(start: datetime, end: datetime, seed: str) -> datetime:
    """A fixed point inside [start, end] for this certificate: hosts spread out, and a
    restart does not move it."""
    if end <= start:
        return start
    fraction = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2**64
    return start + (end - start) * fraction


def run_command(command: tuple[str, ...], timeout: float, where: str) -> None:
    log.info("%s: running %s", where, " ".join(command))
    try:
        done = subprocess.run(  # noqa: S603 - the administrator's own command, no shell
            command, capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentError(f"{where}: reload command {command[0]} failed: {exc}") from exc
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-300:]
        raise AgentError(
            f"{where}: reload command {' '.join(command)} exited {done.returncode}: {tail}"
        )


def verify_served(entry: Entry, serial: str, where: str) -> None:
    """Connect with TLS and compare the served certificate's serial, a few times (a
    reload takes a moment to reach every worker)."""
    check = entry.check
    assert check is not None
    served = ""
    for attempt in range(check.attempts):
        served = served_serial(
            check.host, check.port, check.server_name or entry.names[0], check.timeout
        )
        if served == serial:
            log.info("%s: %s:%s serves serial %s", entry.name, check.host, check.port, serial)
            return
        time.sleep(min(0.2 * 2**attempt, 5))
    raise AgentError(
        f"{where}: {check.host}:{check.port} serves serial {served or 'nothing'}, not {serial}"
    )


def served_serial(host: str, port: int, server_name: str, timeout: float) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we compare the serial, not the trust path
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return ""
    return crypto.serial_hex(x509.load_der_x509_certificate(der)) if der else ""
