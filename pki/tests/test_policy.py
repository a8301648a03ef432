import ipaddress
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from pki.csr import build_csr, parse_csr
from pki.errors import PolicyViolation
from pki.keys import KeyInfo, generate_private_key, key_info_for
from pki.policy import (
    Decision,
    Policy,
    Request,
    SubjectRule,
    dns_name_allowed,
    evaluate,
    validate_dns_name,
    validate_dns_rule,
)

NOW = datetime(2030, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
NOW_S = NOW.replace(microsecond=0)
CA_NOT_AFTER = datetime(2035, 1, 1, tzinfo=UTC)
EC256 = key_info_for("EC_P256")
POLICY = Policy(dns_rules=(".example.test",))


def decide(policy: Policy = POLICY, **request_fields) -> Decision:
    request_fields.setdefault("key_info", EC256)
    return evaluate(policy, Request(**request_fields), now=NOW, ca_not_after=CA_NOT_AFTER)


def violation(policy: Policy = POLICY, **request_fields) -> PolicyViolation:
    with pytest.raises(PolicyViolation) as excinfo:
        decide(policy, **request_fields)
    return excinfo.value


# --------------------------------------------------------------------------- happy path


def test_default_decision() -> None:
    decision = decide(common_name="app.example.test", dns_names=["www.example.test"])
    assert decision.common_name == "app.example.test"
    assert decision.subject == x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "app.example.test")]
    )
    assert decision.dns_names == ("app.example.test", "www.example.test")
    assert decision.ip_addresses == ()
    assert decision.not_before == NOW_S - timedelta(seconds=60)
    assert decision.not_after == NOW_S + timedelta(days=90)
    assert decision.key_usages == ("digitalSignature", "keyEncipherment")
    assert decision.extended_key_usages == ("serverAuth",)


def test_request_from_csr_feeds_evaluate() -> None:
    key = generate_private_key("EC_P384")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
            x509.NameAttribute(NameOID.COMMON_NAME, "csr.example.test"),
        ]
    )
    csr = build_csr(key, subject=subject, dns_names=["Alt.Example.Test"])
    parsed = parse_csr(csr.public_bytes(serialization.Encoding.PEM))
    request = Request.from_csr(parsed, validity_days=30)
    assert request.subject_attrs == {"C": ["DE"], "O": ["Example"]}
    assert request.common_name == "csr.example.test"
    assert request.key_info == key_info_for("EC_P384")
    decision = evaluate(POLICY, request, now=NOW, ca_not_after=CA_NOT_AFTER)
    # Default rules drop O and C.
    assert decision.subject == x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "csr.example.test")]
    )
    assert decision.dns_names == ("csr.example.test", "alt.example.test")
    assert decision.not_after == NOW_S + timedelta(days=30)


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("policy", "key_info", "message"),
    [
        (
            Policy(key_algorithms=frozenset({"RSA"})),
            EC256,
            "Key type EC P-256 is not allowed by this profile (allowed: RSA ≥ 2048 bits)",
        ),
        (
            Policy(key_algorithms=frozenset({"RSA", "EC"}), rsa_min_bits=3072),
            key_info_for("ED25519"),
            "Key type Ed25519 is not allowed by this profile "
            "(allowed: RSA ≥ 3072 bits, EC P-256/P-384)",
        ),
        (
            Policy(key_algorithms=frozenset({"EC", "ED25519"}), ec_curves=frozenset({"P-384"})),
            key_info_for("RSA_4096"),
            "Key type RSA 4096 is not allowed by this profile (allowed: EC P-384, Ed25519)",
        ),
        (
            Policy(),
            KeyInfo("RSA", 1024, None, None),
            "RSA key of 1024 bits is too small (minimum 2048 bits)",
        ),
        (
            Policy(rsa_min_bits=3072),
            key_info_for("RSA_2048"),
            "RSA key of 2048 bits is too small (minimum 3072 bits)",
        ),
        (
            Policy(),
            KeyInfo("EC", 521, "P-521", None),
            "EC curve P-521 is not allowed by this profile (allowed: P-256, P-384)",
        ),
        (
            Policy(ec_curves=frozenset({"P-256"})),
            KeyInfo("EC", 256, "secp256k1", None),
            "EC curve secp256k1 is not allowed by this profile (allowed: P-256)",
        ),
    ],
)
def test_key_rules(policy: Policy, key_info: KeyInfo, message: str) -> None:
    error = violation(policy, key_info=key_info, dns_names=["a.example.test"])
    assert str(error) == message
    assert (error.code, error.field) == ("bad_key", "key")


def test_key_checked_before_subject_and_sans() -> None:
    policy = Policy(key_algorithms=frozenset({"RSA"}), subject_rules={"O": SubjectRule("required")})
    assert violation(policy, dns_names=["evil.test"]).code == "bad_key"


# --------------------------------------------------------------------------- subject

SUBJECT_POLICY = Policy(
    dns_rules=(".example.test",),
    subject_rules={
        "CN": SubjectRule("optional"),
        "O": SubjectRule("required", "Example.*"),
        "OU": SubjectRule("optional"),
        "C": SubjectRule("optional", "DE|FR"),
        "L": SubjectRule("drop"),
    },
)


def test_subject_keeps_only_optional_and_required_in_order() -> None:
    decision = decide(
        SUBJECT_POLICY,
        common_name="app.example.test",
        subject_attrs={"L": ["Berlin"], "OU": ["Web", "Ops"], "O": ["Example AG"], "C": ["DE"]},
    )
    assert [(a.oid, a.value) for a in decision.subject] == [
        (NameOID.COUNTRY_NAME, "DE"),
        (NameOID.ORGANIZATION_NAME, "Example AG"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Web"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
        (NameOID.COMMON_NAME, "app.example.test"),
    ]


@pytest.mark.parametrize(
    ("attrs", "cn", "message"),
    [
        ({}, "a.example.test", "Subject O is required by this profile"),
        ({"O": [""]}, "a.example.test", "Subject O is required by this profile"),
        (
            {"O": ["Evil Corp"]},
            "a.example.test",
            'Subject O "Evil Corp" does not match the profile\'s pattern "Example.*"',
        ),
        (
            {"O": ["Example"], "C": ["US"]},
            "a.example.test",
            'Subject C "US" does not match the profile\'s pattern "DE|FR"',
        ),
        (
            # Full match, not search: a prefix match must not pass.
            {"O": ["Example"], "C": ["DEX"]},
            "a.example.test",
            'Subject C "DEX" does not match the profile\'s pattern "DE|FR"',
        ),
        (
            {"O": ["Example"]},
            "x" * 65,
            "Subject CN is longer than 64 characters",
        ),
    ],
)
def test_subject_rules_reject(attrs: dict, cn: str, message: str) -> None:
    error = violation(
        SUBJECT_POLICY, common_name=cn, subject_attrs=attrs, dns_names=["a.example.test"]
    )
    assert str(error) == message
    assert (error.code, error.field) == ("bad_subject", "subject")


def test_country_must_be_two_letters_even_without_pattern() -> None:
    policy = Policy(dns_rules=("a.example.test",), subject_rules={"C": SubjectRule("optional")})
    error = violation(policy, subject_attrs={"C": ["DEU"]}, dns_names=["a.example.test"])
    assert str(error) == 'Subject C "DEU" is not a two-letter country code'


def test_required_cn() -> None:
    policy = Policy(dns_rules=("a.example.test",), subject_rules={"CN": SubjectRule("required")})
    error = violation(policy, dns_names=["a.example.test"])
    assert str(error) == "Subject CN is required by this profile"


def test_dropped_cn_is_ignored_entirely() -> None:
    policy = Policy(dns_rules=("a.example.test",), subject_rules={"CN": SubjectRule("drop")})
    decision = decide(policy, common_name="not-allowed.evil.test", dns_names=["a.example.test"])
    assert decision.common_name is None
    assert len(decision.subject) == 0
    assert decision.dns_names == ("a.example.test",)


def test_subject_rules_accept_json_shapes() -> None:
    policy = Policy(
        dns_rules=["a.example.test"],  # type: ignore[arg-type]
        subject_rules={"O": {"mode": "required", "pattern": "Ex.*"}},  # type: ignore[dict-item]
    )
    assert policy.subject_rules["O"] == SubjectRule("required", "Ex.*")
    assert decide(policy, subject_attrs={"O": ["Example"]}, dns_names=["a.example.test"]).subject


# --------------------------------------------------------------------------- SANs


def test_cn_copied_first_and_not_duplicated() -> None:
    decision = decide(
        common_name="App.Example.Test", dns_names=["b.example.test", "app.example.test"]
    )
    assert decision.dns_names == ("b.example.test", "app.example.test")
    decision = decide(common_name="App.Example.Test", dns_names=["b.example.test"])
    assert decision.dns_names == ("app.example.test", "b.example.test")
    assert decision.common_name == "App.Example.Test"


@pytest.mark.parametrize("cn", ["John Smith", "Alice Smith", "ops@example.test", "O'Brien, Ann"])
def test_cn_that_is_not_a_hostname_is_not_copied(cn: str) -> None:
    decision = decide(common_name=cn, dns_names=["a.example.test"])
    assert decision.dns_names == ("a.example.test",)
    assert decision.common_name == cn


def test_copy_cn_to_sans_disabled() -> None:
    policy = Policy(dns_rules=(".example.test",), copy_cn_to_sans=False)
    decision = decide(policy, common_name="app.example.test", dns_names=["b.example.test"])
    assert decision.dns_names == ("b.example.test",)


def test_copied_cn_is_checked_against_the_dns_rules() -> None:
    error = violation(common_name="evil.test", dns_names=["a.example.test"])
    assert str(error) == ('Subject CN "evil.test" is a DNS name not allowed by this profile')
    assert (error.code, error.field) == ("bad_subject", "subject")


def test_single_label_cn_is_a_host_name_when_the_profile_copies_the_cn() -> None:
    error = violation(common_name="intranet", dns_names=["a.example.test"])
    assert str(error) == ('Subject CN "intranet" is a DNS name not allowed by this profile')
    allowed = Policy(dns_rules=(".example.test", "intranet"))
    decision = decide(allowed, common_name="Intranet", dns_names=["a.example.test"])
    assert decision.dns_names == ("intranet", "a.example.test")


CLIENT_POLICY = Policy(
    copy_cn_to_sans=False,
    require_san=False,
    extended_key_usages=("clientAuth",),
    subject_rules={
        "CN": SubjectRule("optional"),
        "O": SubjectRule("optional"),
        "OU": SubjectRule("optional"),
    },
)


@pytest.mark.parametrize("cn", ["Alice Smith", "jsmith", "build-42", "ops@example.test"])
def test_client_profile_keeps_cns_no_host_could_have(cn: str) -> None:
    decision = decide(CLIENT_POLICY, common_name=cn, subject_attrs={"O": ["Example AG"]})
    assert decision.common_name == cn
    assert decision.dns_names == ()


def test_dotted_cn_meets_the_dns_rules_even_when_not_copied() -> None:
    error = violation(CLIENT_POLICY, common_name="www.bank.test")
    assert str(error) == ('Subject CN "www.bank.test" is a DNS name not allowed by this profile')
    assert error.code == "bad_subject"
    allowed = Policy(dns_rules=(".example.test",), copy_cn_to_sans=False, require_san=False)
    decision = decide(allowed, common_name="app.example.test")
    assert (decision.common_name, decision.dns_names) == ("app.example.test", ())


def test_profile_cn_pattern_admits_dotted_user_names() -> None:
    policy = Policy(
        copy_cn_to_sans=False,
        require_san=False,
        subject_rules={"CN": SubjectRule("required", r"[a-z]+\.[a-z]+")},
    )
    assert decide(policy, common_name="john.smith").common_name == "john.smith"
    # The pattern never admits a wildcard.
    wildcard = Policy(
        copy_cn_to_sans=False, require_san=False, subject_rules={"CN": SubjectRule("required")}
    )
    assert violation(wildcard, common_name="*.bank.test").code == "bad_subject"


IP_CN_POLICY = Policy(dns_rules=(".example.test",), ip_cidrs=("10.0.0.0/8",), require_san=False)


def test_ip_address_cn_needs_the_profile_to_allow_ip_addresses() -> None:
    error = violation(common_name="10.0.0.1", dns_names=["a.example.test"])
    assert str(error) == (
        'Subject CN "10.0.0.1" is an IP address, and this profile allows no IP addresses'
    )
    assert (error.code, error.field) == ("bad_subject", "subject")
    error = violation(IP_CN_POLICY, common_name="192.168.0.1")
    assert str(error) == 'Subject CN "192.168.0.1" is an IP address not allowed by this profile'


def test_allowed_ip_address_cn_is_copied_to_the_ip_sans() -> None:
    decision = decide(IP_CN_POLICY, common_name="10.0.0.1", ip_addresses=["10.0.0.2"])
    assert decision.common_name == "10.0.0.1"
    assert decision.ip_addresses == (
        ipaddress.ip_address("10.0.0.1"),
        ipaddress.ip_address("10.0.0.2"),
    )
    assert decision.dns_names == ()


@pytest.mark.parametrize(
    ("cn", "message"),
    [
        ("app.example.test.", 'Subject CN "app.example.test." ends with a dot'),
        # In any CN, not only host names: a trailing dot is how a host name hides.
        ("Alice Smith Jr.", 'Subject CN "Alice Smith Jr." ends with a dot'),
        (" app.example.test", 'Subject CN " app.example.test" starts or ends with a space'),
        ("app.example.test ", 'Subject CN "app.example.test " starts or ends with a space'),
        (
            "a.*.example.test",
            'Subject CN "a.*.example.test" is not a valid wildcard name: '
            "a wildcard '*' is only allowed as the entire leftmost label",
        ),
        (
            "**.example.test",
            'Subject CN "**.example.test" is not a valid wildcard name: '
            "a wildcard '*' is only allowed as the entire leftmost label",
        ),
        (
            "*x.example.test",
            'Subject CN "*x.example.test" is not a valid wildcard name: '
            "a wildcard '*' is only allowed as the entire leftmost label",
        ),
        (
            "*.*.example.test",
            'Subject CN "*.*.example.test" is not a valid wildcard name: '
            "a wildcard '*' is only allowed as the entire leftmost label",
        ),
        (
            "*",
            "Subject CN \"*\" is not a valid wildcard name: a wildcard needs a domain after '*.'",
        ),
        (
            "Bob * Smith",
            'Subject CN "Bob * Smith" is not a valid wildcard name: '
            "a wildcard '*' is only allowed as the entire leftmost label",
        ),
        (
            "*.evil.test",
            'Subject CN "*.evil.test" is a DNS name not allowed by this profile',
        ),
    ],
)
def test_cn_refusals(cn: str, message: str) -> None:
    for policy in (POLICY, CLIENT_POLICY):
        error = violation(policy, common_name=cn, dns_names=["a.example.test"])
        assert str(error) == message
        assert (error.code, error.field) == ("bad_subject", "subject")


def test_wildcard_cn_one_leftmost_label_when_allowed() -> None:
    decision = decide(common_name="*.a.example.test")
    assert decision.common_name == "*.a.example.test"
    assert decision.dns_names == ("*.a.example.test",)
    no_wildcards = Policy(dns_rules=(".example.test",), allow_wildcards=False)
    error = violation(no_wildcards, common_name="*.a.example.test")
    assert str(error) == (
        'Subject CN "*.a.example.test" is a wildcard name, which this profile does not allow'
    )


@pytest.mark.parametrize(
    ("char", "what"),
    [
        ("\x00", "a NUL character (U+0000)"),
        ("\n", "a control character (U+000A)"),
        ("\r", "a control character (U+000D)"),
        ("\x1b", "a control character (U+001B)"),
        ("\x7f", "a control character (U+007F)"),
        ("\x85", "a control character (U+0085)"),
        ("\x9b", "a control character (U+009B)"),
        ("\u2028", "a line or paragraph separator (U+2028)"),
        ("\ud800", "an unpaired surrogate (U+D800)"),
    ],
)
@pytest.mark.parametrize("attr", ["CN", "O", "OU", "L"])  # L is dropped by SUBJECT_POLICY
def test_no_control_characters_in_any_subject_attribute(attr: str, char: str, what: str) -> None:
    value = f"Example{char}x"
    attrs = {"O": ["Example AG"]}
    common_name = "a.example.test"
    if attr == "CN":
        common_name = value
    else:
        attrs[attr] = [value]
    error = violation(
        SUBJECT_POLICY, common_name=common_name, subject_attrs=attrs, dns_names=["a.example.test"]
    )
    assert str(error) == f"Subject {attr} contains {what}"
    assert (error.code, error.field) == ("bad_subject", "subject")


def test_dropped_cn_is_still_checked_for_characters_and_length() -> None:
    policy = Policy(dns_rules=("a.example.test",), subject_rules={"CN": SubjectRule("drop")})
    error = violation(policy, common_name="x\x00y", dns_names=["a.example.test"])
    assert str(error) == "Subject CN contains a NUL character (U+0000)"
    error = violation(policy, common_name="x" * 65, dns_names=["a.example.test"])
    assert str(error) == "Subject CN is longer than 64 characters"


def test_cn_from_a_csr_with_control_characters_is_refused() -> None:
    key = generate_private_key("EC_P256")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example\nBcc: x@evil.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, "a.example.test"),
        ]
    )
    csr = build_csr(key, subject=subject, dns_names=["a.example.test"])
    parsed = parse_csr(csr.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(PolicyViolation) as excinfo:
        evaluate(POLICY, Request.from_csr(parsed), now=NOW, ca_not_after=CA_NOT_AFTER)
    assert str(excinfo.value) == "Subject O contains a control character (U+000A)"


def test_subject_email_address_obeys_the_email_patterns() -> None:
    policy = Policy(
        email_patterns=("*@example.test",),
        require_san=False,
        subject_rules={"CN": SubjectRule("optional"), "emailAddress": SubjectRule("optional")},
    )
    decision = decide(policy, subject_attrs={"emailAddress": ["ops@example.test"]})
    assert decision.subject == x509.Name(
        [x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.test")]
    )
    error = violation(policy, subject_attrs={"emailAddress": ["ceo@bank.test"]})
    assert str(error) == (
        'Subject emailAddress "ceo@bank.test" is not an email address this profile allows'
    )
    assert error.code == "bad_subject"


def test_dns_name_not_allowed() -> None:
    error = violation(dns_names=["a.example.test", "EVIL.test"])
    assert str(error) == 'DNS name "evil.test" is not allowed by this profile'


def test_no_dns_rules_means_no_dns_names() -> None:
    error = violation(Policy(), dns_names=["a.example.test"])
    assert str(error) == 'DNS name "a.example.test" is not allowed by this profile'


def test_wildcard_refused_when_wildcards_disabled() -> None:
    policy = Policy(dns_rules=("*.example.test",), allow_wildcards=False)
    error = violation(policy, dns_names=["*.example.test"])
    assert str(error) == 'Wildcard name "*.example.test" is not allowed by this profile'
    assert error.code == "rejected_identifier"
    assert decide(policy, dns_names=["app.example.test"]).dns_names == ("app.example.test",)


def test_wildcard_allowed_when_enabled() -> None:
    policy = Policy(dns_rules=("*.example.test",))
    assert decide(policy, dns_names=["*.example.test"]).dns_names == ("*.example.test",)
    error = violation(policy, dns_names=["*.other.test"])
    assert str(error) == 'DNS name "*.other.test" is not allowed by this profile'


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a*.example.test", "a wildcard '*' is only allowed as the entire leftmost label"),
        ("a.*.example.test", "a wildcard '*' is only allowed as the entire leftmost label"),
        ("*.*.example.test", "a wildcard '*' is only allowed as the entire leftmost label"),
        ("*", "a wildcard needs a domain after '*.'"),
        ("-a.example.test", 'label "-a" starts or ends with a hyphen'),
        ("a-.example.test", 'label "a-" starts or ends with a hyphen'),
        (
            "a_b.example.test",
            'label "a_b" contains characters other than letters, digits and hyphens',
        ),
        (
            "a b.example.test",
            'label "a b" contains characters other than letters, digits and hyphens',
        ),
        ("a..example.test", "it contains an empty label"),
        (".example.test", "it contains an empty label"),
        ("example.test.", "it ends with a dot"),
        ("x" * 64 + ".example.test", 'label "xxxxxxxxxxxxxxxx..." is longer than 63 characters'),
        (".".join(["a" * 63] * 4) + ".test", "it is longer than 253 characters"),
        (
            "bücher.example.test",
            "it contains non-ASCII characters (use the IDNA A-label form, xn--...)",
        ),
        ("10.0.0.1", "it is an IP address (request an IP address SAN instead)"),
        ("", "the name is empty"),
    ],
)
def test_invalid_dns_names(name: str, reason: str) -> None:
    assert validate_dns_name(name) == reason
    error = violation(Policy(dns_rules=(".example.test",)), dns_names=[name])
    assert str(error) == f'DNS name "{name.lower()}" is invalid: {reason}'
    assert (error.code, error.field) == ("rejected_identifier", "sans")


