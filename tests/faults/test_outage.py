"""Stopping the database, then Redis, under load: every answer is an acknowledgement
(201/202) or a 503 with Retry-After, never a 500; issuance resumes by itself once each
comes back, without restarting the portal; every acknowledged certificate exists.

The portal (gunicorn, the project's gunicorn.conf.py) runs against a PostgreSQL server
and a Redis server of the test's own, on free ports: the shared ones on 5432 and 6379 are
never touched. The schema comes from the suite's own migrated test database (pg_dump),
which is faster than migrating again. PostgreSQL is stopped with ``-m immediate``: a crash,
recovered from the WAL on restart.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
HELPER = str(Path(__file__).with_name("outage_helper.py"))
PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
RESUME_WITHIN = 10.0  # seconds after the service is back

pytestmark = pytest.mark.postgres


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivatePostgres:
    """initdb into a temporary directory, pg_ctl start/stop on a free port. initdb refuses
    to run as root, so as root the server runs as the postgres user."""

    def __init__(self) -> None:
        self.bin = Path(PG_BINS[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="certportal-outage-pg-"))
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust")
        self.run("initdb", "--version")

    def run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        # fsync off: the test crashes the server, not the machine; what a commit wrote is
        # in the kernel's page cache and survives. synchronous_commit stays on, so a
        # commit is acknowledged only once its WAL is written.
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "server.log")
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"), "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def servers(db: Any) -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """A private PostgreSQL holding a copy of the suite's migrated test database, and a
    private Redis."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the outage test runs in the PostgreSQL pass (its schema comes from it)")
    if not PG_BINS or not shutil.which("redis-server"):
        pytest.skip("PostgreSQL server binaries or redis-server missing: run scripts/setup.sh")
    pg, cache = PrivatePostgres(), PrivateRedis()
    try:
        pg.start()
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE certportal")
        suite = connection.settings_dict  # the suite's test database
        source = f"postgres://{suite['USER']}@{suite['HOST']}:{suite['PORT']}/{suite['NAME']}"
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", source],
            check=True,
            capture_output=True,
            timeout=60,
            env={**os.environ, "PGPASSWORD": suite.get("PASSWORD") or ""},
        )
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", pg.url("certportal")],
            input=dump.stdout,
            check=True,
            capture_output=True,
            timeout=60,
        )
        cache.start()
        yield pg, cache
    finally:
        cache.stop()
        pg.remove()


