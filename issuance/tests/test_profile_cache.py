"""attached_profile's per-process cache: kept while the configuration generation holds,
dropped on any change to profiles, CAs, attachments or approval policies."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from approvals.models import ApprovalPolicy
from certportal import generation
from issuance.services import attached_profile
from profiles.services import set_ca_status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cache_on(settings):
    settings.CERTPORTAL_CONFIG_CACHE_SECONDS = 60


def test_a_repeated_lookup_asks_the_database_nothing(
    application, tls_profile, django_assert_num_queries
):
    attached_profile(application, tls_profile.slug)
    with django_assert_num_queries(0):
        profile = attached_profile(application, tls_profile.slug)
    assert profile is not None and profile.profile.pk == tls_profile.pk


def test_saving_the_profile_is_seen_by_the_next_lookup(application, tls_profile):
    attached_profile(application, tls_profile.slug)
    tls_profile.validity_days_max = 30
    tls_profile.save()
    profile = attached_profile(application, tls_profile.slug)
    assert profile is not None and profile.profile.validity_days_max == 30


def test_detaching_disabling_the_ca_and_adding_a_policy_are_seen(application, tls_profile, actor):
    attached_profile(application, tls_profile.slug)
    set_ca_status(tls_profile.issuing_ca, "disabled", actor=actor)
    profile = attached_profile(application, tls_profile.slug)
    assert profile is not None and profile.ca.status == "disabled"
    ApprovalPolicy.objects.create(application=application, name="all")
    profile = attached_profile(application, tls_profile.slug)
    assert profile is not None and profile.has_policies is True
    application.profiles.remove(tls_profile)
    assert attached_profile(application, tls_profile.slug) is None


def test_callers_get_their_own_copies(application, tls_profile):
    first = attached_profile(application, tls_profile.slug)
    assert first is not None
    first.profile.validity_days_max = 1
    first.ca.status = "disabled"
    second = attached_profile(application, tls_profile.slug)
    assert second is not None
    assert second.profile.validity_days_max == tls_profile.validity_days_max
    assert second.ca.status == "active"
    assert second.profile.issuing_ca is second.ca


def test_a_change_committed_by_another_process_is_seen_through_redis(
    redis_cache, application, tls_profile, django_assert_num_queries
):
    attached_profile(application, tls_profile.slug)
    with django_assert_num_queries(0):
        attached_profile(application, tls_profile.slug)
    cache.incr(generation.KEY)  # what another process's commit does
    with django_assert_num_queries(1):
        attached_profile(application, tls_profile.slug)


def test_entries_expire(settings, application, tls_profile, django_assert_num_queries):
    settings.CERTPORTAL_CONFIG_CACHE_SECONDS = 0
    attached_profile(application, tls_profile.slug)
    with django_assert_num_queries(1):
        attached_profile(application, tls_profile.slug)


def test_without_a_reachable_shared_cache_lookups_go_to_the_database(
    settings, application, tls_profile, django_assert_num_queries
):
    from django.core.cache import caches

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
        }
    }
    caches.__init__()  # type: ignore[misc]
    try:
        for _ in range(2):
            with django_assert_num_queries(1):
                profile = attached_profile(application, tls_profile.slug)
            assert profile is not None and profile.profile.pk == tls_profile.pk
    finally:
        caches.__init__()  # type: ignore[misc]


def test_a_web_request_reads_the_shared_generation_once(redis_cache, generation_reads, monkeypatch):
    reads = generation_reads
    generation.request_started()
    try:
        first = generation.current()
        generation.changed()  # this process's own change is seen at once
        second = generation.current()
    finally:
        generation.request_finished()
    assert len(reads) == 1
    assert first is not None and second is not None
    assert first[0] == second[0] and first != second
    generation.current()
    generation.current()
    assert len(reads) == 3  # outside a request (a task): read on every lookup
    generation.request_started()
    try:
        generation.current()
        generation.current()
        assert len(reads) == 4
        monkeypatch.setattr(generation, "_REQUEST_MEMO", 0.0)  # the request outlived it
        generation.current()
        assert len(reads) == 5
    finally:
        generation.request_finished()
