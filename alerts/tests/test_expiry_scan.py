"""The expiry scan's steady state: certificates already alerted cost no new delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from alerts import services
from alerts.choices import ChannelKind
from alerts.models import AlertRule, Delivery
from alerts.services import expiry
from issuance.services import KeySpec, submit

pytestmark = pytest.mark.django_db


def _channel(application: Any, actor: Any, name: str) -> Any:
    return services.save_channel(
        application, name=name, kind=ChannelKind.EMAIL,
        config={"recipients": [f"{name}@example.test"]}, secrets={}, actor=actor,
    )  # fmt: skip


@pytest.fixture
def expiring(application: Any, tls_profile: Any, actor: Any) -> list[Any]:
    return [
        submit(
            application=application, profile=tls_profile, method="api", actor=actor,
            csr=None, key_spec=KeySpec("EC_P256", f"h{i}.example.test", [f"h{i}.example.test"]),
            validity_days=20,
        ).certificate
        for i in range(3)
    ]  # fmt: skip


def test_a_second_scan_builds_no_delivery_for_certificates_already_alerted(
    application: Any, actor: Any, expiring: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = _channel(application, actor, "ops")
    services.save_rule(
        application,
        AlertRule(name="r", thresholds_days=[30], include_auto_renewed=True),
        [channel.pk],
        actor=actor,
    )
    assert services.scan_expiring() == 3
    built: list[str] = []
    original = expiry._expiry_deliveries

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(expiry, "_expiry_deliveries", counting)
    assert services.scan_expiring() == 0
    assert built == []
    assert Delivery.objects.count() == 3


def test_a_channel_added_to_the_rule_later_still_gets_the_alert(
    application: Any, actor: Any, expiring: list[Any]
) -> None:
    first, second = _channel(application, actor, "first"), _channel(application, actor, "second")
    rule = services.save_rule(
        application,
        AlertRule(name="r", thresholds_days=[30], include_auto_renewed=True),
        [first.pk],
        actor=actor,
    )
    assert services.scan_expiring() == 3
    services.save_rule(application, rule, [first.pk, second.pk], actor=actor)
    assert services.scan_expiring() == 3
    assert services.scan_expiring() == 0
    per_channel = sorted(Delivery.objects.values_list("channel__name", flat=True))
    assert per_channel == ["first"] * 3 + ["second"] * 3


def test_a_lower_threshold_crossed_later_is_a_new_alert(
    application: Any, actor: Any, expiring: list[Any]
) -> None:
    channel = _channel(application, actor, "ops")
    services.save_rule(
        application,
        AlertRule(name="r", thresholds_days=[30, 7], include_auto_renewed=True),
        [channel.pk],
        actor=actor,
    )
    assert services.scan_expiring() == 3
    with time_machine.travel(expiring[0].not_after - timedelta(days=6), tick=False):
        assert services.scan_expiring() == 3
        assert services.scan_expiring() == 0
