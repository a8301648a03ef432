from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.names import build_name, first_common_name, name_attrs, name_to_string


def test_build_name_orders_general_to_specific() -> None:
    name = build_name(
        "app.example.test",
        organization="Example, Inc.",
        organizational_unit="Web",
        country="DE",
        extra=[x509.NameAttribute(NameOID.LOCALITY_NAME, "Berlin")],
    )
    assert [a.oid for a in name] == [
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.LOCALITY_NAME,
        NameOID.COMMON_NAME,
    ]
    # RFC 4514 lists the most specific RDN first and escapes the comma.
    assert name_to_string(name) == "CN=app.example.test,L=Berlin,OU=Web,O=Example\\, Inc.,C=DE"


def test_build_name_skips_missing_parts() -> None:
    assert build_name() == x509.Name([])
    assert name_to_string(build_name("only")) == "CN=only"


def test_name_attrs_uses_short_names_and_collects_repeats() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "A"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "B"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@example.test"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Bavaria"),
            x509.NameAttribute(NameOID.COMMON_NAME, "x"),
        ]
    )
    assert name_attrs(name) == {
        "OU": ["A", "B"],
        "emailAddress": ["pki@example.test"],
        "ST": ["Bavaria"],
        "CN": ["x"],
    }
    assert "emailAddress=pki@example.test" in name_to_string(name)
    assert first_common_name(name) == "x"
    assert first_common_name(x509.Name([])) is None