@pytest.mark.parametrize(
    "name",
    [
        "example.test",
        "xn--bcher-kva.example.test",
        "a-b.c-d.test",
        "*.example.test",
        "A.Example.TEST",
        "localhost",
        "1a.example.test",
        "x" * 63 + ".test",
    ],
)
def test_valid_dns_names(name: str) -> None:
    assert validate_dns_name(name) is None


@pytest.mark.parametrize(
    ("rule", "name", "wildcards", "allowed"),
    [
        # exact
        ("example.test", "example.test", True, True),
        ("example.test", "EXAMPLE.test", True, True),
        ("EXAMPLE.TEST", "example.test", True, True),
        ("example.test", "a.example.test", True, False),
        ("example.test", "*.example.test", True, False),
        ("example.test", "badexample.test", True, False),
        # *.x: exactly one label below, plus the wildcard itself
        ("*.example.test", "app.example.test", True, True),
        ("*.example.test", "app.example.test", False, True),
        ("*.example.test", "a.b.example.test", True, False),
        ("*.example.test", "example.test", True, False),
        ("*.example.test", "appexample.test", True, False),
        ("*.example.test", "*.example.test", True, True),
        ("*.example.test", "*.example.test", False, False),
        ("*.example.test", "*.a.example.test", True, False),
        # .x: any depth below, not x itself; wildcards at any depth below
        (".example.test", "a.example.test", True, True),
        (".example.test", "a.b.c.example.test", True, True),
        (".example.test", "example.test", True, False),
        (".example.test", "badexample.test", True, False),
        (".example.test", "a.example.test.evil", True, False),
        (".example.test", "*.example.test", True, True),
        (".example.test", "*.a.example.test", True, True),
        (".example.test", "*.a.example.test", False, False),
        (".example.test", "*.badexample.test", True, False),
        (".example.test", "*.test", True, False),
    ],
)
def test_dns_rule_semantics(rule: str, name: str, wildcards: bool, allowed: bool) -> None:
    assert dns_name_allowed([rule], name, wildcards) is allowed


