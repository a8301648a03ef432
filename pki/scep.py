"""SCEP (RFC 8894) messages: parse and verify a pkiMessage, open its envelope, build the
CertRep reply, and the client side of the same (used by tests and benchmarks).

asn1crypto holds the CMS structures; every cryptographic operation (RSA key transport,
AES / 3DES, signatures, digests) runs through ``cryptography``. Nothing here imports
Django: the portal's SCEP front decides what a request may do and calls these to speak
the wire format.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.certs import Issuer, random_serial
from pki.errors import PKIError

__all__ = [
    "CIPHERS",
    "DIGESTS",
    "LEGACY_CIPHERS",
    "LEGACY_DIGESTS",
    "FailInfo",
    "IssuerAndSubject",
    "Malformed",
    "MessageType",
    "PKIMessage",
    "PKIStatus",
    "Reply",
    "ScepFailure",
    "build_ra_certificate",
    "build_request",
    "cert_rep",
    "certs_only",
    "envelope",
    "issuer_and_serial",
    "issuer_and_subject",
    "open_envelope",
    "parse_issuer_and_serial",
    "parse_issuer_and_subject",
    "parse_message",
    "parse_reply",
    "read_certs_only",
    "same_name",
    "sign_data",
    "verify_signature",
]


class MessageType(enum.IntEnum):
    CERT_REP = 3
    RENEWAL_REQ = 17
    PKCS_REQ = 19
    CERT_POLL = 20
    GET_CERT = 21
    GET_CRL = 22


class PKIStatus(enum.StrEnum):
    SUCCESS = "0"
    FAILURE = "2"
    PENDING = "3"


class FailInfo(enum.IntEnum):
    BAD_ALG = 0
    BAD_MESSAGE_CHECK = 1
    BAD_REQUEST = 2
    BAD_TIME = 3
    BAD_CERT_ID = 4


class Malformed(PKIError):
    """Not a pkiMessage at all: the front answers HTTP 400 with this reason."""

    code = "malformed"


class ScepFailure(Exception):
    """A well-formed message the server refuses: answered as a FAILURE CertRep."""

    def __init__(self, fail_info: FailInfo, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info
        self.text = text


# --------------------------------------------------------------------------- attributes

_SCEP_ATTRIBUTES = {
    "2.16.840.1.113733.1.9.2": "scep_message_type",
    "2.16.840.1.113733.1.9.3": "scep_pki_status",
    "2.16.840.1.113733.1.9.4": "scep_fail_info",
    "2.16.840.1.113733.1.9.5": "scep_sender_nonce",
    "2.16.840.1.113733.1.9.6": "scep_recipient_nonce",
    "2.16.840.1.113733.1.9.7": "scep_transaction_id",
    "1.3.6.1.5.5.7.24.1": "scep_fail_info_text",
}


class _SetOfPrintableString(core.SetOf):
    _child_spec = core.PrintableString


class _SetOfUTF8String(core.SetOf):
    _child_spec = core.UTF8String


# asn1crypto resolves attribute values through these two registries; SCEP's are not
# among its built-ins. Adding names only widens what it can parse.
cms.CMSAttributeType._map.update(_SCEP_ATTRIBUTES)
cms.CMSAttribute._oid_specs.update(
    {
        "scep_message_type": _SetOfPrintableString,
        "scep_pki_status": _SetOfPrintableString,
        "scep_fail_info": _SetOfPrintableString,
        "scep_sender_nonce": cms.SetOfOctetString,
        "scep_recipient_nonce": cms.SetOfOctetString,
        "scep_transaction_id": _SetOfPrintableString,
        "scep_fail_info_text": _SetOfUTF8String,
    }
)


class IssuerAndSubject(core.Sequence):
    """CertPoll's messageData (RFC 8894 3.3.3)."""

    _fields = [("issuer", asn1_x509.Name), ("subject", asn1_x509.Name)]


class _OctetChunks(core.SequenceOf):
    _child_spec = core.OctetString


