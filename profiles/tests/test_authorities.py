"""Certificate authorities: internal root/intermediate, import, externally signed, KEK."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.core.management import call_command
from django.utils import timezone

from certportal.secrets import SecretError, keyring, unseal_for
from pki import certs, export, keys, names
from pki import csr as pki_csr
from profiles.choices import CAKind, CAStatus
from profiles.models import CertificateAuthority
from profiles.services import (
    CAError,
    create_external_ca,
    import_ca,
    install_external_certificate,
)

pytestmark = pytest.mark.django_db


def test_root_and_intermediate_are_chained(root_ca, issuing_ca):
    assert root_ca.kind == CAKind.ROOT and issuing_ca.kind == CAKind.INTERMEDIATE
    chain = issuing_ca.chain()
    assert [c.subject for c in chain] == [
        issuing_ca.certificate().subject,
        root_ca.certificate().subject,
    ]
    assert certs.verify_issued_by(issuing_ca.certificate(), root_ca.certificate())
    bc = issuing_ca.certificate().extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0


def test_ca_key_is_sealed_at_rest(root_ca):
    raw = CertificateAuthority.objects.values_list("private_key", flat=True).get(pk=root_ca.pk)
    assert raw.startswith(f"v2:{keyring().current_id}:")
    assert "PRIVATE KEY" not in raw
    assert b"PRIVATE KEY" in unseal_for(root_ca, "private_key")


def test_import_ca_with_matching_key(actor):
    key = keys.generate_private_key("EC_P256")
    now = timezone.now()
    cert = certs.build_root_ca(
        key, names.build_name("Imported Root"), not_before=now, not_after=now + timedelta(days=365)
    )
    ca = import_ca(
        name="Imported",
        slug="imported",
        certificate_pem=export.pem(cert),
        private_key_pem=keys.private_key_to_pem(key),
        actor=actor,
    )
    assert ca.kind == CAKind.IMPORTED and ca.status == CAStatus.ACTIVE
    assert ca.fingerprint_sha256 == certs.fingerprint_sha256(cert)


def test_import_ca_refuses_mismatched_key(actor):
    now = timezone.now()
    cert = certs.build_root_ca(
        keys.generate_private_key("EC_P256"),
        names.build_name("Root"),
        not_before=now,
        not_after=now + timedelta(days=365),
    )
    other = keys.generate_private_key("EC_P256")
    with pytest.raises(CAError, match="does not match"):
        import_ca(
            name="Bad",
            slug="bad",
            certificate_pem=export.pem(cert),
            private_key_pem=keys.private_key_to_pem(other),
            actor=actor,
        )
    assert not CertificateAuthority.objects.filter(slug="bad").exists()


def test_import_ca_refuses_garbage(actor):
    with pytest.raises(CAError):
        import_ca(
            name="Bad",
            slug="bad",
            certificate_pem="not a cert",
            private_key_pem=b"nope",
            actor=actor,
        )
    assert not CertificateAuthority.objects.filter(slug="bad").exists()


def _sign_external(csr_pem: str, *, wrong_key: bool = False) -> tuple[str, x509.Certificate]:
    """Play the external CA: sign the CSR's key with a CA of our own outside the portal."""
    ext_key = keys.generate_private_key("EC_P384")
    now = timezone.now()
    ext_root = certs.build_root_ca(
        ext_key,
        names.build_name("External Root"),
        not_before=now,
        not_after=now + timedelta(days=3650),
    )
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    public = pki_csr.parse_csr(csr_pem).public_key
    if wrong_key:
        public = keys.generate_private_key("EC_P256").public_key()
    issued = certs.build_intermediate_ca(
        certs.Issuer(certificate=ext_root, private_key=ext_key),
        public,
        csr.subject,
        not_before=now,
        not_after=now + timedelta(days=365),
    )
    return export.pem_chain([issued, ext_root]), ext_root


def test_external_ca_flow_installs_signed_certificate(actor, make_csr):
    from profiles.services import CASpec, CASubject

    ca = create_external_ca(
        CASpec(name="Ext", slug="ext", subject=CASubject("Ext Issuing")), actor=actor
    )
    assert ca.status == CAStatus.PENDING_CERTIFICATE and "CERTIFICATE REQUEST" in ca.csr_pem
    assert not ca.is_usable
    bundle, ext_root = _sign_external(ca.csr_pem)
    ca = install_external_certificate(ca, bundle, actor=actor)
    assert ca.status == CAStatus.ACTIVE
    assert ca.chain()[-1].fingerprint(certs.hashes.SHA256()) == ext_root.fingerprint(
        certs.hashes.SHA256()
    )


def test_external_ca_refuses_certificate_for_another_key(actor):
    from profiles.services import CASpec, CASubject

    ca = create_external_ca(
        CASpec(name="Ext", slug="ext", subject=CASubject("Ext Issuing")), actor=actor
    )
    bundle, _ = _sign_external(ca.csr_pem, wrong_key=True)
    with pytest.raises(CAError, match="does not match"):
        install_external_certificate(ca, bundle, actor=actor)
    ca.refresh_from_db()
    assert ca.status == CAStatus.PENDING_CERTIFICATE and not ca.certificate_pem


def test_rotate_kek_reseals_every_secret(root_ca, settings):
    old = settings.CERTPORTAL_KEK
    before = unseal_for(root_ca, "private_key")
    import base64
    import os

    settings.CERTPORTAL_KEK = base64.b64encode(os.urandom(32)).decode()
    settings.CERTPORTAL_KEK_PREVIOUS = [old]
    call_command("rotate_kek", stdout=open(os.devnull, "w"))  # noqa: SIM115
    root_ca.refresh_from_db()
    assert root_ca.private_key.startswith(f"v2:{keyring().current_id}:")
    settings.CERTPORTAL_KEK_PREVIOUS = []
    assert unseal_for(root_ca, "private_key") == before
    settings.CERTPORTAL_KEK = old
    with pytest.raises(SecretError):
        unseal_for(root_ca, "private_key")


def test_csr_of_external_ca_carries_its_subject(actor):
    from profiles.services import CASpec, CASubject

    ca = create_external_ca(
        CASpec(name="Ext", slug="ext", subject=CASubject("Ext Issuing", "Org")), actor=actor
    )
    csr = x509.load_pem_x509_csr(ca.csr_pem.encode())
    assert csr.is_signature_valid
    assert names.name_to_string(csr.subject) == "CN=Ext Issuing,O=Org"
    assert csr.public_bytes(Encoding.PEM).decode() == ca.csr_pem