def test_dns_name_allowed_any_rule() -> None:
    rules = ["a.test", "*.b.test", ".c.test"]
    assert dns_name_allowed(rules, "x.y.c.test", True)
    assert dns_name_allowed(rules, "a.test", True)
    assert not dns_name_allowed(rules, "b.test", True)
    assert not dns_name_allowed([], "a.test", True)


def test_validate_dns_rule() -> None:
    assert validate_dns_rule("*.example.test") is None
    assert validate_dns_rule(".example.test") is None
    assert validate_dns_rule("example.test") is None
    assert validate_dns_rule("*.*.example.test") == "only one leading '*.' or '.' is allowed"
    assert validate_dns_rule("a_b.test") is not None


IP_POLICY = Policy(ip_cidrs=("10.0.0.0/8", "2001:db8::/32"), require_san=True)


def test_ip_addresses_inside_cidrs() -> None:
    decision = decide(
        IP_POLICY, ip_addresses=["10.1.2.3", ipaddress.ip_address("2001:db8::5"), "10.1.2.3"]
    )
    assert decision.ip_addresses == (
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("2001:db8::5"),
    )


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        ("192.168.1.1", 'IP address "192.168.1.1" is not allowed by this profile'),
        ("2001:db9::1", 'IP address "2001:db9::1" is not allowed by this profile'),
        ("10.0.0.300", 'IP address "10.0.0.300" is invalid'),
    ],
)
def test_ip_rejections(ip: str, message: str) -> None:
    error = violation(IP_POLICY, ip_addresses=[ip])
    assert str(error) == message
    assert (error.code, error.field) == ("rejected_identifier", "sans")


