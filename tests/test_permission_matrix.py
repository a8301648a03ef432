"""Every portal URL, for every persona, answers the expected status code.

anonymous -> login redirect (302); a member of another Application (outsider) -> 404 on
this Application's URLs and on product-admin pages; a member lacking the permission an
action needs -> 403; allowed -> 200 (page) or 302 (action done, redirect).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from applications.choices import Role
from applications.models import Membership
from issuance import services
from issuance.acme import services as acme_services
from issuance.acme import urls as acme_urls
from issuance.acme.models import Account, ExternalAccountKey
from issuance.choices import EnrollmentMethod
from issuance.est import services as est_services
from issuance.est import urls as est_urls
from issuance.est.models import EstCredential, EstEnrollment
from issuance.models import RenewalSettings
from issuance.scep import services as scep_services
from issuance.scep.models import ScepChallenge
from syncs import services as sync_services
from syncs.models import Connection, Sync, SyncItem, SyncRun

PERSONAS = ("anonymous", "outsider", "auditor", "operator", "admin", "product_admin")

# status per persona, in PERSONAS order
APP_READ = (302, 404, 200, 200, 200, 200)
APP_WRITE_PAGE = (302, 404, 403, 200, 200, 200)
APP_MANAGE_ACTION = (302, 404, 403, 403, 302, 302)
APP_MANAGE_PAGE = (302, 404, 403, 403, 200, 200)
PRODUCT_ADMIN_PAGE = (302, 404, 404, 404, 404, 200)
ANY_USER = (302, 200, 200, 200, 200, 200)

# (url name, kwargs kind, method, POST data kind, expected)
MATRIX: list[tuple[str, str, str, str, tuple[int, ...]]] = [
    ("home", "", "get", "", ANY_USER),
    ("applications:list", "", "get", "", ANY_USER),
    ("applications:create", "", "get", "", PRODUCT_ADMIN_PAGE),
    ("applications:overview", "app", "get", "", APP_READ),
    ("applications:edit", "app", "get", "", PRODUCT_ADMIN_PAGE),
    ("applications:edit", "app", "post", "", (302, 404, 404, 404, 404, 302)),
    ("applications:members", "app", "get", "", APP_READ),
    ("applications:members", "app", "post", "add_member", APP_MANAGE_ACTION),
    ("applications:member-role", "member", "post", "role", APP_MANAGE_ACTION),
    ("applications:member-remove", "member", "post", "", APP_MANAGE_ACTION),
    ("applications:enrollment", "app", "get", "", APP_READ),
    ("applications:audit", "app", "get", "", APP_READ),
    ("applications:audit-global", "", "get", "", PRODUCT_ADMIN_PAGE),
    ("issuance:certificates", "app", "get", "", APP_READ),
    ("issuance:certificates-csv", "app", "get", "", APP_READ),
    ("issuance:certificate", "cert", "get", "", APP_READ),
    ("issuance:download", "cert_pem", "get", "", APP_READ),
    ("issuance:issue", "app", "get", "", APP_WRITE_PAGE),
    ("issuance:import", "app", "get", "", APP_WRITE_PAGE),
    ("issuance:revoke", "cert", "get", "", APP_WRITE_PAGE),
    ("issuance:revoke", "cert", "post", "revoke", (302, 404, 403, 302, 302, 302)),
    # Not on hold: refused with a message on the certificate page.
    ("issuance:release-hold", "cert", "post", "", (302, 404, 403, 302, 302, 302)),
    ("issuance:pkcs12", "cert", "post", "pkcs12", APP_WRITE_PAGE),
    ("issuance:renew", "cert", "get", "", APP_WRITE_PAGE),
    ("issuance:renew", "cert", "post", "renew", (302, 404, 403, 302, 302, 302)),
    ("issuance:renewal", "app", "get", "", APP_MANAGE_PAGE),
    ("issuance:renewal", "app", "post", "renewal", APP_MANAGE_ACTION),
    ("issuance:certificate-renewal", "cert", "get", "", APP_MANAGE_PAGE),
    ("issuance:certificate-renewal", "cert", "post", "cert_renewal", APP_MANAGE_ACTION),
    ("profiles:ca-list", "", "get", "", PRODUCT_ADMIN_PAGE),
    ("profiles:ca-create", "ca_kind", "get", "", PRODUCT_ADMIN_PAGE),
    ("profiles:ca-import", "", "get", "", PRODUCT_ADMIN_PAGE),
    ("profiles:ca-detail", "ca", "get", "", PRODUCT_ADMIN_PAGE),
    ("profiles:ca-status", "ca", "post", "ca_status", (302, 404, 404, 404, 404, 302)),
    # An empty install form on an active CA: refused with the form shown again.
    ("profiles:ca-install", "ca", "post", "", (302, 404, 404, 404, 404, 400)),
    ("profiles:profile-list", "", "get", "", PRODUCT_ADMIN_PAGE),
    ("profiles:profile-create", "", "get", "", PRODUCT_ADMIN_PAGE),
    ("profiles:profile-edit", "profile", "get", "", PRODUCT_ADMIN_PAGE),
    # ACME on the Enrollment tab: every member reads the accounts list there (above);
    # only Admins create or revoke EAB credentials and deactivate accounts.
    ("acme:eab-create", "app", "get", "", APP_MANAGE_PAGE),
    ("acme:eab-create", "app", "post", "eab", APP_MANAGE_PAGE),  # shows the key once
    ("acme:eab-revoke", "eab", "get", "", APP_MANAGE_PAGE),
    ("acme:eab-revoke", "eab", "post", "revoke_eab", APP_MANAGE_ACTION),
    ("acme:account-deactivate", "acme_account", "get", "", APP_MANAGE_PAGE),
    ("acme:account-deactivate", "acme_account", "post", "", APP_MANAGE_ACTION),
    # EST on the Enrollment tab: every member reads it (above); only Admins configure.
    ("est:enrollment-create", "app", "get", "", APP_MANAGE_PAGE),
    # tls-server has its enrollment already: the form comes back with the reason.
    ("est:enrollment-create", "app", "post", "est_enrollment", (302, 404, 403, 403, 400, 400)),
    ("est:enrollment-edit", "est", "get", "", APP_MANAGE_PAGE),
    ("est:enrollment-edit", "est", "post", "est_enrollment", APP_MANAGE_ACTION),
    ("est:credential-create", "est", "get", "", APP_MANAGE_PAGE),
    ("est:credential-create", "est", "post", "est_credential", APP_MANAGE_PAGE),  # shows it once
    ("est:credential-revoke", "est_credential", "post", "", APP_MANAGE_ACTION),
    ("est:enrollment-delete", "est", "post", "", APP_MANAGE_ACTION),
    # SCEP on the Enrollment tab: Admins configure and set the static challenge; Admins
    # and Operators mint one-time challenges (shown once on a page, hence 200).
    ("scep:enable", "app", "get", "", APP_MANAGE_PAGE),
    ("scep:enable", "app", "post", "", APP_MANAGE_PAGE),  # no profile chosen: form again
    ("scep:edit", "scep", "get", "", APP_MANAGE_PAGE),
    ("scep:edit", "scep", "post", "scep_settings", APP_MANAGE_ACTION),
    ("scep:challenge", "scep", "get", "", APP_MANAGE_PAGE),
    ("scep:challenge", "scep", "post", "", APP_MANAGE_PAGE),  # shows the challenge once
    ("scep:mint", "scep", "get", "", APP_WRITE_PAGE),
    ("scep:mint", "scep", "post", "scep_mint", APP_WRITE_PAGE),  # shows the challenge once
    # Syncs: every member reads; only Admins configure and act (empty forms answer 400).
    ("syncs:list", "app", "get", "", APP_READ),
    ("syncs:detail", "sync", "get", "", APP_READ),
    ("syncs:new", "app", "get", "", APP_MANAGE_PAGE),
    ("syncs:new", "app", "post", "", (302, 404, 403, 403, 400, 400)),
    ("syncs:edit", "sync", "get", "", APP_MANAGE_PAGE),
    ("syncs:run", "sync", "post", "", APP_MANAGE_ACTION),
    ("syncs:drift", "sync", "post", "", APP_MANAGE_ACTION),
    ("syncs:delete", "sync", "get", "", APP_MANAGE_PAGE),
    ("syncs:delete", "sync", "post", "", APP_MANAGE_ACTION),
    ("syncs:item-repush", "sync_item", "post", "", APP_MANAGE_ACTION),
    ("syncs:item-remove", "sync_item", "post", "", APP_MANAGE_ACTION),
    ("syncs:connection-new", "app", "get", "", APP_MANAGE_PAGE),
    ("syncs:connection", "connection", "get", "", APP_MANAGE_PAGE),
    ("syncs:connection-test", "connection", "post", "", APP_MANAGE_ACTION),
    ("syncs:connection-delete", "connection", "get", "", APP_MANAGE_PAGE),
    ("syncs:connection-delete", "connection", "post", "", APP_MANAGE_ACTION),
]

CASES = [
    pytest.param(name, kwargs, method, data, persona, expected[i], id=f"{method}-{name}-{persona}")
    for name, kwargs, method, data, expected in MATRIX
    for i, persona in enumerate(PERSONAS)
]


@pytest.fixture
def world(personas: dict[str, Any], application: Any, tls_profile: Any, actor: Any) -> dict:
    submission = services.submit(
        application=application,
        profile=tls_profile,
        method=EnrollmentMethod.UI,
        actor=actor,
        key_spec=services.KeySpec(algorithm="EC_P256", common_name="www.example.test"),
    )
    eab, _ = acme_services.create_eab_key(application, name="matrix", actor=actor)
    account = Account.objects.create(
        application=application, profile=tls_profile, eab_key=eab, jwk={}, thumbprint="t" * 43
    )
    est = est_services.save_enrollment(
        application, est_services.EnrollmentSpec(profile=tls_profile), actor=actor
    )
    est_credential, _ = est_services.create_credential(est, username="device", actor=actor)
    scep = scep_services.enable(application, tls_profile, actor=actor)
    connection, sync = _sync_world(application, tls_profile, actor)
    return {
        "personas": personas,
        "certificate": submission.certificate,
        "eab": eab,
        "acme_account": account,
        "est": est,
        "est_credential": est_credential,
        "scep": scep,
        "connection": connection,
        "sync": sync,
    }


def _sync_world(application: Any, tls_profile: Any, actor: Any) -> tuple[Any, Any]:
    """An AWS connection (no endpoint a test could reach: its test answers "refused") and
    an ACM sync with the certificate's item."""
    connection = sync_services.save_connection(
        application,
        name="aws",
        kind="aws",
        credentials={"access_key_id": "AKIDMATRIX", "secret_access_key": "matrix-secret"},
        config={},
        actor=actor,
    )
    Connection.objects.filter(pk=connection.pk).update(
        config={"endpoint_url": "http://127.0.0.1:9"}
    )
    sync = sync_services.save_sync(
        application,
        sync_services.SyncSpec(
            name="acm",
            destination="aws-acm",
            connection=connection,
            profile=tls_profile,
            options={"region": "us-east-1"},
        ),
        actor=actor,
    )
    return connection, sync