class _ChunkedEncryptedContentInfo(core.Sequence):
    """EncryptedContentInfo whose content is a definite-length constructed OCTET STRING
    (valid BER, sent by Go's pkcs7 and so by micromdm's scepclient), which asn1crypto
    parses only in its indefinite-length form."""

    _fields = [
        ("content_type", cms.ContentType),
        ("content_encryption_algorithm", cms.EncryptionAlgorithm),
        ("encrypted_content", _OctetChunks, {"implicit": 0, "optional": True}),
    ]


class _ChunkedEnvelopedData(core.Sequence):
    _fields = [
        ("version", cms.CMSVersion),
        ("originator_info", cms.OriginatorInfo, {"implicit": 0, "optional": True}),
        ("recipient_infos", cms.RecipientInfos),
        ("encrypted_content_info", _ChunkedEncryptedContentInfo),
        ("unprotected_attrs", cms.CMSAttributes, {"implicit": 1, "optional": True}),
    ]


class _ChunkedContentInfo(core.Sequence):
    _fields = [
        ("content_type", cms.ContentType),
        ("content", _ChunkedEnvelopedData, {"explicit": 0}),
    ]


# --------------------------------------------------------------------------- algorithms

# Content ciphers by asn1crypto name: (cipher factory, key bytes).
_AES = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}
CIPHERS = frozenset(_AES)
LEGACY_CIPHERS = frozenset({"tripledes_3key", "des"})
DIGESTS = frozenset({"sha256", "sha384", "sha512"})
LEGACY_DIGESTS = frozenset({"sha1"})
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _hash(name: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[name]()
    except KeyError:
        raise ScepFailure(FailInfo.BAD_ALG, f"Digest algorithm {name} is not supported.") from None


def _digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(_hash(name))
    h.update(data)
    return h.finalize()


def _cipher(name: str, key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    if name in _AES:
        return Cipher(algorithms.AES(key), modes.CBC(iv))
    if name in LEGACY_CIPHERS:
        # Single DES is 3DES with one key three times (K1 = K2 = K3).
        return Cipher(TripleDES(key * 3 if len(key) == 8 else key), modes.CBC(iv))
    raise ScepFailure(FailInfo.BAD_ALG, f"Content cipher {name} is not supported.")


def _key_size(name: str) -> int:
    return _AES.get(name) or (24 if name == "tripledes_3key" else 8)


def _block_size(name: str) -> int:
    return 16 if name in _AES else 8


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class PKIMessage:
    """A parsed (not yet verified) pkiMessage."""

    message_type: int
    transaction_id: str
    sender_nonce: bytes
    signer: x509.Certificate
    digest_algorithm: str
    signing_time: datetime | None
    content: bytes  # the signed content: an EnvelopedData ContentInfo, or empty
    signed_data: cms.SignedData = field(repr=False)
    signer_info: cms.SignerInfo = field(repr=False)
    recipient_nonce: bytes = b""
    pki_status: str = ""
    fail_info: str = ""
    fail_info_text: str = ""


_DECODE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    x509.InvalidVersion,
    UnsupportedAlgorithm,
)


def _load(der: bytes, *, parse_all: bool = True) -> cms.ContentInfo:
    """Load CMS; with parse_all, parse every field now, so that nothing parsed lazily
    later can fail. parse_message parses what it reads instead (the certificates a
    request carries are most of its bytes and only the signer's is needed)."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if parse_all:
            info.native  # noqa: B018
    except _DECODE_ERRORS as exc:
        raise Malformed(f"The message is not DER-encoded CMS: {exc}") from None
    return info


def _attribute(attrs: cms.CMSAttributes, name: str) -> object:
    for attr in attrs:
        if attr["type"].native == name:
            values = attr["values"]
            return values[0].native if len(values) else None
    return None


def parse_message(der: bytes) -> PKIMessage:
    """Parse a pkiMessage's SignedData and SCEP attributes. Raises Malformed for anything
    that is not one; the signature is checked separately (``verify_signature``) so that a
    bad one still gets a FAILURE reply echoing the transaction."""
    try:
        return _parse_message(_load(der, parse_all=False))
    except _DECODE_ERRORS as exc:
        raise Malformed(f"The message is not DER-encoded CMS: {exc}") from None


def _parse_message(info: cms.ContentInfo) -> PKIMessage:
    if info["content_type"].native != "signed_data":
        raise Malformed("The message is not a CMS SignedData.")
    signed = info["content"]
    if len(signed["signer_infos"]) != 1:
        raise Malformed("A pkiMessage has exactly one signer.")
    signer_info = signed["signer_infos"][0]
    signer_info.native  # noqa: B018  (parsed now: verify_signature reads it later)
    attrs = signer_info["signed_attrs"]
    if not isinstance(attrs, cms.CMSAttributes) or not len(attrs):
        raise Malformed("The pkiMessage has no signed attributes.")
    values = {name: _attribute(attrs, name) for name in _SCEP_ATTRIBUTES.values()}
    if values["scep_message_type"] is None or values["scep_transaction_id"] is None:
        raise Malformed("The pkiMessage lacks messageType or transactionID.")
    try:
        message_type = int(str(values["scep_message_type"]))
    except ValueError:
        raise Malformed("The messageType is not a number.") from None
    signing_time = _attribute(attrs, "signing_time")
    encap = signed["encap_content_info"]["content"]
    return PKIMessage(
        message_type=message_type,
        transaction_id=str(values["scep_transaction_id"]),
        sender_nonce=_bytes(values["scep_sender_nonce"]),
        recipient_nonce=_bytes(values["scep_recipient_nonce"]),
        pki_status=str(values["scep_pki_status"] or ""),
        fail_info=str(values["scep_fail_info"] or ""),
        fail_info_text=str(values["scep_fail_info_text"] or ""),
        signer=_signer_certificate(signed, signer_info),
        digest_algorithm=signer_info["digest_algorithm"]["algorithm"].native,
        signing_time=signing_time if isinstance(signing_time, datetime) else None,
        content=encap.native if encap.native is not None else b"",
        signed_data=signed,
        signer_info=signer_info,
    )


def _same(name: asn1_x509.Name, other: asn1_x509.Name) -> bool:
    """Name equality: identical DER at once, else RFC 5280 comparison (stringprep)."""
    return bool(name.dump() == other.dump() or name == other)


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else b""


def _signer_certificate(signed: cms.SignedData, signer_info: cms.SignerInfo) -> x509.Certificate:
    sid = signer_info["sid"]
    for choice in signed["certificates"] or ():
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.serial_number == wanted["serial_number"].native and _same(
                cert.issuer, wanted["issuer"]
            ):
                return _certificate(cert)
        elif cert.key_identifier == sid.chosen.native:
            return _certificate(cert)
    raise Malformed("The pkiMessage does not carry its signer's certificate.")


def _certificate(cert: asn1_x509.Certificate) -> x509.Certificate:
    loaded = x509.load_der_x509_certificate(cert.dump())
    # Parsed lazily by cryptography: read now, so an unreadable part is a malformed message.
    loaded.public_key(), loaded.subject, loaded.issuer
    return loaded


def verify_signature(message: PKIMessage, *, digests: frozenset[str]) -> None:
    """Check the signer's signature over the signed attributes and the content digest.
    Raises ScepFailure: badAlg for a digest not in ``digests``, badMessageCheck otherwise."""
    name = message.digest_algorithm
    if name not in digests:
        raise ScepFailure(FailInfo.BAD_ALG, f"Digest algorithm {name} is not enabled.")
    attrs = message.signer_info["signed_attrs"]
    if _attribute(attrs, "message_digest") != _digest(name, message.content):
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "The message digest does not match.")
    signature = message.signer_info["signature"].native
    # The signature covers the attributes DER-encoded as a SET (RFC 5652 5.4).
    data = attrs.untag().dump(force=True)
    key = message.signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, asym_padding.PKCS1v15(), _hash(name))
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_hash(name)))
        else:
            raise ScepFailure(FailInfo.BAD_ALG, "The signer's key type is not supported.")
    except InvalidSignature:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "The signature does not verify.") from None


def open_envelope(
    der: bytes,
    recipients: list[tuple[x509.Certificate, rsa.RSAPrivateKey]],
    *,
    ciphers: frozenset[str],
) -> tuple[bytes, str]:
    """Decrypt the pkiEnvelope with whichever recipient key it names; returns the
    content and the cipher's name. Raises ScepFailure (badMessageCheck when it is not for
    us or does not open, badAlg for a cipher not in ``ciphers``)."""
    enveloped, encrypted = _enveloped(der)
    algorithm = enveloped["encrypted_content_info"]["content_encryption_algorithm"]
    name = algorithm["algorithm"].native
    if name not in ciphers:
        raise ScepFailure(FailInfo.BAD_ALG, f"Content cipher {name} is not enabled.")
    cek = _content_key(enveloped["recipient_infos"], recipients)
    if not encrypted or len(cek) != _key_size(name):
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "The pkiEnvelope does not open.")
    decryptor = _cipher(name, cek, algorithm.encryption_iv).decryptor()
    unpadder = padding.PKCS7(_block_size(name) * 8).unpadder()
    try:
        plain = decryptor.update(encrypted) + decryptor.finalize()
        return unpadder.update(plain) + unpadder.finalize(), name
    except ValueError:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "The pkiEnvelope does not open.") from None


def _enveloped(der: bytes) -> tuple[core.Sequence, bytes]:
    """The EnvelopedData and its encrypted content, in either OCTET STRING form."""
    try:
        info = _load(der)
    except Malformed:
        try:
            chunked = _ChunkedContentInfo.load(der, strict=True)
            chunked.native  # noqa: B018
        except (ValueError, TypeError, KeyError):
            raise ScepFailure(FailInfo.BAD_REQUEST, "The pkiEnvelope is not CMS.") from None
        info = chunked
        content = chunked["content"]["encrypted_content_info"]["encrypted_content"]
        encrypted = b"".join(chunk.native for chunk in content or ())
    else:
        if info["content_type"].native != "enveloped_data":
            raise ScepFailure(FailInfo.BAD_REQUEST, "The signed content is not an EnvelopedData.")
        encrypted = info["content"]["encrypted_content_info"]["encrypted_content"].native or b""
    if info["content_type"].native != "enveloped_data":
        raise ScepFailure(FailInfo.BAD_REQUEST, "The signed content is not an EnvelopedData.")
    return info["content"], encrypted


def _content_key(
    infos: cms.RecipientInfos, recipients: list[tuple[x509.Certificate, rsa.RSAPrivateKey]]
) -> bytes:
    for info in infos:
        if info.name != "ktri":
            continue
        ktri = info.chosen
        for cert, key in recipients:
            if not _names_recipient(ktri["rid"], cert):
                continue
            if ktri["key_encryption_algorithm"]["algorithm"].native != "rsaes_pkcs1v15":
                raise ScepFailure(FailInfo.BAD_ALG, "Key transport must be RSA PKCS#1 v1.5.")
            try:
                return key.decrypt(ktri["encrypted_key"].native, asym_padding.PKCS1v15())
            except ValueError:
                raise ScepFailure(
                    FailInfo.BAD_MESSAGE_CHECK, "The content key does not open."
                ) from None
    raise ScepFailure(
        FailInfo.BAD_MESSAGE_CHECK, "The pkiEnvelope is not encrypted to this server's RA."
    )


def _names_recipient(rid: cms.RecipientIdentifier, cert: x509.Certificate) -> bool:
    if rid.name == "issuer_and_serial_number":
        wanted = rid.chosen
        issuer = asn1_x509.Name.load(cert.issuer.public_bytes())
        return wanted["serial_number"].native == cert.serial_number and _same(
            wanted["issuer"], issuer
        )
    ski = _ski(cert)
    return ski is not None and rid.chosen.native == ski


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def parse_issuer_and_serial(der: bytes) -> tuple[asn1_x509.Name, int]:
    """GetCert / GetCRL messageData: the issuer's name and the serial number."""
    try:
        value = cms.IssuerAndSerialNumber.load(der, strict=True)
        value.native  # noqa: B018  (parse all now: the issuer is compared later)
        return value["issuer"], int(value["serial_number"].native)
    except (ValueError, TypeError) as exc:
        raise ScepFailure(
            FailInfo.BAD_REQUEST, f"IssuerAndSerialNumber does not parse: {exc}"
        ) from None


def parse_issuer_and_subject(der: bytes) -> tuple[asn1_x509.Name, asn1_x509.Name]:
    """CertPoll messageData: the issuer's and the requested subject's names."""
    try:
        value = IssuerAndSubject.load(der, strict=True)
        value.native  # noqa: B018
        return value["issuer"], value["subject"]
    except (ValueError, TypeError) as exc:
        raise ScepFailure(FailInfo.BAD_REQUEST, f"IssuerAndSubject does not parse: {exc}") from None


def same_name(name: asn1_x509.Name, other: x509.Name) -> bool:
    """RFC 5280 name comparison (asn1crypto normalises case and spaces)."""
    return bool(name == asn1_x509.Name.load(other.public_bytes()))


def issuer_and_serial(cert: x509.Certificate) -> bytes:
    """GetCert / GetCRL messageData for a certificate (client side)."""
    return cms.IssuerAndSerialNumber(
        {
            "issuer": asn1_x509.Name.load(cert.issuer.public_bytes()),
            "serial_number": cert.serial_number,
        }
    ).dump()


def issuer_and_subject(issuer: x509.Name, subject: x509.Name) -> bytes:
    """CertPoll messageData (client side)."""
    return IssuerAndSubject(
        {
            "issuer": asn1_x509.Name.load(issuer.public_bytes()),
            "subject": asn1_x509.Name.load(subject.public_bytes()),
        }
    ).dump()


# --------------------------------------------------------------------------- building


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def certs_only(certs: list[x509.Certificate], crls: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """A degenerate SignedData (no signers) carrying certificates or CRLs: GetCACert's
    answer and the content of a CertRep."""
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data"},
            "certificates": [_asn1_cert(c) for c in certs] or None,
            "crls": [cms.RevocationInfoChoice.load(c) for c in crls] or None,
            "signer_infos": [],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def read_certs_only(der: bytes) -> tuple[list[x509.Certificate], list[bytes]]:
    """The certificates and CRLs (DER) of a degenerate SignedData."""
    info = _load(der)
    if info["content_type"].native != "signed_data":
        raise Malformed("Expected a certs-only SignedData.")
    signed = info["content"]
    certs = [
        x509.load_der_x509_certificate(c.chosen.dump())
        for c in signed["certificates"] or ()
        if c.name == "certificate"
    ]
    crls = [c.chosen.dump() for c in signed["crls"] or ()]
    return certs, crls


def envelope(content: bytes, recipient: x509.Certificate, cipher: str) -> bytes:
    """EnvelopedData of content for one RSA recipient (key transport PKCS#1 v1.5)."""
    key = os.urandom(_key_size(cipher))
    iv = os.urandom(_block_size(cipher))
    padder = padding.PKCS7(_block_size(cipher) * 8).padder()
    encryptor = _cipher(cipher, key, iv).encryptor()
    body = encryptor.update(padder.update(content) + padder.finalize()) + encryptor.finalize()
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ScepFailure(
            FailInfo.BAD_ALG, "The requester's key cannot receive an envelope (not RSA)."
        )
    recipient_info = cms.KeyTransRecipientInfo(
        {
            "version": "v0",
            "rid": cms.RecipientIdentifier(
                name="issuer_and_serial_number",
                value={
                    "issuer": asn1_x509.Name.load(recipient.issuer.public_bytes()),
                    "serial_number": recipient.serial_number,
                },
            ),
            "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
            "encrypted_key": public_key.encrypt(key, asym_padding.PKCS1v15()),
        }
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [cms.RecipientInfo(name="ktri", value=recipient_info)],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {
                    "algorithm": cipher,
                    "parameters": core.OctetString(iv),
                },
                "encrypted_content": body,
            },
        }
    )
    return cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()


