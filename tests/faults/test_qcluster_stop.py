"""``manage.py qcluster`` stops on SIGTERM within 10 s, exit code 0, and loses no task: a
task that finishes in time completes, the others (running at the deadline, or taken from
the broker but not started) are back in the broker and run on the next start.

Runs a real cluster as a subprocess on a throwaway SQLite database with django-q2's tables:
in the SQLite pass on the ORM broker (the embedded default), in the PostgreSQL pass on
Redis (db 12, a cluster name of its own), as deployments pair them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
HELPER = str(Path(__file__).with_name("qcluster_helper.py"))
REDIS = os.environ.get("CERTPORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
STOP_LIMIT = 10.0


@pytest.fixture(scope="module")
def django_q_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with django-q2's tables only (all the cluster itself needs)."""
    path = tmp_path_factory.mktemp("qcluster") / "template.sqlite3"
    env = {**_base_env(path.parent), "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "django_q", "-v0"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    return path


def _base_env(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CERTPORTAL_DATA_DIR": str(data_dir),
        "CERTPORTAL_KEK": settings.CERTPORTAL_KEK,
        "CERTPORTAL_SECRET_KEY": settings.SECRET_KEY,
        "CERTPORTAL_Q_WORKERS": "2",
        "CERTPORTAL_LOG_LEVEL": "INFO",
        "CERTPORTAL_Q_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    return env


@pytest.fixture
def environment(django_q_schema: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    database = tmp_path / "cluster.sqlite3"
    shutil.copy(django_q_schema, database)
    env = {**_base_env(tmp_path), "DATABASE_URL": f"sqlite:///{database}"}
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        yield env
        return
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS} for the Redis broker case")
    name = f"certportal-stop-{secrets.token_hex(4)}"
    yield {**env, "REDIS_URL": REDIS, "CERTPORTAL_Q_NAME": name}
    for key in client.scan_iter(f"django_q:{name}:*"):
        client.delete(key)


def helper(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, HELPER, *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class Started:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                env=env,
                cwd=ROOT,
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_running(self) -> None:
        wait_for(lambda: "running." in self.log.read_text(errors="replace"), self, 60)

    def stop(self) -> tuple[float, int | None]:
        """SIGTERM to the cluster's main process, as docker stop or systemd (KillMode=mixed)
        send it: how long it took to exit, and its exit code."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        return time.monotonic() - started, code

    def group_gone(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def kill(self) -> None:
        if not self.group_gone():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def wait_for(condition: Callable[[], bool], cluster: Started, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out; cluster log:\n{cluster.log.read_text(errors='replace')[-3000:]}")


def test_sigterm_stops_the_cluster_in_time_and_hands_back_unfinished_tasks(
    environment: dict[str, str], tmp_path: Path
) -> None:
    markers = tmp_path / "markers.txt"
    markers.touch()
    cluster = Started(environment, tmp_path / "qcluster.log")
    try:
        cluster.wait_running()
        tasks = ("slow-1:120", "quick:4", "slow-2:120", "slow-3:120")
        helper(environment, "enqueue", str(markers), *tasks)
        # Both workers busy ("slow-1" and "quick"), the other two taken or waiting.
        wait_for(lambda: markers.read_text().count("start") == 2, cluster, 30)
        elapsed, code = cluster.stop()
        log = cluster.log.read_text(errors="replace")[-3000:]
        assert code == 0, f"exit code {code}; log:\n{log}"
        assert elapsed < STOP_LIMIT, f"took {elapsed:.1f}s; log:\n{log}"
        wait_for(cluster.group_gone, cluster, 3)  # no worker left behind
    finally:
        cluster.kill()

    assert "done quick" in markers.read_text()  # finished in time: completed
    assert helper(environment, "queued")["names"] == ["slow-1", "slow-2", "slow-3"]

    # The next start runs what was handed back, and stops in time again.
    restarted = Started({**environment, "CERTPORTAL_Q_STOP_SECONDS": "2"}, cluster.log)
    try:
        wait_for(lambda: markers.read_text().count("start slow") >= 2, restarted, 30)
        elapsed, code = restarted.stop()
        assert code == 0 and elapsed < STOP_LIMIT
    finally:
        restarted.kill()
    assert helper(environment, "queued")["names"] == ["slow-1", "slow-2", "slow-3"]
