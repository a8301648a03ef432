"""A sweep: every form and API endpoint that takes a certificate, key, CSR or PKCS#12
gets malformed input and answers a 4xx in its own format, writing no row.

Endpoints: the web import form, the web issue form with a CSR, the web renewal with a
CSR, the API issue with a CSR, the API renewal with a CSR, and the product admin's CA
import and external-CA certificate install. (ACME finalize has its own sweep in
tests/acme; there is no API endpoint that imports a certificate or a CA.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from applications.models import AuditEvent
from certportal.api import services as credentials
from certportal.events import Actor
from certportal.models import OutboxEvent
from issuance import services
from issuance.models import Certificate, CertificateRequest
from pki import export, keys
from profiles import services as ca_services
from profiles.models import CertificateAuthority
from tests import certfiles

pytestmark = [
    pytest.mark.django_db,
    # cryptography warns about the very defects these inputs carry.
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

OVERSIZE = 70 * 1024  # past every form's and serializer's 64 KiB limit


@dataclass
class World:
    """What the endpoints act on, and the material malformed inputs are cut from."""

    application: Any
    held: Certificate
    external_ca: CertificateAuthority
    root: CertificateAuthority
    leaf_pem: str
    leaf_key_pem: str
    csr_pem: str
    web: Client
    admin: Client
    api: APIClient


@pytest.fixture
def world(personas: dict[str, Any], application: Any, tls_profile: Any, root_ca: Any,
          make_csr: Any) -> World:  # fmt: skip
    held = services.submit(
        application=application,
        profile=tls_profile,
        method="api",
        actor=Actor(label="pytest"),
        key_spec=services.KeySpec("EC_P256", "held.example.test", ["held.example.test"]),
    ).certificate
    assert held is not None
    external = ca_services.create_external_ca(
        ca_services.CASpec(name="ext", slug="ext", subject=ca_services.CASubject("Ext CA")),
        actor=Actor(label="pytest"),
    )
    leaf, key = certfiles.self_signed()
    web, admin = Client(), Client()
    web.force_login(personas["operator"])
    admin.force_login(personas["product_admin"])
    _token, raw = credentials.create_token(personas["operator"], name="t", actor=Actor(label="t"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return World(
        application=application,
        held=held,
        external_ca=external,
        root=root_ca,
        leaf_pem=certfiles.pem(leaf),
        leaf_key_pem=certfiles.key_pem(key),
        csr_pem=make_csr("a.example.test", ["a.example.test"]).decode(),
        web=web,
        admin=admin,
        api=api,
    )


# --- Malformed values ---------------------------------------------------------------------


def _truncated_pem(pem: str) -> str:
    return pem[: len(pem) // 2]


def _truncated_der_pem(pem: str, label: str) -> str:
    der = export.load_certificates(pem)[0].public_bytes(serialization.Encoding.DER)
    return certfiles.der_to_pem(der[: len(der) // 2], label)


def _dsa_key_pem() -> str:
    key = dsa.generate_private_key(key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_key_pem(w: World) -> str:
    cert = export.load_certificates(w.leaf_pem)[0]
    return keys.public_key_to_pem(cert.public_key()).decode()  # type: ignore[arg-type]


# Values for a field that expects a certificate or a CSR in PEM (text).
TEXT: dict[str, Callable[[World], Any]] = {
    "empty": lambda w: "",
    "whitespace": lambda w: " \n\t ",
    "garbage": lambda w: "this is not PEM at all",
    "nul-byte": lambda w: w.leaf_pem.replace("\n", "\x00", 1),
    "truncated-pem": lambda w: _truncated_pem(w.leaf_pem),
    "truncated-der": lambda w: _truncated_der_pem(w.leaf_pem, "CERTIFICATE"),
    "raw-der-as-text": lambda w: export.der(export.load_certificates(w.leaf_pem)[0]).decode(
        "latin-1"
    ),
    "private-key": lambda w: w.leaf_key_pem,
    "public-key": _public_key_pem,
    "oversize": lambda w: w.leaf_pem * (OVERSIZE // len(w.leaf_pem) + 1),
    "non-ascii": lambda w: "-----BEGIN CERTIFICATE-----\nü€😀\n-----END CERTIFICATE-----\n",
}
# Certificates with defects cryptography reads but a CA must refuse.
BAD_CERTS: dict[str, Callable[[World], str]] = {
    "duplicate-extension": lambda w: certfiles.duplicate_extension(),
    "negative-serial": lambda w: certfiles.with_serial(-1),
    "overlong-serial": lambda w: certfiles.with_serial(2**300),
    "overlong-common-name": lambda w: certfiles.pem(
        certfiles.self_signed(common_name="x" * 300)[0]
    ),
}
# Where a CSR is expected: certificates are the wrong type.
NOT_CSR: dict[str, Callable[[World], str]] = {
    "certificate": lambda w: w.leaf_pem,
    "ca-certificate": lambda w: w.root.certificate_pem,
    "truncated-csr": lambda w: _truncated_pem(w.csr_pem),
}
# JSON values of the wrong type for a string member.
JSON_TYPES: dict[str, Any] = {
    "number": 42,
    "list": ["-----BEGIN CERTIFICATE REQUEST-----"],
    "object": {"pem": "x"},
    "null": None,
    "true": True,
}
# Private keys that do not fit the certificate.
BAD_KEYS: dict[str, Callable[[World], str]] = {
    "garbage-key": lambda w: "not a key",
    "certificate-as-key": lambda w: w.leaf_pem,
    "truncated-key": lambda w: _truncated_pem(w.leaf_key_pem),
    "mismatched-key": lambda w: certfiles.key_pem(certfiles.new_key()),
    "unsupported-dsa-key": lambda w: _dsa_key_pem(),
    "oversize-key": lambda w: w.leaf_key_pem * (OVERSIZE // len(w.leaf_key_pem) + 1),
}


def _p12(key: Any, cert: Any, cas: list[Any] | None, password: bytes) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"x", key, cert, cas, serialization.BestAvailableEncryption(password)
    )


def _p12_parts(w: World) -> tuple[Any, Any]:
    return keys.load_private_key(w.leaf_key_pem.encode()), export.load_certificates(w.leaf_pem)[0]


# (file bytes, password) uploads for the import form.
BAD_PKCS12: dict[str, Callable[[World], tuple[bytes, str]]] = {
    "random-bytes": lambda w: (os.urandom(2000), "password1"),
    "empty-file": lambda w: (b"", "password1"),
    "wrong-password": lambda w: (_p12(*_p12_parts(w), None, b"right-pass"), "wrong-pass"),
    "truncated": lambda w: (_p12(*_p12_parts(w), None, b"right-pass")[:300], "right-pass"),
    "key-only": lambda w: (_p12(_p12_parts(w)[0], None, None, b"right-pass"), "right-pass"),
    "ca-certs-only": lambda w: (
        _p12(None, None, [_p12_parts(w)[1]], b"right-pass"),
        "right-pass",
    ),
    "pem-instead": lambda w: (w.leaf_pem.encode(), "right-pass"),
    "oversize": lambda w: (os.urandom(OVERSIZE), "right-pass"),
}


# --- Endpoints ----------------------------------------------------------------------------


def web_import(w: World, certificate_pem: str, private_key_pem: str = "") -> Any:
    url = reverse("issuance:import", args=[w.application.name])
    return w.web.post(url, {"certificate_pem": certificate_pem, "private_key_pem": private_key_pem})


def web_import_pkcs12(w: World, data: bytes, password: str) -> Any:
    url = reverse("issuance:import", args=[w.application.name])
    upload = SimpleUploadedFile("bundle.p12", data, "application/x-pkcs12")
    return w.web.post(url, {"pkcs12": upload, "password": password})


def web_issue(w: World, csr: str) -> Any:
    url = reverse("issuance:issue", args=[w.application.name])
    return w.web.post(url, {"profile": "tls-server", "mode": "csr", "csr": csr})


def web_renew(w: World, csr: str) -> Any:
    url = reverse("issuance:renew", args=[w.application.name, w.held.pk])
    return w.web.post(url, {"key": "csr", "csr": csr})


def _api_url(w: World, suffix: str = "") -> str:
    return f"/api/v1/applications/{w.application.name}/certificates/{suffix}"


def api_issue(w: World, csr: Any) -> Any:
    return w.api.post(_api_url(w), {"profile": "tls-server", "csr": csr}, format="json")


def api_renew(w: World, csr: Any) -> Any:
    url = _api_url(w, f"{w.held.pk}/renew/")
    return w.api.post(url, {"key": "csr", "csr": csr}, format="json")


def ca_import(w: World, certificate_pem: str, private_key_pem: str) -> Any:
    data = {
        "name": "Swept CA",
        "slug": "swept-ca",
        "certificate_pem": certificate_pem,
        "private_key_pem": private_key_pem,
    }
    return w.admin.post(reverse("profiles:ca-import"), data)


def ca_install(w: World, certificate_pem: str) -> Any:
    url = reverse("profiles:ca-install", args=[w.external_ca.slug])
    return w.admin.post(url, {"certificate_pem": certificate_pem})


def _ca_name() -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outside CA")])


def _ca_bundle(w: World) -> tuple[str, str]:
    """A CA certificate and its key made outside the portal, for the CA import form."""
    key = certfiles.new_key()
    cert, _ = certfiles.build(_ca_name(), key, subject_key=key, ca=True)
    return certfiles.pem(cert), certfiles.key_pem(key)


# --- The sweep ----------------------------------------------------------------------------


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (
            Certificate,
            CertificateRequest,
            CertificateAuthority,
            AuditEvent,
            OutboxEvent,
        )
    )


def _refused(w: World, send: Callable[[], Any], *, api: bool = False) -> Any:
    before = _counts()
    response = send()
    assert response.status_code == 400, response.content.decode(errors="replace")[-1500:]
    assert _counts() == before, "a refused upload wrote a row"
    if api:
        body = response.json()
        assert set(body) == {"code", "message", "errors"} and body["errors"], body
    else:
        assert b"errorlist" in response.content or b"error" in response.content
    return response


CERT_FIELD_CASES = {**TEXT, **BAD_CERTS}


@pytest.mark.parametrize("case", sorted(CERT_FIELD_CASES))
def test_web_import_refuses_malformed_certificate(world: World, case: str) -> None:
    _refused(world, lambda: web_import(world, CERT_FIELD_CASES[case](world)))


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_web_import_refuses_bad_private_key(world: World, case: str) -> None:
    _refused(world, lambda: web_import(world, world.leaf_pem, BAD_KEYS[case](world)))


@pytest.mark.parametrize("case", sorted(BAD_PKCS12))
def test_web_import_refuses_bad_pkcs12(world: World, case: str) -> None:
    data, password = BAD_PKCS12[case](world)
    _refused(world, lambda: web_import_pkcs12(world, data, password))


def test_web_import_refuses_pem_and_pkcs12_together(world: World) -> None:
    url = reverse("issuance:import", args=[world.application.name])
    data, password = _p12(*_p12_parts(world), None, b"right-pass"), "right-pass"
    upload = SimpleUploadedFile("bundle.p12", data)
    _refused(
        world,
        lambda: world.web.post(
            url, {"certificate_pem": world.leaf_pem, "pkcs12": upload, "password": password}
        ),
    )


def test_web_import_of_a_ca_certificate_is_kept_external(world: World) -> None:
    """A CA certificate is not malformed, but never a certificate the CA's CRL covers."""
    response = web_import(world, world.root.certificate_pem)
    assert response.status_code == 302
    assert Certificate.objects.get(method="import").ca_id is None