def sign_data(
    content: bytes,
    attributes: Mapping[str, object],
    signer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    digest: str,
    *,
    extra_certs: list[x509.Certificate] = (),  # type: ignore[assignment]
) -> bytes:
    """SignedData over content with the SCEP attributes (plus content type, signing time
    and message digest), signed with RSA PKCS#1 v1.5."""
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC)})]},
            {"type": "message_digest", "values": [_digest(digest, content)]},
            *({"type": name, "values": [value]} for name, value in attributes.items()),
        ]
    )
    signature = key.sign(signed_attrs.dump(), asym_padding.PKCS1v15(), _hash(digest))
    asn1_signer = _asn1_cert(signer)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": asn1_signer.issuer, "serial_number": asn1_signer.serial_number},
            ),
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": signature,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
            "encap_content_info": {"content_type": "data", "content": content or None},
            "certificates": [asn1_signer, *(_asn1_cert(c) for c in extra_certs)],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def cert_rep(
    *,
    status: PKIStatus,
    transaction_id: str,
    recipient_nonce: bytes,
    signer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    digest: str,
    envelope_der: bytes = b"",
    fail_info: FailInfo | None = None,
    fail_text: str = "",
) -> bytes:
    """A CertRep pkiMessage: SUCCESS carries an envelope, FAILURE its failInfo (and
    failInfoText), PENDING neither."""
    attributes: dict[str, object] = {
        "scep_message_type": str(int(MessageType.CERT_REP)),
        "scep_pki_status": str(status),
        "scep_transaction_id": transaction_id,
        "scep_sender_nonce": os.urandom(16),
        "scep_recipient_nonce": recipient_nonce,
    }
    if status == PKIStatus.FAILURE:
        attributes["scep_fail_info"] = str(
            int(fail_info if fail_info is not None else FailInfo.BAD_REQUEST)
        )
        if fail_text:
            attributes["scep_fail_info_text"] = fail_text
    return sign_data(envelope_der, attributes, signer, key, digest)


