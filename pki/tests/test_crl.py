import time
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.crl import REVOCATION_REASONS, RevokedEntry, build_crl, reason_flag
from pki.keys import generate_private_key

from .conftest import Hierarchy, OpenSSL, utcnow


def _crl(hierarchy: Hierarchy, entries: list[RevokedEntry], number: int = 7):
    now = utcnow()
    return build_crl(
        hierarchy.issuer,
        entries,
        crl_number=number,
        this_update=now - timedelta(minutes=5),
        next_update=now + timedelta(days=1),
    )


def test_crl_contents(hierarchy: Hierarchy) -> None:
    now = utcnow()
    entries = [
        RevokedEntry(0x10, now - timedelta(hours=1), "keyCompromise"),
        RevokedEntry(0x11, now - timedelta(hours=2), None),
        RevokedEntry(0x12, now - timedelta(hours=3), "unspecified"),
        RevokedEntry(0x13, now - timedelta(hours=4), "certificateHold"),
    ]
    crl = _crl(hierarchy, entries, number=42)
    assert crl.issuer == hierarchy.inter.subject
    assert crl.is_signature_valid(hierarchy.inter.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = hierarchy.inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert len(crl) == 4

    def reason(serial: int) -> x509.ReasonFlags | None:
        entry = crl.get_revoked_certificate_by_serial_number(serial)
        assert entry is not None
        try:
            return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            return None

    assert reason(0x10) is x509.ReasonFlags.key_compromise
    assert reason(0x11) is None
    assert reason(0x12) is None  # RFC 5280: unspecified SHOULD be absent
    assert reason(0x13) is x509.ReasonFlags.certificate_hold
    revoked = crl.get_revoked_certificate_by_serial_number(0x10)
    assert revoked is not None
    assert revoked.revocation_date_utc == entries[0].revoked_at


def test_reason_names() -> None:
    assert set(REVOCATION_REASONS) == {
        "unspecified",
        "keyCompromise",
        "cACompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "certificateHold",
        "privilegeWithdrawn",
        "aACompromise",
    }
    assert reason_flag("superseded") is x509.ReasonFlags.superseded
    with pytest.raises(ValueError, match="Unknown revocation reason 'removeFromCRL'"):
        reason_flag("removeFromCRL")


def test_unknown_reason_in_entries_raises(ec_hierarchy: Hierarchy) -> None:
    with pytest.raises(ValueError, match="Unknown revocation reason 'stolen'"):
        _crl(ec_hierarchy, [RevokedEntry(1, utcnow(), "stolen")])


def test_empty_crl(ec_hierarchy: Hierarchy) -> None:
    crl = _crl(ec_hierarchy, [])
    assert len(crl) == 0
    assert crl.is_signature_valid(ec_hierarchy.inter.public_key())


def test_hundred_thousand_entries_fast(ec_hierarchy: Hierarchy) -> None:
    now = utcnow()
    entries = (RevokedEntry(1000 + i, now, "superseded" if i % 2 else None) for i in range(100_000))
    started = time.perf_counter()
    crl = _crl(ec_hierarchy, list(entries))
    elapsed = time.perf_counter() - started
    assert len(crl) == 100_000
    assert elapsed < 5, f"100k-entry CRL took {elapsed:.2f}s"


@pytest.mark.interop
def test_openssl_crl_check(hierarchy: Hierarchy, openssl: OpenSSL) -> None:
    revoked_leaf = hierarchy.leaf(generate_private_key("EC_P256"), "revoked.example.test")
    good_leaf = hierarchy.leaf(generate_private_key("EC_P256"), "good.example.test")
    now = utcnow()
    crl = _crl(
        hierarchy,
        [RevokedEntry(revoked_leaf.serial_number, now - timedelta(minutes=1), "keyCompromise")],
    )
    # OpenSSL's -crl_check needs the CRL of the leaf's issuer; -crl_check_all would need the root's.
    crl_path = openssl.write("crl.pem", crl.public_bytes(serialization.Encoding.PEM))
    text = openssl.run("crl", "-in", crl_path, "-noout", "-text")
    assert text.returncode == 0, text.stderr
    assert "Key Compromise" in text.stdout
    assert "X509v3 CRL Number" in text.stdout

    ok = openssl.verify(
        hierarchy.root, [hierarchy.inter], good_leaf, "-crl_check", "-CRLfile", crl_path
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = openssl.verify(
        hierarchy.root, [hierarchy.inter], revoked_leaf, "-crl_check", "-CRLfile", crl_path
    )
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr
