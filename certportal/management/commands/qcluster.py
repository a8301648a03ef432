"""``manage.py qcluster``: django-q2's command with a stop bounded in time (certportal.cluster).

It takes precedence over django-q2's own because certportal comes first in INSTALLED_APPS.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.conf import settings
from django_q.cluster import Cluster as QCluster
from django_q.management.commands.qcluster import Command as QClusterCommand

from certportal import cluster

logger = logging.getLogger("certportal.cluster")


class Cluster(QCluster):
    """django-q2's cluster; its stop tells the workers first and waits a bounded time."""

    signalled = False

    def start(self) -> int:
        cluster.install()
        return int(super().start())

    def sig_handler(self, signum: int, frame: Any) -> None:
        self.signalled = True
        super().sig_handler(signum, frame)

    def stop(self) -> bool:
        if self.sentinel is None or not self.sentinel.is_alive():
            return False
        logger.info("stopping: tasks not done in %s s go back to the broker", cluster.grace())
        cluster.request_stop()
        self.stop_event.set()  # type: ignore[has-type]
        self.sentinel.join(cluster.grace() + 1.5)
        if self.sentinel.is_alive():
            logger.warning("the cluster did not stop in time; ending it")
            self.sentinel.terminate()
            self.sentinel.join(1)
        self.start_event = None
        self.stop_event = None
        return True


class Command(QClusterCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        settings.SECRET_KEY  # noqa: B018 - signing needs it: fail before forking
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        q = Cluster()
        q.start()
        if options.get("run_once", False):
            q.stop()
        while q.sentinel.is_alive():  # SIGTERM's handler (q.stop) runs in here
            q.sentinel.join(1)
        asked = q.signalled or q.stop_event is None  # a stop asked for, not a crash
        code = 0 if asked else (q.sentinel.exitcode or 1)
        # Every process of the cluster has ended: skip the interpreter's teardown, which
        # took seconds of a stop's budget on a busy host.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
