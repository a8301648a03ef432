"""certportal-agent against a live portal, as a host runs it: a separate process with a
service account's token file, real files, openssl and nginx."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from applications.choices import Role
from approvals import services as approvals
from approvals.choices import Trigger
from issuance.models import Certificate
from tests.agent.conftest import ACTOR, AGENT_DIR, Host

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.interop]

NGINX_PORT = 18901
DEAD_PORT = 18949


def pair(directory: Path) -> tuple[Any, x509.Certificate]:
    real = (directory / "current").resolve()
    key = serialization.load_pem_private_key((real / "privkey.pem").read_bytes(), None)
    return key, x509.load_pem_x509_certificate((real / "cert.pem").read_bytes())


def spki(obj: Any) -> bytes:
    return obj.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def serial(directory: Path) -> str:
    return format(pair(directory)[1].serial_number, "x")


def portal_certificate(directory: Path) -> Certificate:
    """The portal's row for the installed certificate (serials compared as numbers)."""
    number = pair(directory)[1].serial_number
    found = [c for c in Certificate.objects.all() if int(c.serial_number, 16) == number]
    assert len(found) == 1
    return found[0]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() if p.is_file() else os.readlink(p).encode()
        for p in sorted(directory.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_once_writes_files_with_modes_a_matching_key_and_a_verifiable_chain(
    host: Host, root_ca: Any, service_token: str
) -> None:
    password_file = host.root / "p12-password"
    password_file.write_text("p12-secret-pw\n")
    host.entry(key_mode="0640", cert_mode="0644", pkcs12_password_file=str(password_file))
    done = host.run("once")
    assert done.returncode == 0, done.stderr
    assert service_token not in done.stderr + done.stdout
    current = host.directory() / "current"
    assert mode(current / "privkey.pem") == 0o640
    assert mode(current / "bundle.pem") == 0o640
    assert mode(current / "cert.p12") == 0o640
    assert mode(current / "cert.pem") == 0o644
    assert mode(current / "fullchain.pem") == 0o644
    key, leaf = pair(host.directory())
    assert spki(key) == spki(leaf)
    root = host.root / "root.pem"
    root.write_text(root_ca.certificate_pem)
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            root,
            "-untrusted",
            current / "fullchain.pem",
            current / "cert.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0 and ": OK" in verify.stdout, verify.stdout + verify.stderr
    p12 = subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-in",
            current / "cert.p12",
            "-passin",
            f"file:{password_file}",
            "-nokeys",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p12.returncode == 0 and "BEGIN CERTIFICATE" in p12.stdout, p12.stderr
    assert portal_certificate(host.directory()).method == "api"
    before = snapshot(host.directory())
    again = host.run("once")
    assert again.returncode == 0, again.stderr
    assert snapshot(host.directory()) == before  # not due: nothing rewritten
    shown = host.run("status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "status=ok" in shown.stdout and serial(host.directory()) in shown.stdout


def _start_reader(directory: Path, stop: threading.Event, seen: dict[str, Any]) -> threading.Thread:
    """Reads the pair as a service would, as fast as it can, and notes any mismatch."""

    def read() -> None:
        while not stop.is_set():
            key, leaf = pair(directory)
            bundle = (directory / "current" / "bundle.pem").read_bytes()
            bundle_key = serialization.load_pem_private_key(bundle, None)
            bundle_leaf = x509.load_pem_x509_certificates(bundle)[0]
            seen["reads"] += 1
            seen["serials"].add(leaf.serial_number)
            if spki(key) != spki(leaf) or spki(bundle_key) != spki(bundle_leaf):
                seen["mismatches"] += 1

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _make_due(directory: Path) -> Certificate:
    certificate = portal_certificate(directory)
    Certificate.objects.filter(pk=certificate.pk).update(renew_days_before=1000)
    return certificate


def test_renewal_when_due_reloads_once_and_switches_the_pair_atomically(host: Host) -> None:
    reloads = host.root / "reloads"
    hook = f"sh -c 'echo reloaded >> {reloads}'"
    host.entry(profile="short-lived", reload=[hook])
    assert host.run("once").returncode == 0
    assert reloads.read_text().count("reloaded") == 1
    first = serial(host.directory())
    quiet = host.run("once")
    assert quiet.returncode == 0 and reloads.read_text().count("reloaded") == 1, quiet.stderr

    old = _make_due(host.directory())
    stop = threading.Event()
    seen: dict[str, Any] = {"reads": 0, "mismatches": 0, "serials": set()}
    reader = _start_reader(host.directory(), stop, seen)
    renewed = host.run("once")
    time.sleep(0.2)
    stop.set()
    reader.join(10)
    assert renewed.returncode == 0, renewed.stderr
    assert "renewal due" in renewed.stderr
    assert serial(host.directory()) != first
    assert reloads.read_text().count("reloaded") == 2  # exactly once for the renewal
    assert seen["mismatches"] == 0 and seen["reads"] > 10 and len(seen["serials"]) == 2
    successor = portal_certificate(host.directory())
    assert successor.replaces_id == old.pk
    previous = (host.directory() / "previous").resolve()
    assert (
        format(
            x509.load_pem_x509_certificate((previous / "cert.pem").read_bytes()).serial_number, "x"
        )
        == first
    )
    assert host.run("once").returncode == 0
    assert reloads.read_text().count("reloaded") == 2


NGINX_CONF = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
  uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {live}/fullchain.pem;
    ssl_certificate_key {live}/privkey.pem;
    location / {{ return 200 "ok"; }}
  }}
}}
"""


@pytest.fixture
def nginx(host: Host) -> Any:
    """nginx on loopback serving the agent's current pair, started after the first pass."""
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    root = host.root / "nginx"
    (root / "tmp").mkdir(parents=True)
    conf = root / "nginx.conf"
    live = host.directory() / "current"
    conf.write_text(NGINX_CONF.format(root=root, port=NGINX_PORT, live=live))
    command = [nginx_bin, "-p", str(root), "-c", str(conf)]
    started: list[bool] = []

    def start() -> None:
        subprocess.run(command, check=True, capture_output=True)
        started.append(True)

    yield command, start
    if started:
        subprocess.run([*command, "-s", "quit"], check=False, capture_output=True)


