import ipaddress
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from pki.certs import (
    EKU_NAMES,
    KEY_USAGE_NAMES,
    Issuer,
    build_intermediate_ca,
    build_leaf,
    build_ocsp_signer,
    build_root_ca,
    describe_certificate,
    fingerprint_sha256,
    parse_eku,
    random_serial,
    serial_hex,
    verify_issued_by,
)
from pki.errors import KeyMismatch
from pki.keys import PrivateKey, generate_private_key
from pki.names import build_name, first_common_name
from pki.policy import Decision

from .conftest import Hierarchy, OpenSSL, utcnow


def ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def manual_decision(
    *names: str,
    subject: x509.Name | None = None,
    usages=("digitalSignature", "keyEncipherment"),
    **kw,
) -> Decision:
    now = utcnow()
    return Decision(
        subject=subject if subject is not None else build_name(names[0] if names else None),
        common_name=names[0] if names else None,
        dns_names=names,
        ip_addresses=kw.get("ips", ()),
        emails=kw.get("emails", ()),
        uris=kw.get("uris", ()),
        not_before=now - timedelta(seconds=60),
        not_after=now + timedelta(days=30),
        key_usages=tuple(usages),
        extended_key_usages=kw.get("ekus", ("serverAuth",)),
    )


# --------------------------------------------------------------------------- openssl interop


