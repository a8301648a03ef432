"""Distinguished-name helpers.

Short attribute names follow RFC 4514 (CN, O, OU, C, L, ST, STREET, DC, UID) plus the
OpenSSL spellings for attributes RFC 4514 has no name for (emailAddress, serialNumber, ...),
because those are what administrators see in every other tool.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

# Short name -> OID for attributes a profile can mention. Order matters: it is the DN order
# (most general first) used when a subject is assembled from a mapping.
ATTRIBUTE_OIDS: dict[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "STREET": NameOID.STREET_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "UID": NameOID.USER_ID,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "CN": NameOID.COMMON_NAME,
}
_NON_RFC4514_NAMES: dict[x509.ObjectIdentifier, str] = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "title",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


def build_name(
    common_name: str | None = None,
    *,
    organization: str | None = None,
    organizational_unit: str | None = None,
    country: str | None = None,
    extra: Sequence[x509.NameAttribute] = (),
) -> x509.Name:
    """Build a DN in the conventional order C, O, OU, <extra...>, CN.

    Raises ValueError (from cryptography) for values X.509 forbids, e.g. a 3-letter C or a
    CN longer than 64 characters; callers validating user input check those first.
    """
    attrs: list[x509.NameAttribute] = []
    if country:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if organizational_unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
    attrs.extend(extra)
    if common_name:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _value_str(value: str | bytes) -> str:
    return value.hex() if isinstance(value, bytes) else value


def name_attrs(name: x509.Name) -> dict[str, list[str]]:
    """Map short attribute names to their values, in DN order; repeated attributes collect."""
    result: dict[str, list[str]] = {}
    for attr in name:
        key = _NON_RFC4514_NAMES.get(attr.oid) or attr.rfc4514_attribute_name
        result.setdefault(key, []).append(_value_str(attr.value))
    return result


def name_to_string(name: x509.Name) -> str:
    """RFC 4514 string (most specific first), with readable names for e.g. emailAddress."""
    return name.rfc4514_string(_NON_RFC4514_NAMES)


def first_common_name(name: x509.Name) -> str | None:
    """First CN value, or None."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return _value_str(values[0].value) if values else None