@pytest.fixture
def portal(
    servers: tuple[PrivatePostgres, PrivateRedis], tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """gunicorn serving the portal on the private servers; yields its URL and set-up data."""
    pg, cache = servers
    env = {
        **os.environ,
        "DATABASE_URL": pg.url("certportal"),
        "REDIS_URL": cache.url,
        "CERTPORTAL_Q_NAME": f"outage-{secrets.token_hex(4)}",
        "CERTPORTAL_DATA_DIR": str(tmp_path),
        "CERTPORTAL_KEK": settings.CERTPORTAL_KEK,
        "CERTPORTAL_SECRET_KEY": settings.SECRET_KEY,
        "CERTPORTAL_API_RATE": "100000/min",
        "CERTPORTAL_CONNECT_TIMEOUT": "2",
        "CERTPORTAL_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, HELPER], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    setup = json.loads(done.stdout.strip().splitlines()[-1])
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "certportal.wsgi", "-c", "gunicorn.conf.py"],
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass  # not listening yet, or the first request loads the application
            time.sleep(0.2)
        else:
            pytest.fail((tmp_path / "gunicorn.log").read_text()[-3000:])
        yield url, setup
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
        log.close()


@dataclass
class Answer:
    at: float
    status: int  # 0: no HTTP answer at all
    certificate: str | None
    retry_after: str | None


class Load:
    """Threads issuing certificates through the API until stopped."""

    def __init__(self, url: str, setup: dict[str, str], csrs: list[str]) -> None:
        self.endpoint = f"{url}/api/v1/applications/{setup['app']}/certificates/"
        self.headers = {"Authorization": f"Bearer {setup['token']}"}
        self.csrs = csrs
        self.profile = setup["profile"]
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(len(csrs))]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(30)

    def run(self, index: int) -> None:
        session = requests.Session()
        body = {"profile": self.profile, "csr": self.csrs[index]}
        while not self.done.is_set():
            try:
                response = session.post(self.endpoint, json=body, headers=self.headers, timeout=20)
            except requests.RequestException:
                self.record(Answer(time.monotonic(), 0, None, None))
                time.sleep(0.1)
                continue
            certificate = response.json().get("id") if response.status_code == 201 else None
            self.record(
                Answer(
                    time.monotonic(),
                    response.status_code,
                    certificate,
                    response.headers.get("Retry-After"),
                )
            )
            if response.status_code == 503:
                time.sleep(0.1)

    def record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def count(self, test: Callable[[Answer], bool]) -> int:
        with self.lock:
            return sum(1 for a in self.answers if test(a))

    def wait(self, test: Callable[[Answer], bool], seconds: float, what: str) -> float:
        """Wait until an answer passes the test; returns when that answer came."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                found = [a.at for a in self.answers if test(a)]
            if found:
                return min(found)
            time.sleep(0.05)
        pytest.fail(f"no {what} within {seconds}s: {self.summary()}")

    def summary(self) -> dict[int, int]:
        with self.lock:
            statuses = [a.status for a in self.answers]
        return {s: statuses.count(s) for s in sorted(set(statuses))}


def outage(
    load: Load, url: str, service: str, stop: Callable[[], None], start: Callable[[], None]
) -> float:
    """Stop a service under load, see 503s, start it again: how long issuance took to
    resume after it was back."""
    stopped = time.monotonic()
    stop()
    load.wait(lambda a: a.at > stopped and a.status == 503, 10, "503 while it was down")
    health = requests.get(url + "/healthz", timeout=10)
    assert health.status_code == 503 and health.json()["service"] == service
    time.sleep(1)  # a few more requests meet the outage
    restarted = time.monotonic()
    start()
    back = time.monotonic()
    resumed = load.wait(lambda a: a.at > back and a.status == 201, RESUME_WITHIN, "201 after")
    return resumed - restarted


def test_stopping_the_database_and_redis_under_load_loses_nothing_acknowledged(
    portal: tuple[str, dict[str, str]],
    servers: tuple[PrivatePostgres, PrivateRedis],
    make_csr: Callable[..., bytes],
    tmp_path: Path,
) -> None:
    url, setup = portal
    pg, cache = servers
    csrs = [make_csr(f"w{i}.example.test", [f"w{i}.example.test"]).decode() for i in range(6)]
    with Load(url, setup, csrs) as load:
        load.wait(lambda a: a.status == 201, 20, "201 before the outage")
        time.sleep(0.5)  # requests in flight when the database goes
        database_resumed = outage(load, url, "database", lambda: pg.stop("immediate"), pg.start)
        redis_resumed = outage(load, url, "redis", cache.stop, cache.start)

    statuses = load.summary()
    assert set(statuses) <= {201, 202, 503}, statuses  # no 500, no dropped connection
    assert all(a.retry_after and int(a.retry_after) > 0 for a in load.answers if a.status == 503)
    assert database_resumed < RESUME_WITHIN and redis_resumed < RESUME_WITHIN

    acknowledged = [a.certificate for a in load.answers if a.status == 201]
    with psycopg.connect(pg.url("certportal")) as conn:
        found = conn.execute(
            "SELECT count(*) FROM issuance_certificate WHERE id = ANY(%s::uuid[])",
            [acknowledged],
        ).fetchone()
    assert found is not None and found[0] == len(acknowledged) > 0

    log = (tmp_path / "gunicorn.log").read_text(errors="replace")
    assert "database unavailable (" in log and "redis unavailable (" in log
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
