"""SCEP throughput, certportal against micromdm's scepserver, with the same client loop.

Usage: .venv/bin/python benchmarks/bench_scep.py [CERTS] [CONCURRENCY]  (default 60, 4)
BENCH_ONLY=certportal or BENCH_ONLY=scepserver runs one side only. BENCH_ROUNDS
(default 3) repeats the pair, alternating which server runs first, and reports the
median ratio.

The loop: per certificate one run of micromdm's ``scepclient`` (Debian package ``scep``)
in a fresh directory, so a new 2048-bit key, GetCACert, GetCACaps and a PKCSReq with the
static challenge. certportal: gunicorn with the project's gunicorn.conf.py (gthread;
GUNICORN_WORKERS=3, GUNICORN_THREADS=2 unless set) on a throwaway PostgreSQL database,
the demo's mtls-client SCEP enrollment (EC CA, RSA-2048 RA, so the client is given the
RA's fingerprint); scepserver: ``scepserver ca -init -keySize 2048`` (an RSA-2048 CA, as
large as the portal's RA key), ``-challenge SECRET -allowrenew 0``. Besides the rates it
reports the server's CPU seconds per certificate (all its processes; PostgreSQL not
included), a steadier figure than the rates on a shared machine.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _machine import Processes

ROOT = Path(__file__).resolve().parent.parent
N = int(sys.argv[1]) if len(sys.argv) > 1 else 60
CONCURRENCY = int(sys.argv[2]) if len(sys.argv) > 2 else 4
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PORTAL = os.environ.get("BENCH_PORTAL", "127.0.0.1:18510")
SCEPSERVER_PORT = os.environ.get("BENCH_SCEPSERVER_PORT", "18511")
SECRET = "bench-static-challenge-0123456789"


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _enroll(url: str, challenge: str, extra: list[str], work: Path, index: int) -> None:
    folder = work / str(index)
    folder.mkdir()
    args = [
        "scepclient",
        "-server-url", url,
        "-private-key", str(folder / "key.pem"),
        "-certificate", str(folder / "cert.pem"),
        "-cn", f"bench-{index}",
        "-challenge", challenge,
        *extra,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not (folder / "cert.pem").exists():
        raise RuntimeError(f"scepclient failed: {done.stdout}{done.stderr}")


def run_loop(name: str, url: str, challenge: str, extra: list[str], pids: list[int]) -> float:
    """N enrollments, CONCURRENCY at a time; prints and returns certificates per second."""
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up, not timed: enough enrollments at once that every server process has
        # served one (the portal's first check of the static challenge in a process pays
        # the slow password hash once).
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda i: _enroll(url, challenge, extra, Path(tmp), i), range(-8, 0)))
        server_cpu = Processes.now().tree(pids)
        start = time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda i: _enroll(url, challenge, extra, Path(tmp), i), range(N)))
        elapsed = time.monotonic() - start
        server_cpu = Processes.now().tree(pids) - server_cpu
    rate = N / elapsed
    print(
        f"  {name:<11} {N} certificates in {elapsed:.1f} s = {rate:.1f}/s; "
        f"server CPU {server_cpu / N * 1000:.0f} ms per certificate"
    )
    return rate


def start_portal(env: dict[str, str]) -> tuple[list[subprocess.Popen[bytes]], dict[str, str]]:
    db = "certportal_scep_bench"
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", db], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db], check=True)
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}",
        CERTPORTAL_BASE_URL=f"http://{PORTAL}",
        CERTPORTAL_LOG_LEVEL="WARNING",
    )
    python, manage = sys.executable, str(ROOT / "manage.py")
    subprocess.run([python, manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    demo = json.loads(
        subprocess.run(
            [python, manage, "bootstrap_demo", "--json"],
            env=env, check=True, cwd=ROOT, capture_output=True, text=True,
        ).stdout
    )["scep"]  # fmt: skip
    gunicorn = str(Path(python).with_name("gunicorn"))
    command = [
        gunicorn, "certportal.wsgi", "-b", PORTAL, "-c", str(ROOT / "gunicorn.conf.py"),
        "-w", os.environ.get("GUNICORN_WORKERS", "3"),
        "--threads", os.environ.get("GUNICORN_THREADS", "2"),
        "--log-level", "warning",
    ]  # fmt: skip
    procs = [subprocess.Popen(command, env=env, cwd=ROOT)]
    _wait_http(demo["url"] + "?operation=GetCACaps")
    return procs, demo


def start_scepserver(tmp: Path) -> subprocess.Popen[bytes]:
    depot = str(tmp / "depot")
    subprocess.run(
        ["scepserver", "ca", "-init", "-keySize", "2048", "-depot", depot],
        check=True, capture_output=True,
    )  # fmt: skip
    proc = subprocess.Popen(
        ["scepserver", "-depot", depot, "-port", SCEPSERVER_PORT,
         "-challenge", SECRET, "-allowrenew", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_http(f"http://127.0.0.1:{SCEPSERVER_PORT}/scep?operation=GetCACaps")
    return proc


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run(name: str, env: dict[str, str]) -> float:
    if name == "scepserver":
        with tempfile.TemporaryDirectory() as tmp:
            server = start_scepserver(Path(tmp))
            try:
                url = f"http://127.0.0.1:{SCEPSERVER_PORT}/scep"
                return run_loop(name, url, SECRET, [], [server.pid])
            finally:
                stop([server])
    procs, demo = start_portal(env)
    try:
        extra = ["-ca-fingerprint", demo["ra_fingerprint"]]
        return run_loop(name, demo["url"], demo["challenge"], extra, [p.pid for p in procs])
    finally:
        stop(procs)


def main() -> None:
    env = {
        **os.environ,
        "CERTPORTAL_KEK": base64.b64encode(os.urandom(32)).decode(),
        "CERTPORTAL_SECRET_KEY": "bench-" + base64.b64encode(os.urandom(24)).decode(),
        "DJANGO_SETTINGS_MODULE": "certportal.settings",
    }
    print(f"{N} scepclient enrollments per server, {CONCURRENCY} at a time")
    only = os.environ.get("BENCH_ONLY", "")
    ratios = []
    for round_ in range(ROUNDS):
        if ROUNDS > 1:
            print(f"round {round_ + 1} of {ROUNDS}")
        order = ["scepserver", "certportal"] if round_ % 2 == 0 else ["certportal", "scepserver"]
        rates = {name: _run(name, env) for name in order if only in ("", name)}
        if len(rates) == 2:
            ratios.append(rates["certportal"] / rates["scepserver"])
            print(f"certportal / scepserver = {ratios[-1]:.2f}")
    if len(ratios) > 1:
        print(
            f"median certportal / scepserver over {len(ratios)} rounds = "
            f"{statistics.median(ratios):.2f} (each: {', '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