def test_no_cidrs_means_no_ips() -> None:
    error = violation(Policy(), ip_addresses=["10.0.0.1"])
    assert str(error) == 'IP address "10.0.0.1" is not allowed by this profile'


EMAIL_POLICY = Policy(email_patterns=("*@Example.test",), uri_patterns=("spiffe://example.test/*",))


def test_emails_match_case_insensitively() -> None:
    assert decide(EMAIL_POLICY, emails=["Ops@EXAMPLE.test"]).emails == ("Ops@EXAMPLE.test",)


def test_uris_match_case_sensitively() -> None:
    assert decide(EMAIL_POLICY, uris=["spiffe://example.test/web"]).uris == (
        "spiffe://example.test/web",
    )
    error = violation(EMAIL_POLICY, uris=["SPIFFE://example.test/web"])
    assert str(error) == 'URI "SPIFFE://example.test/web" is not allowed by this profile'


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"emails": ["ops@evil.test"]},
            'Email address "ops@evil.test" is not allowed by this profile',
        ),
        ({"emails": ["not-an-email"]}, 'Email address "not-an-email" is invalid'),
        ({"emails": ["a@b@example.test"]}, 'Email address "a@b@example.test" is invalid'),
        (
            {"uris": ["https://evil.test/"]},
            'URI "https://evil.test/" is not allowed by this profile',
        ),
        ({"uris": ["no scheme"]}, 'URI "no scheme" is invalid'),
        # Unprintable characters are refused and never echoed raw.
        ({"emails": ["a\x00b@example.test"]}, 'Email address "a\\u0000b@example.test" is invalid'),
        ({"emails": ["a\x85b@example.test"]}, 'Email address "a\\u0085b@example.test" is invalid'),
        (
            {"uris": ["spiffe://example.test/a\x7f"]},
            'URI "spiffe://example.test/a\\u007f" is invalid',
        ),
        (
            {"dns_names": ["a\nb.example.test"]},
            'DNS name "a\\u000ab.example.test" is invalid: '
            'label "a\\u000ab" contains characters other than letters, digits and hyphens',
        ),
    ],
)
def test_email_and_uri_rejections(fields: dict, message: str) -> None:
    error = violation(EMAIL_POLICY, **fields)
    assert str(error) == message
    assert error.code == "rejected_identifier"