def build_ra_certificate(
    issuer: Issuer,
    public_key: rsa.RSAPublicKey,
    *,
    common_name: str,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """The SCEP RA certificate: RSA, signs replies and receives envelopes."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    builder = (
        x509.CertificateBuilder()
        .issuer_name(issuer.name)
        .subject_name(name)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, issuer.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.certificate.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    )
    return issuer.sign(builder)


# --------------------------------------------------------------------------- client side


def build_request(
    message_type: MessageType,
    message_data: bytes,
    *,
    signer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    recipient: x509.Certificate,
    transaction_id: str,
    cipher: str = "aes256_cbc",
    digest: str = "sha256",
    sender_nonce: bytes | None = None,
) -> bytes:
    """A client's pkiMessage: message_data enveloped to the RA, signed by the requester."""
    enveloped = envelope(message_data, recipient, cipher)
    attributes = {
        "scep_message_type": str(int(message_type)),
        "scep_transaction_id": transaction_id,
        "scep_sender_nonce": sender_nonce if sender_nonce is not None else os.urandom(16),
    }
    return sign_data(enveloped, attributes, signer, key, digest)


@dataclass(frozen=True)
class Reply:
    """A CertRep as a client reads it."""

    message: PKIMessage
    certificates: list[x509.Certificate]
    crls: list[bytes]

    @property
    def status(self) -> str:
        return self.message.pki_status


def parse_reply(
    der: bytes, *, ra: x509.Certificate, cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> Reply:
    """Verify a CertRep against the RA certificate and open its envelope (client side)."""
    message = parse_message(der)
    if message.signer != ra:
        raise ScepFailure(FailInfo.BAD_MESSAGE_CHECK, "The reply is not signed by the RA.")
    verify_signature(message, digests=DIGESTS | LEGACY_DIGESTS)
    if message.pki_status != PKIStatus.SUCCESS:
        return Reply(message, [], [])
    inner, _ = open_envelope(message.content, [(cert, key)], ciphers=CIPHERS | LEGACY_CIPHERS)
    certs, crls = read_certs_only(inner)
    return Reply(message, certs, crls)
