"""What the machine gives, so that benchmark figures from different machines compare.

Throughput here is bound by three things the code does not control: how fast the
interpreter runs plain Python, how fast the crypto library signs, and what a round trip
to a local server costs (two context switches; on a virtual machine far more than on
bare metal). The same commit measured 2.5 times slower on one 2-core machine than on
another; ``describe()`` is printed beside the issuance and API benchmarks' figures so
a reader can tell a code change from a machine change.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass


def _best(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def python_loop_ms() -> float:
    """One million iterations of a loop with a dict write and an attribute read."""

    class Box:
        value = 1

    box, table = Box(), {}

    def loop() -> None:
        for i in range(1_000_000):
            table[i & 1023] = box.value + i

    return _best(loop) * 1000


def p256_sign_us() -> float:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    algorithm = ec.ECDSA(hashes.SHA256())
    return _best(lambda: [key.sign(b"calibration", algorithm) for _ in range(500)]) / 500 * 1e6


def postgres_round_trip_us(dsn: str) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return _best(lambda: [conn.execute("SELECT 1") for _ in range(500)]) / 500 * 1e6


def redis_round_trip_us(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return _best(lambda: [client.get("calibration") for _ in range(500)]) / 500 * 1e6
    finally:
        client.close()


def describe() -> str:
    """One line: cores, Python loop, P-256 signature, and round trips (best of 5) to the
    PostgreSQL database and Redis the benchmark uses (DATABASE_URL, REDIS_URL)."""
    postgres_dsn, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    parts = [
        f"{os.cpu_count()} cpus",
        f"Python 1M-loop {python_loop_ms():.0f} ms",
        f"P-256 sign {p256_sign_us():.0f} us",
    ]
    if postgres_dsn:
        parts.append(f"PostgreSQL round trip {postgres_round_trip_us(postgres_dsn):.0f} us")
    if redis_url:
        parts.append(f"Redis round trip {redis_round_trip_us(redis_url):.0f} us")
    return "machine: " + "; ".join(parts)


def cpu_ticks() -> tuple[int, int]:
    """(stolen, all) CPU ticks of the machine so far: on a virtual machine, the time its
    virtual CPUs wanted to run but the host ran something else (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    return fields[7], sum(fields[:8])


def stolen(before: tuple[int, int], after: tuple[int, int]) -> str:
    """The share of CPU time the host took between two cpu_ticks() readings."""
    total = after[1] - before[1]
    return f"{(after[0] - before[0]) / total:.0%}" if total else "0%"


@dataclass(frozen=True)
class Processes:
    """A snapshot of every process's parent, command name and CPU seconds (Linux /proc)."""

    parent: dict[int, int]
    command: dict[int, str]
    cpu: dict[int, float]

    @classmethod
    def now(cls) -> Processes:
        parent, command, cpu = {}, {}, {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    head, tail = stat.read().rsplit(")", 1)
            except OSError:
                continue
            pid, fields = int(entry), tail.split()
            parent[pid], command[pid] = int(fields[1]), head.split("(", 1)[1]
            cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
        return cls(parent, command, cpu)

    def tree(self, roots: list[int]) -> float:
        """CPU seconds of these processes and all their descendants."""
        total, todo, seen = 0.0, list(roots), set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += self.cpu.get(pid, 0.0)
            todo.extend(child for child, ppid in self.parent.items() if ppid == pid)
        return total

    def named(self, command: str) -> float:
        """CPU seconds of every process whose command name starts with this."""
        return sum(cpu for pid, cpu in self.cpu.items() if self.command[pid].startswith(command))


if __name__ == "__main__":
    from _django import PG

    os.environ.setdefault("DATABASE_URL", f"{PG}/postgres")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
    print(describe())
