"""Declared schedules install idempotently and each points at a real callable."""

from __future__ import annotations

import pytest
from django.utils.module_loading import import_string
from django_q.models import Schedule

from certportal import schedules


def test_every_declared_schedule_points_at_a_callable():
    for item in schedules.SCHEDULES:
        assert callable(import_string(item.func)), item.func


def test_the_lifecycle_sweeps_are_all_scheduled():
    funcs = {item.func for item in schedules.SCHEDULES}
    assert {
        "issuance.tasks.refresh_due_crls",
        "issuance.tasks.mark_expired",
        "issuance.tasks.renew_due_certificates",
        "certportal.outbox.sweep",
        "alerts.tasks.scan_expiring_certificates",
        "issuance.services.expire_pending_requests",
    } <= funcs


@pytest.mark.django_db
def test_install_is_idempotent():
    schedules.install()
    first = Schedule.objects.count()
    schedules.install()
    assert Schedule.objects.count() == first == len(schedules.SCHEDULES)