def test_no_patterns_means_no_emails_or_uris() -> None:
    assert str(violation(Policy(), emails=["a@example.test"])) == (
        'Email address "a@example.test" is not allowed by this profile'
    )
    assert (
        str(violation(Policy(), uris=["https://x.test"]))
        == 'URI "https://x.test" is not allowed by this profile'
    )


def test_max_sans() -> None:
    policy = Policy(dns_rules=(".example.test",), max_sans=3)
    names = [f"n{i}.example.test" for i in range(3)]
    assert len(decide(policy, dns_names=names).dns_names) == 3
    error = violation(policy, common_name="cn.example.test", dns_names=names)
    assert (
        str(error) == "The request has 4 subject alternative names; this profile allows at most 3"
    )
    assert (error.code, error.field) == ("rejected_identifier", "sans")


def test_require_san() -> None:
    error = violation(common_name="Just a name")
    assert (
        str(error)
        == "The request has no subject alternative names; this profile requires at least one"
    )
    assert (error.code, error.field) == ("rejected_identifier", "sans")
    decision = decide(Policy(require_san=False), common_name="Just a name")
    assert decision.dns_names == ()
    assert decision.common_name == "Just a name"


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize(
    ("requested", "days"),
    [(None, 90), (1, 1), (30, 30), (397, 397), (398, 397), (10_000, 397)],
)
def test_validity_default_and_clamp(requested: int | None, days: int) -> None:
    decision = decide(dns_names=["a.example.test"], validity_days=requested)
    assert decision.not_after - NOW_S == timedelta(days=days)
    assert decision.not_before == NOW_S - timedelta(seconds=60)