CSR_CASES = {**TEXT, **NOT_CSR}


@pytest.mark.parametrize("case", sorted(CSR_CASES))
def test_web_issue_refuses_malformed_csr(world: World, case: str) -> None:
    _refused(world, lambda: web_issue(world, CSR_CASES[case](world)))


@pytest.mark.parametrize("case", sorted(CSR_CASES))
def test_web_renew_refuses_malformed_csr(world: World, case: str) -> None:
    _refused(world, lambda: web_renew(world, CSR_CASES[case](world)))


def _constant(value: Any) -> Callable[[World], Any]:
    return lambda w: value


API_CSR_CASES: dict[str, Callable[[World], Any]] = {
    **CSR_CASES,
    **{f"json-{name}": _constant(value) for name, value in JSON_TYPES.items()},
}


@pytest.mark.parametrize("case", sorted(API_CSR_CASES))
def test_api_issue_refuses_malformed_csr(world: World, case: str) -> None:
    _refused(world, lambda: api_issue(world, API_CSR_CASES[case](world)), api=True)


@pytest.mark.parametrize("case", sorted(API_CSR_CASES))
def test_api_renew_refuses_malformed_csr(world: World, case: str) -> None:
    _refused(world, lambda: api_renew(world, API_CSR_CASES[case](world)), api=True)


