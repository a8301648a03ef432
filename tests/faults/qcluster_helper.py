"""The qcluster stop test's other side, run as a subprocess (and its task, run by workers).

    python tests/faults/qcluster_helper.py enqueue MARKERS NAME:SECONDS...
    python tests/faults/qcluster_helper.py queued

Prints one JSON object. The environment names the database, Redis and the cluster.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def sleeper(name: str, seconds: float, markers: str) -> str:
    """The task: note its start, sleep, note its end."""
    with open(markers, "a") as out:
        out.write(f"start {name}\n")
    time.sleep(seconds)
    with open(markers, "a") as out:
        out.write(f"done {name}\n")
    return name


def enqueue(markers: str, *tasks: str) -> dict[str, list[str]]:
    """Queue one sleeper per NAME:SECONDS, in that order."""
    from django_q.tasks import async_task

    ids = []
    for task in tasks:
        name, seconds = task.split(":")
        func = "tests.faults.qcluster_helper.sleeper"
        ids.append(str(async_task(func, name, float(seconds), markers, task_name=name)))
    return {"ids": ids}


def queued() -> dict[str, list[str]]:
    """The names of the tasks the broker holds (ready or not)."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    if Conf.ORM:
        payloads = list(OrmQ.objects.values_list("payload", flat=True))
    else:
        broker = get_broker()
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    return {"names": sorted(SignedPackage.loads(p)["name"] for p in payloads)}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certportal.settings")
    import django

    django.setup()
    command, *args = sys.argv[1:]
    out: object = enqueue(*args) if command == "enqueue" else queued()
    sys.stdout.write(json.dumps(out) + "\n")
