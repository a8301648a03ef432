"""pki.scep without Django: request and reply round trips for every cipher and digest,
the constructed-OCTET-STRING envelope Go clients send, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from pki import scep
from pki.scep import FailInfo, MessageType, PKIStatus, ScepFailure

KEYS = [rsa.generate_private_key(65537, 2048) for _ in range(2)]


def _self_signed(key: rsa.RSAPrivateKey, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


RA_KEY, CLIENT_KEY = KEYS
RA = _self_signed(RA_KEY, "RA")
CLIENT = _self_signed(CLIENT_KEY, "client")
ALL_CIPHERS = scep.CIPHERS | scep.LEGACY_CIPHERS
ALL_DIGESTS = scep.DIGESTS | scep.LEGACY_DIGESTS


@pytest.mark.parametrize("cipher", sorted(ALL_CIPHERS))
@pytest.mark.parametrize("digest", sorted(ALL_DIGESTS))
def test_request_and_reply_round_trip(cipher: str, digest: str) -> None:
    body = scep.build_request(
        MessageType.PKCS_REQ, b"payload", signer=CLIENT, key=CLIENT_KEY, recipient=RA,
        transaction_id="tx", cipher=cipher, digest=digest, sender_nonce=b"n" * 16,
    )  # fmt: skip
    message = scep.parse_message(body)
    assert (message.message_type, message.transaction_id) == (MessageType.PKCS_REQ, "tx")
    scep.verify_signature(message, digests=ALL_DIGESTS)
    assert scep.open_envelope(message.content, [(RA, RA_KEY)], ciphers=ALL_CIPHERS) == (
        b"payload",
        cipher,
    )
    sealed = scep.envelope(scep.certs_only([CLIENT]), CLIENT, cipher)
    reply = scep.cert_rep(
        status=PKIStatus.SUCCESS, transaction_id="tx", recipient_nonce=message.sender_nonce,
        signer=RA, key=RA_KEY, digest=digest, envelope_der=sealed,
    )  # fmt: skip
    parsed = scep.parse_reply(reply, ra=RA, cert=CLIENT, key=CLIENT_KEY)
    assert parsed.certificates == [CLIENT]
    assert parsed.message.recipient_nonce == b"n" * 16


def test_disabled_algorithms_are_bad_alg() -> None:
    body = scep.build_request(
        MessageType.PKCS_REQ, b"x", signer=CLIENT, key=CLIENT_KEY, recipient=RA,
        transaction_id="tx", cipher="tripledes_3key", digest="sha1",
    )  # fmt: skip
    message = scep.parse_message(body)
    with pytest.raises(ScepFailure) as refused:
        scep.verify_signature(message, digests=scep.DIGESTS)
    assert refused.value.fail_info == FailInfo.BAD_ALG
    with pytest.raises(ScepFailure) as refused:
        scep.open_envelope(message.content, [(RA, RA_KEY)], ciphers=scep.CIPHERS)
    assert refused.value.fail_info == FailInfo.BAD_ALG


def test_envelope_with_constructed_octet_string_opens() -> None:
    """Go's pkcs7 (micromdm's scepclient) sends the encrypted content as a definite-length
    constructed OCTET STRING."""
    standard = cms.ContentInfo.load(scep.envelope(b"secret csr", RA, "aes128_cbc"))
    enveloped = standard["content"]
    info = enveloped["encrypted_content_info"]
    ciphertext = info["encrypted_content"].native
    chunked = scep._ChunkedContentInfo(
        {
            "content_type": "enveloped_data",
            "content": {
                "version": enveloped["version"],
                "recipient_infos": enveloped["recipient_infos"],
                "encrypted_content_info": {
                    "content_type": "data",
                    "content_encryption_algorithm": info["content_encryption_algorithm"],
                    "encrypted_content": [
                        core.OctetString(ciphertext[:16]),
                        core.OctetString(ciphertext[16:]),
                    ],
                },
            },
        }
    ).dump()
    assert chunked != standard.dump()
    assert scep.open_envelope(chunked, [(RA, RA_KEY)], ciphers=scep.CIPHERS) == (
        b"secret csr",
        "aes128_cbc",
    )


@pytest.mark.parametrize("body", [b"", b"junk", b"\x30\x80", CLIENT.public_bytes(Encoding.DER)])
def test_not_a_pki_message_is_malformed(body: bytes) -> None:
    with pytest.raises(scep.Malformed):
        scep.parse_message(body)


def test_envelope_for_someone_else_is_bad_message_check() -> None:
    sealed = scep.envelope(b"x", CLIENT, "aes256_cbc")
    with pytest.raises(ScepFailure) as refused:
        scep.open_envelope(sealed, [(RA, RA_KEY)], ciphers=scep.CIPHERS)
    assert refused.value.fail_info == FailInfo.BAD_MESSAGE_CHECK


def test_ra_certificate_can_sign_and_receive() -> None:
    from pki.certs import Issuer

    issuer = Issuer(certificate=RA, private_key=RA_KEY)
    now = datetime.now(UTC)
    cert = scep.build_ra_certificate(
        issuer, CLIENT_KEY.public_key(), common_name="x RA",
        not_before=now, not_after=now + timedelta(days=400),
    )  # fmt: skip
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    assert cert.not_valid_after_utc <= RA.not_valid_after_utc  # clamped to the issuer