@pytest.mark.parametrize("case", sorted({**CERT_FIELD_CASES, "leaf-not-ca": None}))
def test_ca_import_refuses_malformed_certificate(world: World, case: str) -> None:
    _ca_pem, key_pem = _ca_bundle(world)
    value = world.leaf_pem if case == "leaf-not-ca" else CERT_FIELD_CASES[case](world)
    if case == "leaf-not-ca":
        key_pem = world.leaf_key_pem
    _refused(world, lambda: ca_import(world, value, key_pem))


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_ca_import_refuses_bad_private_key(world: World, case: str) -> None:
    ca_pem, _key_pem = _ca_bundle(world)
    _refused(world, lambda: ca_import(world, ca_pem, BAD_KEYS[case](world)))


def _for_external_ca(w: World, *, serial: int | None = None, duplicate: bool = False,
                     common_name: str = "Ext CA") -> str:  # fmt: skip
    """A CA certificate for the external CA's own key, with one defect."""
    key = w.external_ca.load_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signer = certfiles.new_key()
    cert, _ = certfiles.build(_ca_name(), signer, subject_key=key, ca=True, common_name=common_name)

    def change(tbs: Any) -> None:
        if serial is not None:
            tbs["serial_number"] = serial
        if duplicate:
            extensions = tbs["extensions"]
            extensions.append(extensions[-1].copy())
            tbs["extensions"] = extensions

    return certfiles.der_to_pem(certfiles.resigned(cert, signer, change))


