"""certportal.prepared: a queryset shape compiled once answers exactly what the ORM answers,
on SQLite and on PostgreSQL, and falls back to the ORM where it cannot be prepared."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from certportal.prepared import PreparedQuery
from profiles.models import CertificateAuthority, CertificateProfile

pytestmark = pytest.mark.django_db


def profiles_by_slug(slug: str) -> Any:
    return (
        CertificateProfile.objects.select_related("issuing_ca")
        .annotate(ca_slug=F("issuing_ca__slug"))
        .filter(slug=slug, is_active=True)
    )


def rows(found: list[Any]) -> list[tuple[Any, ...]]:
    """What the test compares: every field value, the related CA and the annotation."""
    return [
        (
            tuple(getattr(p, f.attname) for f in p._meta.concrete_fields),
            tuple(getattr(p.issuing_ca, f.attname) for f in p.issuing_ca._meta.concrete_fields),
            p.ca_slug,
        )
        for p in found
    ]


@pytest.fixture
def two_profiles(
    make_profile: Callable[..., CertificateProfile], issuing_ca: CertificateAuthority
) -> list[CertificateProfile]:
    return [
        make_profile("alpha", issuing_ca, validity_days_default=45),
        make_profile("beta", issuing_ca, validity_days_default=90),
    ]


def test_model_instances_match_the_orm_for_each_call(two_profiles: list[Any]) -> None:
    query = PreparedQuery(profiles_by_slug)
    for slug in ["alpha", "beta", "alpha", "missing"]:
        found = query(slug=slug)
        assert query.prepared()
        assert rows(found) == rows(list(profiles_by_slug(slug)))
        assert [p.slug for p in found] == ([slug] if slug != "missing" else [])


def test_prepared_calls_run_one_query_and_carry_model_state(two_profiles: list[Any]) -> None:
    query = PreparedQuery(profiles_by_slug)
    query(slug="alpha")
    with CaptureQueriesContext(connection) as ctx:
        (found,) = query(slug="beta")
    assert len(ctx.captured_queries) == 1
    assert found._state.adding is False and found._state.db == "default"
    assert isinstance(found.issuing_ca, CertificateAuthority)
    assert found.policy().validity_days_default == 90  # fields convert as the ORM's do


def test_values_list_rows_match_the_orm(two_profiles: list[Any]) -> None:
    def build(slug: str, days: int) -> Any:
        return CertificateProfile.objects.filter(slug=slug, validity_days_default=days).values_list(
            "pk", "slug", "issuing_ca__slug", "dns_rules"
        )

    query = PreparedQuery(build)
    assert query(slug="alpha", days=45) == list(build("alpha", 45))
    assert query(slug="beta", days=90) == list(build("beta", 90))
    assert query(slug="beta", days=45) == []
    assert query.prepared()


def test_a_value_of_another_type_runs_through_the_orm(two_profiles: list[Any]) -> None:
    def build(description: Any) -> Any:
        return CertificateProfile.objects.filter(description=description).values_list("slug")

    query = PreparedQuery(build)
    assert query(description="nothing like it") == []
    assert query.prepared()
    # None becomes IS NULL in the ORM; the prepared SQL would say = NULL and find nothing.
    assert query(description=None) == list(build(None))


def test_a_shape_whose_sql_depends_on_the_value_is_not_prepared(two_profiles: list[Any]) -> None:
    def build(slug: str) -> Any:
        profiles = CertificateProfile.objects.values_list("slug")
        # A builder must not branch on its values; the first compile catches this one.
        return profiles.filter(slug=slug) if slug.endswith("a") else profiles.filter(name=slug)

    query = PreparedQuery(build)
    assert query(slug="alpha") == [("alpha",)]
    assert not query.prepared()
    assert query(slug="beta") == list(build("beta"))


def test_a_value_the_backend_converts_is_not_prepared(two_profiles: list[Any]) -> None:
    # A str for an integer column: the ORM sends int("7"), not the caller's value.
    def build(pk: Any) -> Any:
        return CertificateProfile.objects.filter(pk=pk).values_list("slug")

    query = PreparedQuery(build)
    pk = two_profiles[1].pk
    assert query(pk=str(pk)) == [("beta",)]
    assert not query.prepared()


def test_each_thread_compiles_on_its_own_connection(two_profiles: list[Any]) -> None:
    query = PreparedQuery(profiles_by_slug)
    query(slug="alpha")
    seen: list[bool] = []

    def other() -> None:
        seen.append(query.prepared())
        connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert query.prepared() and seen == [False]


@pytest.mark.django_db(transaction=True)
def test_a_lock_outside_a_transaction_fails_as_it_fails_in_the_orm(
    two_profiles: list[Any],
) -> None:
    def build(slug: str) -> Any:
        return CertificateProfile.objects.select_for_update().filter(slug=slug).values_list("slug")

    def outcome(run: Callable[[], Any]) -> Any:
        try:
            return run()
        except TransactionManagementError as error:
            return type(error)

    query = PreparedQuery(build)
    with transaction.atomic():
        assert query(slug="alpha") == [("alpha",)]
    assert query.prepared()
    # PostgreSQL refuses; SQLite, which has no row locks, answers.
    assert outcome(lambda: query(slug="beta")) == outcome(lambda: list(build("beta")))


def test_a_uuid_value_prepares_where_the_backend_takes_it_as_it_is(
    application: Any, tls_profile: Any, make_csr: Any, actor: Any
) -> None:
    from issuance.models import Certificate
    from issuance.services import submit

    issued = [
        submit(
            application=application, profile=tls_profile, method="api", actor=actor, csr=csr
        ).certificate
        for csr in (make_csr("u1.example.test"), make_csr("u2.example.test"))
    ]

    def build(certificate_id: Any) -> Any:
        return Certificate.objects.filter(pk=certificate_id).values_list("serial_number")

    query = PreparedQuery(build)
    for certificate in [*issued, None]:
        certificate_id = certificate.pk if certificate else uuid.uuid4()
        assert query(certificate_id=certificate_id) == list(build(certificate_id))
        assert query(certificate_id=certificate_id) == (
            [(certificate.serial_number,)] if certificate else []
        )
    # PostgreSQL binds the UUID itself; SQLite binds its hex, so the ORM runs there.
    assert query.prepared() == (connection.vendor == "postgresql")
