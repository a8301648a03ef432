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
        "issuance.renewal.tasks.renew_due_certificates",
        "certportal.tasks.sweep_outbox",
        "alerts.tasks.scan_expiring_certificates",
        "issuance.tasks.expire_pending_requests",
    } <= funcs


@pytest.mark.django_db
def test_install_is_idempotent():
    schedules.install()
    first = Schedule.objects.count()
    schedules.install()
    assert Schedule.objects.count() == first == len(schedules.SCHEDULES)


def test_schedules_point_at_tasks_modules():
    for item in schedules.SCHEDULES:
        module = item.func.rsplit(".", 1)[0]
        assert module.endswith(".tasks"), item.func
