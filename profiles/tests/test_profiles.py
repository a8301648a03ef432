"""Certificate profiles: presets, and every policy field validated with a clear message."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from applications.models import AuditEvent
from profiles.choices import Preset
from profiles.models import CertificateProfile
from profiles.services import create_profile, update_profile

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("preset", [p.value for p in Preset])
def test_every_preset_makes_a_valid_profile(issuing_ca, actor, preset):
    profile = create_profile(
        actor=actor, preset=preset, name=f"p-{preset}", slug=f"p-{preset}", issuing_ca=issuing_ca
    )
    assert profile.preset == preset
    assert profile.policy().validity_days_max == profile.validity_days_max
    assert AuditEvent.objects.filter(action="profile.created", object_id=str(profile.pk)).exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"validity_days_default": 400, "validity_days_max": 397},
            "validity_days_default",
            "The default validity cannot exceed the maximum.",
        ),
        (
            {"validity_days_default": 30, "renewal_window_days": 30},
            "renewal_window_days",
            "The renewal window (30 days) must be shorter than the default validity (30 days), "
            "or renewal would loop.",
        ),
        ({"key_algorithms": ["RSA", "DSA"]}, "key_algorithms", "Unknown key algorithms: DSA."),
        ({"ec_curves": ["secp256k1"]}, "ec_curves", "Unknown curves: secp256k1."),
        ({"rsa_min_bits": 1024}, "rsa_min_bits", "RSA keys below 2048 bits are not allowed."),
        ({"ip_cidrs": ["10.0.0.1/8"]}, "ip_cidrs", "'10.0.0.1/8' is not a CIDR network"),
        (
            {"key_usages": ["digitalSignature", "teleport"]},
            "key_usages",
            "Unknown key usage 'teleport'.",
        ),
        (
            {"extended_key_usages": ["serverAuth", "mindReading"]},
            "extended_key_usages",
            "Unknown extended key usage 'mindReading'.",
        ),
        (
            {"subject_rules": {"CN": {"mode": "sometimes"}}},
            "subject_rules",
            "CN: mode must be drop, optional or required.",
        ),
        (
            {"subject_rules": {"CN": {"mode": "optional", "pattern": "("}}},
            "subject_rules",
            "CN: pattern is not a valid regular expression",
        ),
        (
            {"subject_rules": {"L": {"mode": "optional"}}},
            "subject_rules",
            "Subject attribute 'L' is not supported.",
        ),
        ({"dns_rules": ["exa mple.test"]}, "dns_rules", "DNS rule 'exa mple.test':"),
        ({"dns_rules": "example.test"}, "dns_rules", "DNS rules must be a list of strings."),
    ],
)
def test_invalid_policy_fields_are_refused_with_a_message(
    issuing_ca, actor, fields, field, message
):
    with pytest.raises(ValidationError) as exc:
        create_profile(
            actor=actor,
            preset=Preset.TLS_SERVER,
            name="bad",
            slug="bad",
            issuing_ca=issuing_ca,
            **fields,
        )
    errors = exc.value.message_dict
    assert field in errors, errors
    assert any(m.startswith(message) for m in errors[field]), errors[field]
    assert not CertificateProfile.objects.filter(slug="bad").exists()


def test_update_profile_validates_and_audits(tls_profile, actor):
    with pytest.raises(ValidationError):
        update_profile(tls_profile, actor=actor, validity_days_max=10)
    tls_profile.refresh_from_db()
    assert tls_profile.validity_days_max == 397
    update_profile(tls_profile, actor=actor, validity_days_max=200)
    tls_profile.refresh_from_db()
    assert tls_profile.validity_days_max == 200
    assert AuditEvent.objects.filter(action="profile.updated").count() == 1


def test_unknown_profile_field_is_a_programming_error(tls_profile, actor):
    with pytest.raises(TypeError, match="unknown profile fields: colour"):
        update_profile(tls_profile, actor=actor, colour="blue")
