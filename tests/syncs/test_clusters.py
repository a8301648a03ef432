"""Two qcluster processes on PostgreSQL and Redis push 200 certificates to two syncs
(Key Vault and Cloudflare fakes, which count every write): each item reaches its
destination exactly once per change (issue, then revocation).

Runs in the PostgreSQL pass (scripts/test.sh starts Redis too).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = str(Path(__file__).with_name("cluster_scenario.py"))
PG = os.environ.get("CERTPORTAL_TEST_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("CERTPORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEADLINE = 240
N = 200
REVOKED = 20

pytestmark = pytest.mark.postgres


@pytest.fixture
def environment(tmp_path: Path, test_ca: tuple[Any, str]) -> Iterator[dict[str, str]]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("multi-process tests run in the PostgreSQL pass of scripts/test.sh")
    import redis

    client = redis.Redis.from_url(REDIS)
    client.ping()
    name = f"certportal_syncs_w_{secrets.token_hex(4)}"
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
        "CERTPORTAL_SYNC_LEASE_SECONDS": "60",
        "CERTPORTAL_SYNC_CA_BUNDLE": test_ca[1],
        "CERTPORTAL_LOG_LEVEL": "WARNING",
        "CERTPORTAL_OUTBOUND_ALLOW_PRIVATE": "true",  # the fakes are on loopback
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
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"qcluster-{len(started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            env=environment,
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


def wait_for(env: dict[str, str], done: Callable[[dict], bool]) -> dict:
    deadline = time.monotonic() + DEADLINE
    last_kick = 0.0
    while time.monotonic() < deadline:
        state = scenario(env, "status")
        if state["outbox_pending"] == 0 and done(state):
            time.sleep(2)  # anything pushed twice would arrive now
            return scenario(env, "status")
        if time.monotonic() - last_kick > 5:
            scenario(env, "kick")
            last_kick = time.monotonic()
        time.sleep(1)
    pytest.fail(f"not done after {DEADLINE}s: {scenario(env, 'status')}")


def test_two_clusters_push_each_item_exactly_once_per_change(
    environment, clusters, key_vault, cloudflare_api
):
    scenario(environment, "setup", key_vault.base, cloudflare_api.api)
    clusters(), clusters()
    scenario(environment, "issue", str(N))
    state = wait_for(
        environment,
        lambda s: all(s["items"].get(n, {}).get("synced") == N for n in ("kv", "cf")),
    )
    assert state["items"] == {"kv": {"synced": N}, "cf": {"synced": N}}
    assert len(key_vault.certificates) == N and set(key_vault.writes.values()) == {1}
    assert len(cloudflare_api.certificates) == N and set(cloudflare_api.writes.values()) == {1}
    assert sum(key_vault.writes.values()) == N and sum(cloudflare_api.writes.values()) == N

    scenario(environment, "revoke", str(REVOKED))
    state = wait_for(
        environment,
        lambda s: all(s["items"].get(n, {}).get("removed") == REVOKED for n in ("kv", "cf")),
    )
    expected = {"synced": N - REVOKED, "removed": REVOKED}
    assert state["items"] == {"kv": expected, "cf": expected}
    assert len(key_vault.certificates) == N - REVOKED
    assert len(cloudflare_api.certificates) == N - REVOKED
    deletes = [k for k in key_vault.writes if k.startswith("delete:")]
    assert len(deletes) == REVOKED and all(key_vault.writes[k] == 1 for k in deletes)
    cf_deletes = [k for k in cloudflare_api.writes if k.startswith("delete:")]
    assert len(cf_deletes) == REVOKED and all(cloudflare_api.writes[k] == 1 for k in cf_deletes)


def test_a_worker_killed_mid_push_leaves_nothing_half_recorded(
    environment, clusters, key_vault, cloudflare_api
):
    """SIGKILL one cluster while it pushes; the survivor takes its claims over once their
    lease runs out, looks up what the dead worker created, and every item ends synced with
    one object per certificate at each destination (no duplicate upload)."""
    environment["CERTPORTAL_SYNC_LEASE_SECONDS"] = "10"
    scenario(environment, "setup", key_vault.base, cloudflare_api.api)
    first = clusters()
    scenario(environment, "issue", str(N))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sum(cloudflare_api.writes.values()) + sum(key_vault.writes.values()) >= N // 2:
            break
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = scenario(environment, "status")
    assert any(s.get("synced", 0) < N for s in at_kill["items"].values()), at_kill
    clusters()
    state = wait_for(
        environment,
        lambda s: all(s["items"].get(n, {}).get("synced") == N for n in ("kv", "cf")),
    )
    assert state["items"] == {"kv": {"synced": N}, "cf": {"synced": N}}
    assert len(key_vault.certificates) == N
    assert len(cloudflare_api.certificates) == N  # looked up, never uploaded twice
