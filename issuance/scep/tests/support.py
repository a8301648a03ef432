"""A small SCEP client on pki.scep (asn1crypto + cryptography) for the tests: what
micromdm's scepclient cannot do (GET PKIOperation, CertPoll, GetCert, GetCRL, chosen
ciphers and digests, broken messages)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AttributeOID, NameOID

from pki import scep as wire

_KEYS: list[rsa.RSAPrivateKey] = []


def rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit key (a small pool per test process keeps the tests quick)."""
    if len(_KEYS) < 6:
        _KEYS.append(rsa.generate_private_key(65537, 2048))
        return _KEYS[-1]
    _KEYS.append(_KEYS.pop(0))
    return _KEYS[-1]


def self_signed(key: rsa.RSAPrivateKey, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def csr_der(key: rsa.RSAPrivateKey, cn: str, challenge: str | None = None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scep-client"),
            ]
        )
    )
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def is_ca(cert: x509.Certificate) -> bool:
    """A CA certificate, as opposed to the RA (DER sorts a SET OF certificates, so a
    certs-only answer has no order to rely on)."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


@dataclass
class Device:
    """A requester: its key and the certificate it signs with (self-signed at first)."""

    cn: str
    key: rsa.RSAPrivateKey = field(default_factory=rsa_key)
    cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        if self.cert is None:
            self.cert = self_signed(self.key, self.cn)

    def transaction_id(self) -> str:
        spki = self.key.public_key().public_bytes(Encoding.DER, _SPKI)
        return hashlib.sha256(spki).hexdigest()


from cryptography.hazmat.primitives.serialization import PublicFormat  # noqa: E402

_SPKI = PublicFormat.SubjectPublicKeyInfo


class ScepClient:
    """Speaks to the portal's SCEP URL through a Django test client or any
    ``get(url)`` / ``post(url, body)`` pair returning (status, content)."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url
        self._ra: x509.Certificate | None = None

    def get(self, query: str) -> Any:
        return self.client.get(f"{self.url}?{query}")

    def post(self, body: bytes) -> Any:
        return self.client.post(
            f"{self.url}?operation=PKIOperation",
            data=body,
            content_type="application/x-pki-message",
        )

    def ca_certs(self) -> list[x509.Certificate]:
        response = self.get("operation=GetCACert")
        assert response.status_code == 200, response.content
        certs, _ = wire.read_certs_only(response.content)
        return certs

    @property
    def ra(self) -> x509.Certificate:
        if self._ra is None:
            [self._ra] = [c for c in self.ca_certs() if not is_ca(c)]
        return self._ra

    def message(
        self,
        device: Device,
        message_type: wire.MessageType,
        data: bytes,
        *,
        transaction_id: str | None = None,
        cipher: str = "aes256_cbc",
        digest: str = "sha256",
        recipient: x509.Certificate | None = None,
    ) -> bytes:
        assert device.cert is not None
        return wire.build_request(
            message_type,
            data,
            signer=device.cert,
            key=device.key,
            recipient=recipient or self.ra,
            transaction_id=transaction_id or device.transaction_id(),
            cipher=cipher,
            digest=digest,
        )

    def send(self, body: bytes, *, method: str = "POST") -> Any:
        if method == "POST":
            return self.post(body)
        # The way macOS sends it: standard base64, "+" and "/" left unescaped.
        return self.get("operation=PKIOperation&message=" + base64.b64encode(body).decode())

    def reply(self, device: Device, response: Any) -> wire.Reply:
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/x-pki-message"
        assert device.cert is not None
        return wire.parse_reply(response.content, ra=self.ra, cert=device.cert, key=device.key)

    def enroll(
        self,
        device: Device,
        challenge: str | None,
        *,
        message_type: wire.MessageType = wire.MessageType.PKCS_REQ,
        method: str = "POST",
        csr: bytes | None = None,
        **options: Any,
    ) -> wire.Reply:
        data = csr if csr is not None else csr_der(device.key, device.cn, challenge)
        body = self.message(device, message_type, data, **options)
        return self.reply(device, self.send(body, method=method))

    def poll(self, device: Device, ca: x509.Certificate, **options: Any) -> wire.Reply:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device.cn)])
        data = wire.issuer_and_subject(ca.subject, subject)
        return self.reply(
            device, self.send(self.message(device, wire.MessageType.CERT_POLL, data, **options))
        )


Check = Callable[[wire.Reply], None]


def assert_failure(reply: wire.Reply, fail_info: wire.FailInfo) -> None:
    assert reply.status == wire.PKIStatus.FAILURE, reply.message
    assert reply.message.fail_info == str(int(fail_info)), reply.message.fail_info_text
    assert reply.message.fail_info_text
