"""Planning, claiming and the outbox consumer, without a provider (the connection points
at an address the outbound rules refuse, so a push fails at once without network)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import services as alert_services
from alerts.choices import AlertEvent
from alerts.models import AlertRule, Delivery
from certportal import outbox
from certportal.models import OutboxEvent
from issuance import services as issuance
from syncs import lifecycle, services
from syncs.choices import ItemStatus, Selector, Want
from syncs.models import SyncItem

pytestmark = pytest.mark.django_db


def dispatch() -> int:
    return outbox.dispatch(
        list(OutboxEvent.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
    )


def test_a_new_certificate_gets_one_item_even_if_its_event_comes_twice(acm_sync, issue):
    certificate = issue("new.example.test")
    dispatch()
    event = OutboxEvent.objects.get(event_type="certificate.issued", object_id=str(certificate.pk))
    lifecycle.consume_events([event])  # delivered again
    assert SyncItem.objects.filter(sync=acm_sync, certificate=certificate).count() == 1


def test_two_workers_never_claim_the_same_item(acm_sync, issue):
    issue("claimed.example.test")
    lifecycle.plan(acm_sync)
    [pk] = SyncItem.objects.values_list("pk", flat=True)
    now = timezone.now()
    assert lifecycle.claim(pk, now) is True
    assert lifecycle.claim(pk, now) is False
    # A killed worker's claim runs out; then another takes the item over.
    later = now + lifecycle.lease() + timedelta(seconds=1)
    assert lifecycle.claim(pk, later) is True
    assert SyncItem.objects.get(pk=pk).attempts == 2  # the backend looks up before creating


def test_a_permanent_failure_raises_sync_failed_which_alert_rules_route(
    application, acm_sync, issue, actor
):
    channel = alert_services.save_channel(
        application,
        name="ops",
        kind="email",
        config={"recipients": ["ops@example.test"]},
        secrets={},
        actor=actor,
    )
    alert_services.save_rule(
        application,
        AlertRule(name="sync failures", events=[AlertEvent.SYNC_FAILED], thresholds_days=[]),
        [channel.pk],
        actor=actor,
    )
    issue("alerting.example.test")
    dispatch()
    assert lifecycle.push_due() == 0
    item = SyncItem.objects.get(sync=acm_sync)
    assert item.status == ItemStatus.FAILED and item.next_attempt_at is None
    dispatch()
    delivery = Delivery.objects.get(event=AlertEvent.SYNC_FAILED)
    assert "Sync acm failed for alerting.example.test" in delivery.subject
    assert delivery.certificate_id == item.certificate_id
    assert "Endpoint refused" in delivery.payload["error"]


def test_lineage_follows_renewals_and_pattern_matches_names(
    application, connection, issue, actor, tls_profile
):
    first = issue("one.example.test")
    issue("two.example.test")
    lineage = services.save_sync(
        application,
        services.SyncSpec(
            name="lineage",
            destination="aws-acm",
            connection=connection,
            selector=Selector.LINEAGE,
            certificate=first,
            options={"region": "us-east-1"},
        ),
        actor=actor,
    )
    pattern = services.save_sync(
        application,
        services.SyncSpec(
            name="pattern",
            destination="aws-acm",
            connection=connection,
            selector=Selector.PATTERN,
            name_pattern="two.*.test",
            options={"region": "us-east-1"},
        ),
        actor=actor,
    )
    assert [str(i.certificate.common_name) for i in lineage.items.all()] == ["one.example.test"]
    assert [str(i.certificate.common_name) for i in pattern.items.all()] == ["two.example.test"]
    renewed = issuance.renew(first, actor=actor).certificate
    dispatch()
    assert lineage.items.filter(certificate=renewed).exists()
    assert not pattern.items.filter(certificate=renewed).exists()


def test_expiry_sweep_queues_removal_where_the_sync_says_so(application, connection, issue, actor):
    certificate = issue("expiring.example.test")
    sync = services.save_sync(
        application,
        services.SyncSpec(
            name="acm",
            destination="aws-acm",
            connection=connection,
            profile=certificate.profile,
            options={"region": "us-east-1", "remove_on_expiry": True},
        ),
        actor=actor,
    )
    SyncItem.objects.filter(sync=sync).update(
        status=ItemStatus.SYNCED, external_id="arn:aws:acm:us-east-1:1:certificate/x"
    )
    assert lifecycle.sweep_expired(now=timezone.now()) == 0
    assert lifecycle.sweep_expired(now=certificate.not_after + timedelta(seconds=1)) == 1
    item = SyncItem.objects.get(sync=sync)
    assert item.want == Want.ABSENT and item.status == ItemStatus.PENDING


def test_changing_options_requeues_items_once(application, acm_sync, issue, actor, connection):
    issue("opts.example.test")
    lifecycle.plan(acm_sync)
    SyncItem.objects.update(
        status=ItemStatus.SYNCED, pushed_fingerprint=SyncItem.objects.get().desired_fingerprint
    )
    assert lifecycle.plan(acm_sync) == 0  # nothing changed: nothing queued
    spec = services.SyncSpec(
        name="acm",
        destination="aws-acm",
        connection=connection,
        profile=acm_sync.profile,
        options={"region": "us-east-1", "include_root": True},
    )
    services.save_sync(application, spec, actor=actor, sync=acm_sync)
    assert SyncItem.objects.get().status == ItemStatus.PENDING


def test_a_held_key_that_does_not_match_is_never_pushed(acm_sync, issue):
    from certportal.secrets import seal_into
    from pki import keys

    certificate = issue("mismatch.example.test")
    other = keys.private_key_to_pem(keys.generate_private_key("EC_P256"))
    seal_into(certificate, "private_key", other)
    lifecycle.plan(acm_sync)
    assert lifecycle.push_due() == 0
    item = SyncItem.objects.get(certificate=certificate)
    assert item.status == ItemStatus.FAILED and "does not match" in item.last_error
    assert item.next_attempt_at is None  # a person has to look at it


def test_revoking_a_renewed_certificate_leaves_its_renewal_at_the_destination(
    acm_sync, issue, actor
):
    first = issue("kept.example.test")
    lifecycle.plan(acm_sync)
    SyncItem.objects.update(status=ItemStatus.SYNCED, external_id="arn:x")
    renewed = issuance.renew(first, actor=actor).certificate
    dispatch()
    issuance.revoke(first, reason="superseded", actor=actor)
    dispatch()
    old = SyncItem.objects.get(certificate=first)
    new = SyncItem.objects.get(certificate=renewed)
    assert old.status == ItemStatus.SUPERSEDED and old.want == Want.PRESENT
    assert new.want == Want.PRESENT and new.external_id == "arn:x"


def test_api_lists_do_not_grow_queries_with_items(
    personas, acm_sync, issue, django_assert_max_num_queries
):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(personas["auditor"])
    base = "/api/v1/applications/payments-api/syncs/"
    issue("q0.example.test")
    lifecycle.plan(acm_sync)
    api.get(base)
    with django_assert_max_num_queries(40) as few_list:
        api.get(base)
    with django_assert_max_num_queries(40) as few_items:
        api.get(f"{base}{acm_sync.pk}/items/")
    for n in range(6):
        issue(f"q{n + 1}.example.test")
    lifecycle.plan(acm_sync)
    with django_assert_max_num_queries(len(few_list.captured_queries)):
        api.get(base)
    with django_assert_max_num_queries(len(few_items.captured_queries)):
        assert len(api.get(f"{base}{acm_sync.pk}/items/").json()["results"]) == 7