def _kwargs(kind: str, world: dict, application: Any, tls_profile: Any) -> dict[str, Any]:
    cert = world["certificate"]
    return {
        "": {},
        "app": {"slug": application.name},
        "member": {"slug": application.name, "user_id": world["personas"]["operator"].pk},
        "cert": {"slug": application.name, "pk": cert.pk},
        "cert_pem": {"slug": application.name, "pk": cert.pk, "kind": "cert"},
        "ca_kind": {"kind": "root"},
        "ca": {"slug": tls_profile.issuing_ca.slug},
        "profile": {"slug": tls_profile.slug},
        "eab": {"slug": application.name, "pk": world["eab"].pk},
        "acme_account": {"slug": application.name, "account_id": world["acme_account"].pk},
        "est": {"slug": application.name, "pk": world["est"].pk},
        "est_credential": {
            "slug": application.name,
            "pk": world["est"].pk,
            "cred": world["est_credential"].pk,
        },
        "scep": {"slug": application.name, "pk": world["scep"].pk},
        "sync": {"slug": application.name, "pk": world["sync"].pk},
        "sync_item": {"slug": application.name, "pk": world["sync"].pk, "certificate": cert.pk},
        "connection": {"slug": application.name, "pk": world["connection"].pk},
    }[kind]


def _data(kind: str, make_user: Any) -> dict[str, Any]:
    if kind == "add_member":
        return {"username": make_user("newcomer").username, "role": Role.AUDITOR}
    data: dict[str, dict[str, Any]] = {
        "": {},
        "role": {"role": Role.AUDITOR},
        "revoke": {"reason": "keyCompromise", "confirm": "on"},
        "pkcs12": {"password": "correct horse battery"},
        "ca_status": {"status": "active"},
        "renew": {"key": "new"},
        "renewal": {"auto_renew": "on", "renew_days_before": "", "key_mode": "new"},
        "cert_renewal": {"auto_renew": "off", "renew_days_before": ""},
        "eab": {"name": "matrix-created"},
        "revoke_eab": {"deactivate_accounts": "on"},
        "est_enrollment": {"profile": "tls-server", "basic_auth": "on"},
        "est_credential": {"username": "device-2"},
        "scep_settings": {"enabled": "on", "max_outstanding_challenges": "5"},
        "scep_mint": {"ttl_minutes": "30"},
    }
    return data[kind]


