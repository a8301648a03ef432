"""Several qcluster processes on PostgreSQL and Redis over the same due certificates:
every certificate renewed once and every alert sent once, even when a worker is killed
with SIGKILL in the middle of a renewal batch.

Runs in the PostgreSQL pass (scripts/test.sh starts Redis too). Each test gets its own
throwaway database and its own django-q2 cluster name (so its own Redis queue).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = str(Path(__file__).with_name("scenario.py"))
PG = os.environ.get("CERTPORTAL_TEST_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("CERTPORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEADLINE = 150

pytestmark = pytest.mark.postgres


@pytest.fixture
def environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("multi-process tests run in the PostgreSQL pass of scripts/test.sh")
    import redis

    client = redis.Redis.from_url(REDIS)
    client.ping()  # the PostgreSQL pass has Redis (scripts/services.sh): fail loudly if not
    name = f"certportal_alerts_w_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{name}",
        "REDIS_URL": REDIS,
        "CERTPORTAL_Q_NAME": name,
        "CERTPORTAL_Q_WORKERS": "2",
        "CERTPORTAL_DATA_DIR": str(tmp_path),
        "CERTPORTAL_KEK": settings.CERTPORTAL_KEK,
        "CERTPORTAL_SECRET_KEY": settings.SECRET_KEY,
        "CERTPORTAL_OUTBOX_SWEEP_GRACE_SECONDS": "2",
        "CERTPORTAL_ALERT_SEND_LEASE_SECONDS": "5",
        "CERTPORTAL_RENEWAL_BATCH": "5",
        "CERTPORTAL_LOG_LEVEL": "WARNING",
        "CERTPORTAL_OUTBOUND_ALLOW_PRIVATE": "true",  # the alert receiver is on loopback
        "PYTHONPATH": str(ROOT),
    }
    try:
        yield env
    finally:
        for key in client.scan_iter(f"django_q:{name}:*"):
            client.delete(key)
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scenario(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, SCENARIO, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def clusters(
    environment: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start qcluster processes, each in its own process group; all stopped at the end.
    Their output goes to tmp_path/qcluster-N.log (shown when a test fails)."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"qcluster-{len(started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            env={**environment, "CERTPORTAL_LOG_LEVEL": "INFO"},
            cwd=ROOT,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_done(env: dict[str, str], receiver: Any, held: int, alerts: int) -> dict:
    """Poll the database (kicking the sweeps as the schedules would) until every renewal
    and alert is through, or fail after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    last_kick = 0.0
    while time.monotonic() < deadline:
        state = scenario(env, "status")
        sent = state["deliveries"].get("sent", 0)
        if (
            state["held_active"] == 0
            and state["outbox_pending"] == 0
            and sent == alerts
            and len(receiver.requests) >= alerts
        ):
            time.sleep(1)  # anything duplicated late would arrive now
            return scenario(env, "status")
        if time.monotonic() - last_kick > 5:
            scenario(env, "kick")
            last_kick = time.monotonic()
        time.sleep(1)
    pytest.fail(f"not done after {DEADLINE}s: {scenario(env, 'status')}")


def assert_exactly_once(state: dict, receiver: Any, held: int, csr: int) -> None:
    assert state["superseded"] == held
    assert state["renewals"] == held
    assert state["renewal_requests"] == held
    assert state["max_successors"] == 1
    assert state["failed_renewals"] == 0
    assert state["deliveries_by_event"] == {"renewed": held, "expiring": csr}
    received = Counter(r.headers["X-Certportal-Delivery"] for r in receiver.requests)
    assert set(received) == set(state["delivery_ids"])
    assert max(received.values()) == 1, "an alert reached the receiver twice"
    assert all(r.signature_ok_with(SECRET) for r in receiver.requests)


SECRET = "workers-test-webhook-secret-0123"


def test_two_clusters_renew_and_alert_each_certificate_exactly_once(
    environment, clusters, http_receiver
):
    held, csr = 40, 15
    scenario(environment, "setup", str(held), str(csr), http_receiver.url + "/hook")
    clusters(), clusters()
    scenario(environment, "kick")
    scenario(environment, "kick")  # both "hosts" run their schedules
    state = wait_until_done(environment, http_receiver, held, held + csr)
    assert_exactly_once(state, http_receiver, held, csr)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    environment, clusters, http_receiver, tmp_path
):
    held, csr = 120, 10
    scenario(environment, "setup", str(held), str(csr), http_receiver.url + "/hook")
    first = clusters()
    deadline, last_kick = time.monotonic() + 90, 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - last_kick > 10:
            scenario(environment, "kick")
            last_kick = time.monotonic()
        if scenario(environment, "status")["superseded"] > 0:
            break
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = scenario(environment, "status")
    log = (tmp_path / "qcluster-0.log").read_text(errors="replace")[-3000:]
    assert 0 < at_kill["superseded"] < held, f"the kill should land mid-sweep; cluster: {log}"
    clusters()
    state = wait_until_done(environment, http_receiver, held, held + csr)
    assert_exactly_once(state, http_receiver, held, csr)
