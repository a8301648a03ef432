"""Tasks that loop stop between batches when their cluster is stopping (certportal.cluster)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from issuance import renewal
from issuance.services import KeySpec, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def due(application: Any, tls_profile: Any, actor: Any) -> list[Any]:
    """Three certificates with held keys, all due for renewal at the returned time."""
    return [
        submit(
            application=application,
            profile=tls_profile,
            method="ui",
            actor=actor,
            key_spec=KeySpec(algorithm="EC_P256", common_name=cn, sans=[cn]),
        ).certificate
        for cn in ("a.example.test", "b.example.test", "c.example.test")
    ]


def test_the_renewal_sweep_returns_after_the_batch_in_hand_when_asked_to_stop(due: Any) -> None:
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1  # the stop comes while the first batch runs

    with time_machine.travel(due[0].not_after - timedelta(days=10), tick=False):
        renewal.plan()
        result = renewal.renew_due(batch=1, stop=stop)
        assert result.renewed == 1
        assert renewal.renew_due(batch=1).renewed == 2  # the rest is left for the next run


def test_the_renewal_task_queues_itself_again_when_the_cluster_stops(
    due: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from certportal import cluster, queue
    from issuance.renewal import tasks

    queued: list[str] = []
    monkeypatch.setattr(cluster, "stop_requested", lambda: True)
    monkeypatch.setattr(queue, "enqueue", lambda func, *a, task_name: queued.append(func))
    with time_machine.travel(due[0].not_after - timedelta(days=10), tick=False):
        renewal.plan()
        assert tasks.renew_certificates() == 0
    assert queued == ["issuance.renewal.tasks.renew_certificates"]