def test_nginx_serves_the_renewed_certificate_after_the_reload_hook(host: Host, nginx: Any) -> None:
    from certportal_agent.engine import served_serial

    command, start = nginx
    reload = " ".join([*command, "-s", "reload"])
    check = {"host": "127.0.0.1", "port": NGINX_PORT, "attempts": 20}
    entry = host.entry(profile="short-lived")
    assert host.run("once").returncode == 0
    start()
    first = serial(host.directory())
    _wait_for(lambda: served_serial("127.0.0.1", NGINX_PORT, "web.example.test", 5) == first)
    entry.update(reload=[reload], check=check)
    _make_due(host.directory())
    renewed = host.run("once")
    assert renewed.returncode == 0, renewed.stderr
    new = serial(host.directory())
    assert new != first
    assert f"serves serial {new}" in renewed.stderr

    # nginx's old worker may take a new connection or two while it shuts down gracefully;
    # then every connection gets the new certificate.
    def only_new() -> bool:
        served = {served_serial("127.0.0.1", NGINX_PORT, "web.example.test", 5) for _ in range(5)}
        return served == {new}

    _wait_for(only_new, 30)


def test_revocation_through_the_portal_makes_the_next_pass_reissue(
    host: Host, live_server: Any, admin_token: str
) -> None:
    host.entry()
    assert host.run("once").returncode == 0
    first = portal_certificate(host.directory())
    revoked = requests.post(
        f"{live_server.url}/api/v1/applications/web-hosts/certificates/{first.pk}/revoke/",
        json={"reason": "keyCompromise"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    assert revoked.status_code == 200, revoked.text
    again = host.run("once")
    assert again.returncode == 0, again.stderr
    assert "OCSP says the certificate is revoked" in again.stderr
    assert portal_certificate(host.directory()).pk != first.pk
    key, leaf = pair(host.directory())
    assert spki(key) == spki(leaf)


def test_portal_stopped_leaves_files_untouched_and_status_reports_it(host: Host) -> None:
    host.entry()
    assert host.run("once").returncode == 0
    before = snapshot(host.directory())
    _make_due(host.directory())
    host.portal_url = f"http://127.0.0.1:{DEAD_PORT}"
    failed = host.run("once")
    assert failed.returncode == 1
    assert "certificate 'web': portal unreachable" in failed.stderr
    assert snapshot(host.directory()) == before
    shown = host.run("status")
    assert shown.returncode == 1
    assert "PROBLEM: failing: certificate 'web': portal unreachable" in shown.stdout


def test_a_held_request_is_picked_up_after_approval_across_restarts(
    host: Host, portal: Any, live_server: Any, admin_token: str
) -> None:
    approvals.save_policy(
        portal,
        approvals.PolicySpec(
            name="held names",
            trigger=Trigger.CONDITIONS,
            on_san_patterns=["held.example.test"],
            steps=[approvals.StepSpec(required=1, role=Role.ADMIN)],
        ),
        actor=ACTOR,
    )
    host.entry("held")
    waiting = host.run("once")
    assert waiting.returncode == 0, waiting.stderr
    assert "held for approval" in waiting.stderr
    assert not (host.directory("held") / "current").exists()
    still = host.run("once")  # a new process: the request id came from the state file
    assert "still pending_approval" in still.stderr
    shown = host.run("status")
    assert shown.returncode == 1 and "pending_request=" in shown.stdout
    request_id = shown.stdout.split("pending_request=")[1].split()[0]
    approved = requests.post(
        f"{live_server.url}/api/v1/applications/web-hosts/requests/{request_id}/approve/",
        json={"comment": "ok"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    assert approved.status_code == 200, approved.text
    picked = host.run("once")
    assert picked.returncode == 0, picked.stderr
    key, leaf = pair(host.directory("held"))
    assert spki(key) == spki(leaf)
    assert str(portal_certificate(host.directory("held")).request_id) == request_id
    assert host.run("status").returncode == 0


@pytest.mark.parametrize(
    ("entry_settings", "expected"),
    [
        ({"profile": "no-such-profile"}, "No such profile"),
        (
            {"sans": ["evil.example.org"], "common_name": "evil.example.org"},
            "not allowed by this profile",
        ),
        ({"directory": "/dev/null/certs"}, "directory /dev/null/certs"),
        ({"portal_token_file": "/nonexistent/token"}, "token file /nonexistent/token"),
    ],
    ids=["unknown-profile", "names-outside-policy", "unwritable-path", "missing-token-file"],
)
def test_bad_config_names_the_entry_and_writes_nothing(
    host: Host, entry_settings: dict[str, Any], expected: str
) -> None:
    host.entry("good")
    host.entry("broken", **entry_settings)
    done = host.run("once")
    assert done.returncode == 1
    assert "certificate 'broken'" in done.stderr and expected in done.stderr, done.stderr
    broken = Path(entry_settings.get("directory", host.directory("broken")))
    assert not (broken / "current").exists()
    assert not broken.exists() or not any((broken / "versions").iterdir())
    assert (host.directory("good") / "current").exists()  # one bad entry does not stop the rest


def test_the_installed_console_script_runs(host: Host) -> None:
    script = Path(sys.executable).parent / "certportal-agent"
    if not script.exists():
        pytest.skip("certportal-agent is not installed in this venv (scripts/setup.sh installs it)")
    host.entry()
    host.write()
    done = subprocess.run(
        [script, "-c", host.config, "once"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (host.directory() / "current" / "fullchain.pem").exists()


def test_status_fails_when_a_certificate_is_within_the_expiry_threshold(host: Host) -> None:
    host.entry(profile="short-lived")
    host.agent["expiry_threshold_days"] = 1
    assert host.run("once").returncode == 0
    fine = host.run("status")
    assert fine.returncode == 0, fine.stdout
    assert "next_renewal=-" not in fine.stdout  # the portal's window, known from the start
    host.agent["expiry_threshold_days"] = 5  # the short-lived profile gives 3 days
    shown = host.run("status", "--json")
    assert shown.returncode == 1
    assert json.loads(shown.stdout)[0]["problem"] == "expires within 5 days"


def test_server_side_key_mode_installs_the_portals_key(host: Host) -> None:
    host.entry(server_key=True, key_type="EC_P384")
    done = host.run("once")
    assert done.returncode == 0, done.stderr
    key, leaf = pair(host.directory())
    assert spki(key) == spki(leaf)
    assert portal_certificate(host.directory()).has_private_key


def test_the_daemon_renews_on_sighup_and_stops_on_sigterm(host: Host) -> None:
    host.entry()
    host.write()
    env = {**os.environ, "PYTHONPATH": str(AGENT_DIR)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "certportal_agent", "-c", str(host.config), "run"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_for(lambda: (host.directory() / "current").exists())
        first = serial(host.directory())
        _make_due(host.directory())
        daemon.send_signal(signal.SIGHUP)
        _wait_for(lambda: serial(host.directory()) != first)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.stderr is not None
    assert "renewal due" in daemon.stderr.read()


def _wait_for(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_held_renewal_keeps_the_current_files_until_approved(
    host: Host, portal: Any, live_server: Any, admin_token: str
) -> None:
    host.entry()
    assert host.run("once").returncode == 0
    approvals.set_renewals_bypass(portal, False, actor=ACTOR)
    approvals.save_policy(
        portal,
        approvals.PolicySpec(
            name="everything", steps=[approvals.StepSpec(required=1, role=Role.ADMIN)]
        ),
        actor=ACTOR,
    )
    old = _make_due(host.directory())
    before = snapshot(host.directory())
    held = host.run("once")
    assert held.returncode == 0, held.stderr
    assert "held for approval" in held.stderr
    assert snapshot(host.directory()) == before
    assert host.run("once").returncode == 0  # polled, still waiting
    assert snapshot(host.directory()) == before
    request_id = json.loads(host.run("status", "--json").stdout)[0]["pending_request"]
    approved = requests.post(
        f"{live_server.url}/api/v1/applications/web-hosts/requests/{request_id}/approve/",
        json={"comment": "ok"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    assert approved.status_code == 200, approved.text
    picked = host.run("once")
    assert picked.returncode == 0, picked.stderr
    successor = portal_certificate(host.directory())
    assert successor.replaces_id == old.pk
    key, leaf = pair(host.directory())
    assert spki(key) == spki(leaf)
    previous = (host.directory() / "previous").resolve().name
    assert before["current"].decode().endswith(previous)