@pytest.mark.parametrize(("name", "kwargs", "method", "data", "persona", "expected"), CASES)
def test_portal_url_answers_expected_status(
    name: str, kwargs: str, method: str, data: str, persona: str, expected: int,
    world: dict, application: Any, tls_profile: Any, make_user: Any,
) -> None:  # fmt: skip
    client = Client()
    user = world["personas"][persona]
    if user is not None:
        client.force_login(user)
    url = reverse(name, kwargs=_kwargs(kwargs, world, application, tls_profile))
    before = _state(world)
    response = client.get(url) if method == "get" else client.post(url, _data(data, make_user))
    assert response.status_code == expected, (url, persona, response.status_code)
    if response.status_code in (403, 404) and method == "post":
        assert _state(world) == before


def _state(world: dict) -> tuple[Any, ...]:
    """What a refused POST must leave as it was."""
    world["eab"].refresh_from_db()
    world["acme_account"].refresh_from_db()
    world["certificate"].refresh_from_db()
    world["scep"].refresh_from_db()
    return (
        RenewalSettings.objects.count(),
        world["certificate"].auto_renew,
        Membership.objects.count(),
        ExternalAccountKey.objects.count(),
        world["eab"].revoked_at,
        world["acme_account"].status,
        EstEnrollment.objects.count(),
        list(EstCredential.objects.values_list("pk", "revoked_at")),
        world["scep"].challenge_hash,
        world["scep"].max_outstanding_challenges,
        ScepChallenge.objects.count(),
        Connection.objects.count(),
        Sync.objects.count(),
        sorted(SyncItem.objects.values_list("status", "want")),
        SyncRun.objects.count(),
    )