@pytest.mark.interop
@pytest.mark.parametrize("leaf_alg", ["EC_P256", "ED25519"])
def test_openssl_verifies_leaf_chain(hierarchy: Hierarchy, leaf_alg: str, openssl: OpenSSL) -> None:
    leaf = hierarchy.leaf(generate_private_key(leaf_alg), "app.example.test", "www.example.test")
    result = openssl.verify(
        hierarchy.root,
        [hierarchy.inter],
        leaf,
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-verify_hostname",
        "www.example.test",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip().endswith(": OK")


@pytest.mark.interop
def test_openssl_verifies_rsa_leaf_under_ec_ca(
    ec_hierarchy: Hierarchy, rsa_key, openssl: OpenSSL
) -> None:
    leaf = ec_hierarchy.leaf(rsa_key, "rsa.example.test")
    result = openssl.verify(ec_hierarchy.root, [ec_hierarchy.inter], leaf, "-x509_strict")
    assert result.returncode == 0, result.stderr


@pytest.mark.interop
def test_openssl_rejects_wrong_root_and_wrong_hostname(
    ec_hierarchy: Hierarchy, openssl: OpenSSL
) -> None:
    from .conftest import hierarchy_for

    leaf = ec_hierarchy.leaf(generate_private_key("EC_P256"), "app.example.test")
    other_root = hierarchy_for("ED25519").root
    assert openssl.verify(other_root, [ec_hierarchy.inter], leaf).returncode != 0
    wrong_host = openssl.verify(
        ec_hierarchy.root, [ec_hierarchy.inter], leaf, "-verify_hostname", "evil.test"
    )
    assert wrong_host.returncode != 0
    assert "hostname mismatch" in wrong_host.stdout + wrong_host.stderr


@pytest.mark.interop
def test_openssl_enforces_name_constraints(openssl: OpenSSL) -> None:
    now = utcnow()
    key = generate_private_key("EC_P256")
    root = build_root_ca(
        key,
        build_name("Constrained Root"),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=30),
        permitted_dns=["example.test"],
        excluded_dns=["secret.example.test"],
    )
    constraints = ext(root, x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [x509.DNSName("example.test")]
    issuer = Issuer(root, key)
    leaf_key = generate_private_key("EC_P256").public_key()
    good = build_leaf(issuer, leaf_key, manual_decision("a.example.test"))
    assert openssl.verify(root, [], good).returncode == 0
    for bad_name in ("evil.test", "x.secret.example.test"):
        bad = build_leaf(issuer, leaf_key, manual_decision(bad_name))
        result = openssl.verify(root, [], bad)
        assert result.returncode != 0
        assert "subtree violation" in result.stdout + result.stderr


# --------------------------------------------------------------------------- CA certificates


def test_root_ca_extensions(hierarchy: Hierarchy) -> None:
    root = hierarchy.root
    assert root.issuer == root.subject
    basic = ext(root, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 1
    usage = ext(root, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign and usage.value.digital_signature
    ski = ext(root, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(hierarchy.root_key.public_key())
    assert ext(root, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    assert verify_issued_by(root, root)
    with pytest.raises(x509.ExtensionNotFound):
        ext(root, x509.NameConstraints)


def test_intermediate_ca_extensions(hierarchy: Hierarchy) -> None:
    inter = hierarchy.inter
    assert inter.issuer == hierarchy.root.subject
    basic = ext(inter, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    root_ski = ext(hierarchy.root, x509.SubjectKeyIdentifier).value
    assert ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski.digest
    assert verify_issued_by(inter, hierarchy.root)
    assert not verify_issued_by(hierarchy.root, inter)
    # The root Issuer had no URLs, so nothing is advertised.
    with pytest.raises(x509.ExtensionNotFound):
        ext(inter, x509.CRLDistributionPoints)


def _root(key: PrivateKey, path_length: int | None, days: int = 30) -> x509.Certificate:
    now = utcnow()
    return build_root_ca(
        key,
        build_name("Root"),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=days),
        path_length=path_length,
    )


def test_intermediate_path_length_rules() -> None:
    key = generate_private_key("EC_P256")
    sub_key = generate_private_key("EC_P256").public_key()
    now = utcnow()

    def child_path_length(root_path_length: int | None, requested: int | None) -> int | None:
        issuer = Issuer(_root(key, root_path_length), key)
        cert = build_intermediate_ca(
            issuer,
            sub_key,
            build_name("Sub"),
            path_length=requested,
            not_before=now,
            not_after=now + timedelta(days=10),
        )
        return ext(cert, x509.BasicConstraints).value.path_length

    assert child_path_length(None, None) is None
    assert child_path_length(None, 3) == 3
    assert child_path_length(2, None) == 1  # clamped below the issuer's limit
    assert child_path_length(2, 5) == 1
    assert child_path_length(2, 0) == 0
    with pytest.raises(ValueError, match="path length"):
        child_path_length(0, 0)


def test_intermediate_under_leaf_is_refused(ec_hierarchy: Hierarchy) -> None:
    leaf_key = generate_private_key("EC_P256")
    leaf = ec_hierarchy.leaf(leaf_key, "a.example.test")
    now = utcnow()
    with pytest.raises(ValueError, match="not a CA"):
        build_intermediate_ca(
            Issuer(leaf, leaf_key),
            generate_private_key("EC_P256").public_key(),
            build_name("x"),
            not_before=now,
            not_after=now + timedelta(days=1),
        )


def test_intermediate_not_after_clamped_to_issuer() -> None:
    key = generate_private_key("EC_P256")
    root = _root(key, None, days=10)
    now = utcnow()
    inter = build_intermediate_ca(
        Issuer(root, key),
        generate_private_key("EC_P256").public_key(),
        build_name("Sub"),
        not_before=now,
        not_after=now + timedelta(days=100),
        permitted_dns=[".example.test"],
    )
    assert inter.not_valid_after_utc == root.not_valid_after_utc
    assert ext(inter, x509.NameConstraints).value.permitted_subtrees == [
        x509.DNSName(".example.test")
    ]


def test_issuer_rejects_mismatched_key(ec_hierarchy: Hierarchy) -> None:
    with pytest.raises(KeyMismatch) as excinfo:
        Issuer(ec_hierarchy.inter, ec_hierarchy.root_key)
    assert excinfo.value.code == "key_mismatch"


def test_aki_from_public_key_when_issuer_lacks_ski() -> None:
    key = generate_private_key("EC_P256")
    now = utcnow()
    name = build_name("Old Root")
    legacy_root = (
        x509.CertificateBuilder()
        .issuer_name(name)
        .subject_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf = build_leaf(Issuer(legacy_root, key), key.public_key(), manual_decision("a.example.test"))
    expected = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    assert ext(leaf, x509.AuthorityKeyIdentifier).value == expected


# --------------------------------------------------------------------------- leaves


def test_leaf_extensions(hierarchy: Hierarchy) -> None:
    leaf_key = generate_private_key("EC_P256")
    decision = manual_decision(
        "app.example.test",
        "www.example.test",
        ips=(ipaddress.ip_address("10.0.0.1"),),
        emails=("ops@example.test",),
        uris=("spiffe://example.test/app",),
        ekus=("serverAuth", "clientAuth"),
    )
    leaf = build_leaf(hierarchy.issuer, leaf_key.public_key(), decision, serial=0x1234)
    assert leaf.serial_number == 0x1234
    assert leaf.subject == decision.subject
    assert leaf.issuer == hierarchy.inter.subject
    assert leaf.not_valid_before_utc == decision.not_before
    assert leaf.not_valid_after_utc == decision.not_after
    basic = ext(leaf, x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = ext(leaf, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_encipherment  # dropped: EC keys cannot encrypt
    eku = ext(leaf, x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    san = ext(leaf, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.DNSName) == ["app.example.test", "www.example.test"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    assert san.value.get_values_for_type(x509.RFC822Name) == ["ops@example.test"]
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://example.test/app"
    ]
    assert ext(leaf, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        leaf_key.public_key()
    )
    inter_ski = ext(hierarchy.inter, x509.SubjectKeyIdentifier).value
    assert ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == inter_ski.digest
    crl_dp = ext(leaf, x509.CRLDistributionPoints).value
    assert crl_dp[0].full_name == [
        x509.UniformResourceIdentifier("http://pki.example.test/crl/inter.crl")
    ]
    aia = {
        (d.access_method, d.access_location.value)
        for d in ext(leaf, x509.AuthorityInformationAccess).value
    }
    assert aia == {
        (AuthorityInformationAccessOID.OCSP, "http://pki.example.test/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, "http://pki.example.test/ca/inter.der"),
    }
    assert verify_issued_by(leaf, hierarchy.inter)
    assert not verify_issued_by(leaf, hierarchy.root)


def test_leaf_signature_hash_follows_issuer(hierarchy: Hierarchy) -> None:
    leaf = hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    expected = {"RSA": "sha256", "P-256": "sha256", "P-384": "sha384"}
    info = describe_certificate(hierarchy.inter).key_info
    algorithm = leaf.signature_hash_algorithm
    if info.family == "ED25519":
        assert algorithm is None
    else:
        assert algorithm is not None
        assert algorithm.name == expected[info.curve or info.family]


def test_key_usage_filtered_per_key_type(ec_hierarchy: Hierarchy, rsa_key) -> None:
    usages = (
        "digitalSignature",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "encipherOnly",
    )
    decision = manual_decision("a.example.test", usages=usages)

    def usage_of(key: PrivateKey) -> x509.KeyUsage:
        leaf = build_leaf(ec_hierarchy.issuer, key.public_key(), decision)
        return ext(leaf, x509.KeyUsage).value

    rsa_usage = usage_of(rsa_key)
    assert rsa_usage.key_encipherment and rsa_usage.data_encipherment and rsa_usage.key_agreement
    assert rsa_usage.encipher_only
    assert not rsa_usage.key_cert_sign  # never on a leaf
    ec_usage = usage_of(generate_private_key("EC_P256"))
    assert (
        ec_usage.key_agreement and not ec_usage.key_encipherment and not ec_usage.data_encipherment
    )
    ed_usage = usage_of(generate_private_key("ED25519"))
    assert ed_usage.digital_signature
    assert not (ed_usage.key_agreement or ed_usage.key_encipherment)
    # encipherOnly is meaningless without keyAgreement, which Ed25519 lost.
    with pytest.raises(ValueError):
        _ = ed_usage.encipher_only


def test_key_usage_omitted_when_nothing_left(ec_hierarchy: Hierarchy) -> None:
    decision = manual_decision("a.example.test", usages=("keyEncipherment",), ekus=())
    leaf = build_leaf(ec_hierarchy.issuer, generate_private_key("EC_P256").public_key(), decision)
    with pytest.raises(x509.ExtensionNotFound):
        ext(leaf, x509.KeyUsage)
    with pytest.raises(x509.ExtensionNotFound):
        ext(leaf, x509.ExtendedKeyUsage)


def test_san_critical_when_subject_empty(ec_hierarchy: Hierarchy) -> None:
    decision = manual_decision("a.example.test", subject=x509.Name([]))
    leaf = build_leaf(ec_hierarchy.issuer, generate_private_key("EC_P256").public_key(), decision)
    assert len(leaf.subject) == 0
    assert ext(leaf, x509.SubjectAlternativeName).critical


def test_issuer_without_urls_adds_no_crl_or_aia(ec_hierarchy: Hierarchy) -> None:
    issuer = Issuer(ec_hierarchy.inter, ec_hierarchy.inter_key)
    leaf = build_leaf(
        issuer, generate_private_key("EC_P256").public_key(), manual_decision("a.example.test")
    )
    for cls in (x509.CRLDistributionPoints, x509.AuthorityInformationAccess):
        with pytest.raises(x509.ExtensionNotFound):
            ext(leaf, cls)


def test_ocsp_signer(hierarchy: Hierarchy) -> None:
    now = utcnow()
    signer = build_ocsp_signer(
        hierarchy.issuer,
        generate_private_key("EC_P256").public_key(),
        not_before=now,
        not_after=now + timedelta(days=100_000),
    )
    assert list(ext(signer, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert ext(signer, x509.OCSPNoCheck)
    usage = ext(signer, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert not ext(signer, x509.BasicConstraints).value.ca
    inter_cn = first_common_name(hierarchy.inter.subject)
    assert first_common_name(signer.subject) == f"{inter_cn} OCSP Responder"
    # The rest of the issuer's DN is kept.
    assert signer.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "certportal tests"
    )
    assert signer.not_valid_after_utc == hierarchy.inter.not_valid_after_utc
    assert verify_issued_by(signer, hierarchy.inter)


# --------------------------------------------------------------------------- helpers


def test_random_serial() -> None:
    serials = {random_serial() for _ in range(200)}
    assert len(serials) == 200
    assert all(s > 0 and s.bit_length() <= 159 for s in serials)  # ≤ 20 DER octets, positive
    assert max(s.bit_length() for s in serials) > 150  # i.e. ~159 random bits, well over 64


@pytest.mark.parametrize(
    ("serial", "text"), [(1, "01"), (255, "FF"), (256, "0100"), (0xABCDE, "0ABCDE")]
)
def test_serial_hex(serial: int, text: str) -> None:
    assert serial_hex(serial) == text


def test_fingerprint(ec_hierarchy: Hierarchy) -> None:
    fp = fingerprint_sha256(ec_hierarchy.root)
    assert fp == ec_hierarchy.root.fingerprint(hashes.SHA256()).hex()
    assert len(fp) == 64 and fp == fp.lower() and ":" not in fp


def test_usage_names() -> None:
    assert KEY_USAGE_NAMES["nonRepudiation"] == KEY_USAGE_NAMES["contentCommitment"]
    assert set(EKU_NAMES) == {
        "serverAuth",
        "clientAuth",
        "codeSigning",
        "emailProtection",
        "timeStamping",
        "OCSPSigning",
    }
    assert parse_eku("OCSPSigning") == ExtendedKeyUsageOID.OCSP_SIGNING
    assert parse_eku("1.2.3.4") == x509.ObjectIdentifier("1.2.3.4")
    for bad in ("serverauth", "1.2.", "nonsense", ""):
        with pytest.raises(ValueError):
            parse_eku(bad)


SIGNATURE_NAMES = {
    "RSA": "sha256WithRSAEncryption",
    "P-256": "ecdsa-with-SHA256",
    "P-384": "ecdsa-with-SHA384",
    "ED25519": "Ed25519",
}


def test_describe_certificate(hierarchy: Hierarchy) -> None:
    leaf_key = generate_private_key("ED25519")
    decision = manual_decision(
        "app.example.test",
        ips=(ipaddress.ip_address("10.0.0.1"),),
        emails=("ops@example.test",),
        ekus=("serverAuth", "1.3.6.1.5.5.7.3.17"),
    )
    leaf = build_leaf(hierarchy.issuer, leaf_key.public_key(), decision)
    info = describe_certificate(leaf)
    assert info.subject == "CN=app.example.test"
    assert info.issuer == hierarchy.inter.subject.rfc4514_string()
    assert info.common_name == "app.example.test"
    assert info.dns_names == ("app.example.test",)
    assert info.ip_addresses == ("10.0.0.1",)
    assert info.emails == ("ops@example.test",)
    assert info.uris == ()
    assert info.serial == serial_hex(leaf.serial_number)
    assert info.not_after == decision.not_after and info.not_after.tzinfo is not None
    assert info.key_info.label() == "Ed25519"
    assert info.key_usages == ("digitalSignature",)
    assert info.extended_key_usages == ("serverAuth", "1.3.6.1.5.5.7.3.17")
    assert (info.is_ca, info.path_length) == (False, None)
    assert info.fingerprint_sha256 == fingerprint_sha256(leaf)
    assert len(info.fingerprint_sha1) == 40
    issuer_key = describe_certificate(hierarchy.inter).key_info
    assert info.signature_algorithm == SIGNATURE_NAMES[issuer_key.curve or issuer_key.family]

    root_info = describe_certificate(hierarchy.root)
    assert (root_info.is_ca, root_info.path_length) == (True, 1)
    assert root_info.key_usages == ("digitalSignature", "keyCertSign", "cRLSign")
    assert root_info.subject.startswith("CN=Test Root")


def test_describe_certificate_with_unsupported_key(ec_hierarchy: Hierarchy) -> None:
    dsa_key = dsa.generate_private_key(1024)
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .issuer_name(ec_hierarchy.inter.subject)
        .subject_name(build_name("dsa"))
        .public_key(dsa_key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(ec_hierarchy.inter_key, hashes.SHA256())
    )
    info = describe_certificate(cert)
    assert (info.key_info.family, info.key_info.bits, info.key_info.algorithm) == (
        "DSA",
        1024,
        None,
    )
    assert info.serial == "07"
