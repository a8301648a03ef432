"""Key usage and extended key usage names.

Kept apart from certs.py so the (pure) policy module can validate profile usages without
importing the certificate builders.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

# RFC 5280 names -> the keyword argument cryptography's x509.KeyUsage uses.
KEY_USAGE_NAMES: dict[str, str] = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}
# Canonical name per KeyUsage attribute, for describing certificates.
KEY_USAGE_CANONICAL: dict[str, str] = {
    attr: name for name, attr in KEY_USAGE_NAMES.items() if name != "contentCommitment"
}

EKU_NAMES: dict[str, x509.ObjectIdentifier] = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}
EKU_BY_OID: dict[x509.ObjectIdentifier, str] = {oid: name for name, oid in EKU_NAMES.items()}

_DOTTED_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


def parse_eku(name: str) -> x509.ObjectIdentifier:
    """EKU name (serverAuth, ...) or dotted OID -> OID; ValueError for anything else."""
    oid = EKU_NAMES.get(name)
    if oid is not None:
        return oid
    if _DOTTED_OID.fullmatch(name):
        return x509.ObjectIdentifier(name)
    raise ValueError(f"Unknown extended key usage {name!r}")


def eku_name(oid: x509.ObjectIdentifier) -> str:
    return EKU_BY_OID.get(oid, oid.dotted_string)


def check_key_usage(name: str) -> str:
    """Return cryptography's attribute for a KU name; ValueError for unknown names."""
    try:
        return KEY_USAGE_NAMES[name]
    except KeyError:
        raise ValueError(f"Unknown key usage {name!r}") from None