# The ACME protocol's endpoints (JWS-signed, no portal session) live under acme/; the
# ACME pages of the portal under applications/ are portal pages like any other.
ACME_PROTOCOL = {str(p.name) for p in acme_urls.urlpatterns if str(p.pattern).startswith("acme/")}

# EST's protocol endpoints (HTTP Basic or client certificates, no portal session).
EST_PROTOCOL = {str(p.name) for p in est_urls.urlpatterns if "well-known" in str(p.pattern)}

# Public PKI endpoints (no login) and the htmx partial of a listed page are not portal pages.
NOT_IN_MATRIX = {
    "issuance:ca-certificate",
    "issuance:ca-chain",
    "issuance:crl",
    "issuance:ocsp",
    "issuance:ocsp-get",
    *(f"acme:{name}" for name in ACME_PROTOCOL),
    *(f"est:{name}" for name in EST_PROTOCOL),
    # The SCEP protocol endpoint (devices, no portal session).
    "scep:pkiclient",
    "scep:endpoint",
    "scep:endpoint-slash",
}


def test_matrix_names_every_portal_url():
    """A new page in these namespaces must be added to MATRIX (or knowingly excluded)."""
    from django.urls import get_resolver

    resolver = get_resolver()
    named = set()
    for namespace in ("applications", "issuance", "profiles", "acme", "est", "scep", "syncs"):
        ns_resolver = resolver.namespace_dict[namespace][1]
        named |= {
            f"{namespace}:{name}" for name in ns_resolver.reverse_dict if isinstance(name, str)
        }
    covered = {row[0] for row in MATRIX}
    assert named - covered - NOT_IN_MATRIX == set()
