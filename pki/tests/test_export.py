import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from pki.errors import DecodeError, KeyMismatch
from pki.export import (
    MAX_BUNDLE_BYTES,
    der,
    load_certificates,
    load_pkcs12,
    pem,
    pem_chain,
    to_pkcs12,
)
from pki.keys import generate_private_key, keys_match

from .conftest import Hierarchy, OpenSSL


def test_pem_and_der_roundtrip(ec_hierarchy: Hierarchy) -> None:
    cert = ec_hierarchy.inter
    text = pem(cert)
    assert text.startswith("-----BEGIN CERTIFICATE-----\n") and text.endswith(
        "-----END CERTIFICATE-----\n"
    )
    assert load_certificates(text) == [cert]
    assert load_certificates(der(cert)) == [cert]
    assert der(cert)[:1] == b"\x30"


def test_pem_chain_bundle(ec_hierarchy: Hierarchy) -> None:
    chain = [ec_hierarchy.inter, ec_hierarchy.root]
    bundle = pem_chain(chain)
    assert bundle.count("BEGIN CERTIFICATE") == 2
    assert load_certificates(bundle) == chain
    # Text around the blocks (as in many .pem files with "subject=" lines) is tolerated.
    assert load_certificates(b"subject=CN=x\n" + bundle.encode() + b"\n\n") == chain


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "   ",
        b"garbage",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\x30\x82\x01\x00truncated",
        b"A" * (MAX_BUNDLE_BYTES + 1),
    ],
    ids=["empty", "blank", "text", "bad-pem", "bad-der", "oversize"],
)
def test_load_certificates_rejects(data: bytes | str) -> None:
    with pytest.raises(DecodeError) as excinfo:
        load_certificates(data)
    assert excinfo.value.code == "malformed"


def test_pkcs12_roundtrip(ec_hierarchy: Hierarchy) -> None:
    key = generate_private_key("EC_P256")
    leaf = ec_hierarchy.leaf(key, "p12.example.test")
    chain = [ec_hierarchy.inter, ec_hierarchy.root]
    data = to_pkcs12(leaf, key, chain, b"hunter2", friendly_name=b"my cert")
    loaded_key, loaded_cert, loaded_chain = load_pkcs12(data, b"hunter2")
    assert loaded_cert == leaf
    assert loaded_key is not None and keys_match(loaded_key, leaf)
    assert loaded_chain == chain
    parsed = pkcs12.load_pkcs12(data, b"hunter2")
    assert parsed.cert is not None and parsed.cert.friendly_name == b"my cert"


def test_pkcs12_errors(ec_hierarchy: Hierarchy) -> None:
    key = generate_private_key("EC_P256")
    leaf = ec_hierarchy.leaf(key, "p12.example.test")
    data = to_pkcs12(leaf, key, [], b"right")
    for password in (b"wrong", None):
        with pytest.raises(DecodeError, match="wrong password or corrupt data"):
            load_pkcs12(data, password)
    for garbage in (b"", b"garbage", data[: len(data) // 2]):
        with pytest.raises(DecodeError):
            load_pkcs12(garbage, b"right")
    with pytest.raises(KeyMismatch):
        to_pkcs12(leaf, generate_private_key("EC_P256"), [], b"pw")
    with pytest.raises(ValueError, match="password is required"):
        to_pkcs12(leaf, key, [], b"")


@pytest.mark.interop
@pytest.mark.parametrize("leaf_alg", ["EC_P384", "ED25519"])
def test_openssl_reads_pkcs12_without_legacy(
    hierarchy: Hierarchy, leaf_alg: str, openssl: OpenSSL
) -> None:
    key = generate_private_key(leaf_alg)
    leaf = hierarchy.leaf(key, "p12.example.test")
    data = to_pkcs12(
        leaf, key, [hierarchy.inter, hierarchy.root], b"s3cret pw", friendly_name=b"portal"
    )
    path = openssl.write("bundle.p12", data)
    result = openssl.run("pkcs12", "-info", "-nokeys", "-in", path, "-passin", "pass:s3cret pw")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "MAC: sha256" in output
    assert "PBES2, PBKDF2, AES-256-CBC" in output
    assert "friendlyName: portal" in output
    certs = x509.load_pem_x509_certificates(result.stdout.encode())
    assert certs[0] == leaf and set(certs[1:]) == {hierarchy.inter, hierarchy.root}
    wrong = openssl.run("pkcs12", "-info", "-nokeys", "-in", path, "-passin", "pass:nope")
    assert wrong.returncode != 0
    # The key bag must decrypt with the same password (no -legacy provider needed).
    with_key = openssl.run("pkcs12", "-in", path, "-passin", "pass:s3cret pw", "-nocerts", "-nodes")
    assert with_key.returncode == 0, with_key.stderr
    assert "BEGIN PRIVATE KEY" in with_key.stdout
