"""Shared fixtures: CAs, profiles, an Application and the standard personas."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from applications.choices import Role
from applications.models import Application
from applications.services import create_application, set_member_role
from certportal.events import Actor
from pki import csr as pki_csr
from pki import keys
from profiles import services as ca_services
from profiles.choices import Preset
from profiles.models import CertificateAuthority, CertificateProfile

TEST_ACTOR = Actor(label="pytest")


@pytest.fixture
def actor() -> Actor:
    return TEST_ACTOR


@pytest.fixture
def make_ca(db: Any) -> Callable[..., CertificateAuthority]:
    """Create an internal root (parent=None) or intermediate CA through the services."""

    def make(
        slug: str,
        algorithm: str = "EC_P256",
        parent: CertificateAuthority | None = None,
        **spec: Any,
    ) -> CertificateAuthority:
        ca_spec = ca_services.CASpec(
            name=spec.pop("name", slug),
            slug=slug,
            subject=ca_services.CASubject(
                spec.pop("common_name", f"{slug} CA"), "certportal tests"
            ),
            key_algorithm=algorithm,
            **spec,
        )
        if parent is None:
            return ca_services.create_root_ca(ca_spec, actor=TEST_ACTOR)
        return ca_services.create_intermediate_ca(ca_spec, parent=parent, actor=TEST_ACTOR)

    return make


@pytest.fixture
def root_ca(make_ca: Callable[..., CertificateAuthority]) -> CertificateAuthority:
    return make_ca("test-root", path_length=1)


@pytest.fixture
def issuing_ca(
    make_ca: Callable[..., CertificateAuthority], root_ca: CertificateAuthority
) -> CertificateAuthority:
    return make_ca("test-issuing", parent=root_ca)


@pytest.fixture
def make_profile(db: Any) -> Callable[..., CertificateProfile]:
    def make(
        slug: str, ca: CertificateAuthority, preset: str = Preset.TLS_SERVER, **fields: Any
    ) -> CertificateProfile:
        fields.setdefault("dns_rules", ["example.test", "*.example.test", "localhost"])
        return ca_services.create_profile(
            actor=TEST_ACTOR, preset=preset, name=slug, slug=slug, issuing_ca=ca, **fields
        )

    return make


@pytest.fixture
def tls_profile(
    make_profile: Callable[..., CertificateProfile], issuing_ca: CertificateAuthority
) -> CertificateProfile:
    return make_profile("tls-server", issuing_ca)


@pytest.fixture
def application(db: Any, tls_profile: CertificateProfile) -> Application:
    return create_application(name="payments-api", profiles=[tls_profile], actor=TEST_ACTOR)


@pytest.fixture
def leaf(
    application: Application, tls_profile: CertificateProfile, make_csr: Any, actor: Actor
) -> Any:
    """A certificate the issuing CA signed through the pipeline (for revocation tests)."""
    from issuance.services import submit

    return submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=actor,
        csr=make_csr("leaf.example.test"),
    ).certificate


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., Any]:
    def make(username: str, **extra: Any) -> Any:
        return django_user_model.objects.create_user(
            username=username, password="pw-" + username, **extra
        )

    return make


@pytest.fixture
def product_admin(make_user: Callable[..., Any]) -> Any:
    return make_user("product-admin", is_superuser=True, is_staff=True)


@pytest.fixture
def personas(
    make_user: Callable[..., Any],
    application: Application,
    product_admin: Any,
    tls_profile: CertificateProfile,
) -> dict[str, Any]:
    """product_admin, admin, operator, auditor (of `application`), outsider (member of
    another Application) and anonymous (None)."""
    people = {"product_admin": product_admin}
    for role in Role:
        people[str(role)] = make_user(f"app-{role}")
        set_member_role(application, people[str(role)], role, actor=TEST_ACTOR)
    other = create_application(name="other-app", profiles=[tls_profile], actor=TEST_ACTOR)
    people["outsider"] = make_user("outsider")
    set_member_role(other, people["outsider"], Role.ADMIN, actor=TEST_ACTOR)
    people["anonymous"] = None
    return people


@pytest.fixture
def make_csr() -> Callable[..., bytes]:
    """A PEM CSR for the names, with a fresh key of the algorithm."""

    def make(
        common_name: str | None = None,
        dns_names: Sequence[str] = (),
        algorithm: str = "EC_P256",
        **kwargs: Any,
    ) -> bytes:
        key = keys.generate_private_key(algorithm)
        request = pki_csr.build_csr(key, common_name, dns_names=dns_names, **kwargs)
        return request.public_bytes(Encoding.PEM)

    return make


@pytest.fixture(autouse=True)
def _test_speedups(settings: Any) -> None:
    """Tests render pages without running collectstatic: use the plain static storage
    (production's manifest storage needs the collected manifest). A fast password hasher
    keeps persona set-up from dominating test time (PBKDF2 costs ~0.5 s per user)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_local_cache() -> None:
    """Each test starts with an empty local-memory cache: rate-limit windows (ACME, API)
    counted by earlier tests must not refuse this one's requests."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def generation_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time the shared configuration generation is read."""
    from certportal import generation

    reads: list[int] = []
    read = generation._read_shared

    def counted() -> int | None:
        reads.append(1)
        return read()

    monkeypatch.setattr(generation, "_read_shared", counted)
    return reads


@pytest.fixture
def redis_cache(settings: Any) -> Iterator[str]:
    """REDIS_URL set and the default cache on Redis (db 13, a key prefix of this test's own):
    what a deployment with Redis shares between processes. Yields the URL."""
    import os
    import time

    from django.core.cache import caches

    settings.REDIS_URL = "redis://127.0.0.1:6379/13"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "KEY_PREFIX": f"test-{os.getpid()}-{time.monotonic_ns()}",
        }
    }
    caches.__init__()  # type: ignore[misc]
    yield settings.REDIS_URL
    caches.__init__()  # type: ignore[misc]


class HoldEveryRequest:
    """A pipeline gate (issuance.gates) that holds every request and writes nothing."""

    def present(self, application_id: int) -> Any:
        from django.db.models import BooleanField, Value

        return Value(True, output_field=BooleanField())

    def begin(self, application: Application, present: bool | None) -> None:
        pass

    def may_hold(self, application: Application) -> bool:
        return True

    def hold_if_required(self, request: Any, decision: Any) -> bool:
        return True


@pytest.fixture
def hold_every_request(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make the pipeline hold every request from then on, in place of the
    registered gates (approval policies)."""
    from issuance import gates

    def start() -> None:
        monkeypatch.setattr(gates, "_GATES", {"hold": HoldEveryRequest()})

    return start
