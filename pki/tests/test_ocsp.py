import dataclasses
import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp as x509_ocsp

from pki.certs import build_ocsp_signer, serial_hex
from pki.errors import DecodeError
from pki.keys import generate_private_key
from pki.ocsp import (
    MAX_OCSP_REQUEST_BYTES,
    OCSPQuery,
    build_ocsp_response,
    issuer_key_hash,
    issuer_name_hash,
    ocsp_error_response,
    parse_ocsp_request,
    query_matches_issuer,
)

from .conftest import Hierarchy, OpenSSL, utcnow


def _request_der(
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(
        leaf, issuer, algorithm or hashes.SHA1()
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _openssl_request(
    openssl: OpenSSL, hierarchy: Hierarchy, leaf: x509.Certificate, *extra: str
) -> Path:
    out = openssl.workdir / "req.der"
    result = openssl.run(
        "ocsp",
        "-issuer",
        openssl.write("inter.pem", hierarchy.inter),
        *extra,
        "-cert",
        openssl.write("leaf.pem", leaf),
        "-reqout",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    return out


def _respond(hierarchy: Hierarchy, query: OCSPQuery, status: str, **kwargs) -> bytes:
    now = utcnow()
    kwargs.setdefault("responder_cert", hierarchy.inter)
    kwargs.setdefault("responder_key", hierarchy.inter_key)
    if status == "revoked":
        kwargs.setdefault("revoked_at", now - timedelta(hours=1))
        kwargs.setdefault("reason", "keyCompromise")
    return build_ocsp_response(
        query,
        issuer_cert=hierarchy.inter,
        status=status,
        this_update=now - timedelta(minutes=1),
        next_update=now + timedelta(hours=12),
        **kwargs,
    )


# --------------------------------------------------------------------------- requests


@pytest.mark.interop
def test_parse_openssl_request(hierarchy: Hierarchy, openssl: OpenSSL) -> None:
    leaf = hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    query = parse_ocsp_request(_openssl_request(openssl, hierarchy, leaf).read_bytes())
    assert query.serial == leaf.serial_number
    assert isinstance(query.hash_algorithm, hashes.SHA1)
    assert query.issuer_name_hash == issuer_name_hash(hierarchy.inter, hashes.SHA1())
    assert query.issuer_key_hash == issuer_key_hash(hierarchy.inter, hashes.SHA1())
    assert query.nonce is not None and len(query.nonce) == 16  # OpenSSL's default nonce
    assert query_matches_issuer(query, hierarchy.inter)
    assert not query_matches_issuer(query, hierarchy.root)


@pytest.mark.interop
def test_parse_openssl_sha256_request_without_nonce(
    ec_hierarchy: Hierarchy, openssl: OpenSSL
) -> None:
    leaf = ec_hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    path = _openssl_request(openssl, ec_hierarchy, leaf, "-sha256", "-no_nonce")
    query = parse_ocsp_request(path.read_bytes())
    assert isinstance(query.hash_algorithm, hashes.SHA256)
    assert query.nonce is None
    assert query.issuer_key_hash == issuer_key_hash(ec_hierarchy.inter, hashes.SHA256())
    assert query_matches_issuer(query, ec_hierarchy.inter)


@pytest.mark.interop
def test_multi_certificate_request_is_refused(ec_hierarchy: Hierarchy, openssl: OpenSSL) -> None:
    leaf = ec_hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    path = _openssl_request(openssl, ec_hierarchy, leaf, "-cert", openssl.write("other.pem", leaf))
    with pytest.raises(DecodeError, match="exactly one") as excinfo:
        parse_ocsp_request(path.read_bytes())
    assert excinfo.value.code == "malformed"


def _raw_public_key(cert: x509.Certificate) -> bytes:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_issuer_hashes_match_rfc6960_definition(hierarchy: Hierarchy) -> None:
    # Independent computation: the BIT STRING contents are the raw key encodings above.
    cert = hierarchy.inter
    for algorithm, digest in ((hashes.SHA1(), hashlib.sha1), (hashes.SHA256(), hashlib.sha256)):
        assert issuer_key_hash(cert, algorithm) == digest(_raw_public_key(cert)).digest()
        assert issuer_name_hash(cert, algorithm) == digest(cert.subject.public_bytes()).digest()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x30\x03\x02\x01\x00",
        b"\x30" + b"\x00" * 100,
        b"A" * (MAX_OCSP_REQUEST_BYTES + 1),
    ],
    ids=["empty", "text", "wrong-der", "zeros", "oversize"],
)
def test_malformed_requests(data: bytes) -> None:
    with pytest.raises(DecodeError) as excinfo:
        parse_ocsp_request(data)
    assert excinfo.value.code == "malformed"


def test_truncated_request(ec_hierarchy: Hierarchy) -> None:
    leaf = ec_hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    der = _request_der(leaf, ec_hierarchy.inter, nonce=b"n" * 16)
    assert parse_ocsp_request(der).nonce == b"n" * 16
    for cut in range(1, len(der), 7):
        with pytest.raises(DecodeError):
            parse_ocsp_request(der[:cut])


# --------------------------------------------------------------------------- responses


@pytest.mark.interop
@pytest.mark.parametrize("status", ["good", "revoked", "unknown"])
def test_openssl_reads_response(hierarchy: Hierarchy, status: str, openssl: OpenSSL) -> None:
    leaf = hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    request_path = _openssl_request(openssl, hierarchy, leaf)
    query = parse_ocsp_request(request_path.read_bytes())
    response_path = openssl.write("resp.der", _respond(hierarchy, query, status))
    result = openssl.run(
        "ocsp",
        "-reqin", str(request_path),
        "-respin", response_path,
        "-issuer", openssl.write("inter.pem", hierarchy.inter),
        "-CAfile", openssl.write("root.pem", hierarchy.root),
        "-resp_text",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Response verify OK" in output
    # OpenSSL compares the nonces of -reqin and -respin; a missing echo would warn.
    assert "no nonce" not in output and "Nonce Verify error" not in output
    assert f"Cert Status: {status}" in output
    assert f"Serial Number: {serial_hex(leaf.serial_number)}" in output
    nonces = re.findall(r"OCSP Nonce: \n\s+([0-9A-F]+)", output)
    assert nonces and query.nonce is not None and nonces[0].endswith(query.nonce.hex().upper())
    if status == "revoked":
        assert "Revocation Reason: keyCompromise" in output


@pytest.mark.interop
def test_openssl_detects_wrong_nonce(ec_hierarchy: Hierarchy, openssl: OpenSSL) -> None:
    leaf = ec_hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    request_path = _openssl_request(openssl, ec_hierarchy, leaf)
    query = dataclasses.replace(parse_ocsp_request(request_path.read_bytes()), nonce=b"x" * 16)
    response_path = openssl.write("resp.der", _respond(ec_hierarchy, query, "good"))
    result = openssl.run(
        "ocsp", "-reqin", str(request_path), "-respin", response_path,
        "-issuer", openssl.write("inter.pem", ec_hierarchy.inter),
        "-CAfile", openssl.write("root.pem", ec_hierarchy.root),
    )  # fmt: skip
    assert "Nonce Verify error" in result.stdout + result.stderr


@pytest.mark.interop
def test_openssl_accepts_delegated_responder(hierarchy: Hierarchy, openssl: OpenSSL) -> None:
    now = utcnow()
    responder_key = generate_private_key("EC_P256")
    responder = build_ocsp_signer(
        hierarchy.issuer, responder_key.public_key(), not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=7),
    )  # fmt: skip
    leaf = hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    request_path = _openssl_request(openssl, hierarchy, leaf)
    query = parse_ocsp_request(request_path.read_bytes())
    der = _respond(
        hierarchy, query, "revoked", responder_cert=responder, responder_key=responder_key
    )
    response = x509_ocsp.load_der_ocsp_response(der)
    assert response.certificates == [responder]
    assert (
        response.responder_key_hash
        == x509.SubjectKeyIdentifier.from_public_key(responder_key.public_key()).digest
    )
    result = openssl.run(
        "ocsp", "-reqin", str(request_path), "-respin", openssl.write("resp.der", der),
        "-issuer", openssl.write("inter.pem", hierarchy.inter),
        "-CAfile", openssl.write("root.pem", hierarchy.root),
        "-resp_text",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Response verify OK" in result.stdout + result.stderr
    assert "Cert Status: revoked" in result.stdout


def test_response_fields(ec_hierarchy: Hierarchy) -> None:
    leaf = ec_hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    query = parse_ocsp_request(_request_der(leaf, ec_hierarchy.inter, algorithm=hashes.SHA256()))
    der = _respond(ec_hierarchy, query, "revoked", reason="unspecified")
    response = x509_ocsp.load_der_ocsp_response(der)
    assert response.response_status is x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None
    assert response.serial_number == leaf.serial_number
    assert isinstance(response.hash_algorithm, hashes.SHA256)
    assert response.certificates == []  # signed by the issuer itself: nothing to embed
    assert response.responder_name is None  # responder ID by key hash
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)
    inter_key = ec_hierarchy.inter.public_key()
    assert isinstance(inter_key, ec.EllipticCurvePublicKey)
    inter_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_response_argument_errors(ec_hierarchy: Hierarchy) -> None:
    leaf = ec_hierarchy.leaf(generate_private_key("EC_P256"), "a.example.test")
    query = parse_ocsp_request(_request_der(leaf, ec_hierarchy.inter))
    with pytest.raises(ValueError, match="Unknown certificate status 'fine'"):
        _respond(ec_hierarchy, query, "fine")
    with pytest.raises(ValueError, match="revoked_at"):
        _respond(ec_hierarchy, query, "revoked", revoked_at=None)


@pytest.mark.parametrize(
    ("kind", "status", "openssl_text"),
    [
        (
            "malformed_request",
            x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
            "malformedrequest (1)",
        ),
        ("internal_error", x509_ocsp.OCSPResponseStatus.INTERNAL_ERROR, "internalerror (2)"),
        ("try_later", x509_ocsp.OCSPResponseStatus.TRY_LATER, "trylater (3)"),
        ("unauthorized", x509_ocsp.OCSPResponseStatus.UNAUTHORIZED, "unauthorized (6)"),
    ],
)
def test_error_responses(kind: str, status, openssl_text: str, openssl: OpenSSL) -> None:
    der = ocsp_error_response(kind)
    assert x509_ocsp.load_der_ocsp_response(der).response_status is status
    result = openssl.run(
        "ocsp", "-respin", openssl.write("err.der", der), "-resp_text", "-noverify"
    )
    assert f"Responder Error: {openssl_text}" in result.stdout + result.stderr


def test_unknown_error_kind() -> None:
    with pytest.raises(ValueError, match="Unknown OCSP error kind 'oops'"):
        ocsp_error_response("oops")