@pytest.mark.parametrize("requested", [0, -5])
def test_validity_below_one_day_rejected(requested: int) -> None:
    error = violation(dns_names=["a.example.test"], validity_days=requested)
    assert str(error) == f"Requested validity of {requested} days is invalid (minimum 1 day)"
    assert (error.code, error.field) == ("bad_validity", "validity_days")


def test_validity_clamped_to_ca_expiry() -> None:
    ca_end = NOW + timedelta(days=10)
    decision = evaluate(
        POLICY, Request(EC256, dns_names=["a.example.test"]), now=NOW, ca_not_after=ca_end
    )
    assert decision.not_after == ca_end.replace(microsecond=0)


def test_ca_expiring_within_an_hour_cannot_issue() -> None:
    request = Request(EC256, dns_names=["a.example.test"])
    with pytest.raises(PolicyViolation) as excinfo:
        evaluate(POLICY, request, now=NOW, ca_not_after=NOW + timedelta(minutes=59))
    assert excinfo.value.code == "bad_validity"
    assert str(excinfo.value) == (
        "Issuing CA expires at 2030-06-01 12:59:00 UTC; it can no longer issue certificates"
    )
    assert evaluate(POLICY, request, now=NOW, ca_not_after=NOW + timedelta(hours=2)).not_after