INSTALL_CASES: dict[str, Callable[[World], str]] = {
    **CERT_FIELD_CASES,
    "leaf-not-ca": lambda w: w.leaf_pem,
    "ca-of-another-key": lambda w: _ca_bundle(w)[0],
    "own-key-duplicate-extension": lambda w: _for_external_ca(w, duplicate=True),
    "own-key-overlong-serial": lambda w: _for_external_ca(w, serial=2**300),
    "own-key-negative-serial": lambda w: _for_external_ca(w, serial=-7),
    "own-key-overlong-subject": lambda w: _for_external_ca(w, common_name="x" * 600),
}


@pytest.mark.parametrize("case", sorted(INSTALL_CASES))
def test_ca_install_refuses_malformed_certificate(world: World, case: str) -> None:
    _refused(world, lambda: ca_install(world, INSTALL_CASES[case](world)))


def test_ca_install_accepts_the_well_formed_control(world: World) -> None:
    """The defect is what the cases above are refused for: the same shape installs."""
    response = ca_install(world, _for_external_ca(world))
    assert response.status_code == 302, response.content.decode()[-1500:]


def test_ca_import_accepts_the_well_formed_control(world: World) -> None:
    response = ca_import(world, *_ca_bundle(world))
    assert response.status_code == 302, response.content.decode()[-1500:]