def test_naive_and_non_utc_times_are_normalised() -> None:
    request = Request(EC256, dns_names=["a.example.test"], validity_days=1)
    naive = evaluate(POLICY, request, now=NOW.replace(tzinfo=None), ca_not_after=CA_NOT_AFTER)
    other_tz = NOW.astimezone(timezone(timedelta(hours=2)))
    aware = evaluate(POLICY, request, now=other_tz, ca_not_after=CA_NOT_AFTER)
    assert naive.not_after == aware.not_after == NOW_S + timedelta(days=1)
    assert aware.not_after.tzinfo == UTC


def test_validity_checked_after_sans() -> None:
    assert violation(dns_names=["evil.test"], validity_days=0).code == "rejected_identifier"


# --------------------------------------------------------------------------- profile validation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key_usages": ("digitalSignature", "frobnicate")}, "Unknown key usage 'frobnicate'"),
        (
            {"extended_key_usages": ("serverAuth", "sorcery")},
            "Unknown extended key usage 'sorcery'",
        ),
        ({"dns_rules": ("a_b.test",)}, "Invalid DNS rule 'a_b.test'"),
        ({"ip_cidrs": ("10.0.0.0/33",)}, "Invalid IP range"),
        ({"key_algorithms": frozenset({"DSA"})}, "Unknown key algorithms"),
        ({"subject_rules": {"XX": SubjectRule()}}, "Unknown subject attributes"),
        ({"validity_days_max": 0}, "Validity days must be at least 1"),
    ],
)
def test_broken_profiles_raise_value_error(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Policy(**fields)


def test_subject_rule_validation() -> None:
    with pytest.raises(ValueError, match="mode"):
        SubjectRule("sometimes")
    with pytest.raises(ValueError, match="Invalid subject pattern"):
        SubjectRule("optional", "([")


def test_dotted_eku_oid_accepted() -> None:
    policy = Policy(
        dns_rules=("a.example.test",), extended_key_usages=("serverAuth", "1.3.6.1.5.5.7.3.17")
    )
    assert (
        decide(policy, dns_names=["a.example.test"]).extended_key_usages[1] == "1.3.6.1.5.5.7.3.17"
    )
