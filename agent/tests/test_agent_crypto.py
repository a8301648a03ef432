"""CSRs built on the host carry exactly the configured names."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from certportal_agent import crypto


def test_a_csr_with_only_sans_has_an_empty_subject() -> None:
    key = crypto.generate_key("EC_P256")
    csr = x509.load_pem_x509_csr(crypto.build_csr(key, "", ("a.example.test", "127.0.0.1")))
    assert list(csr.subject) == []
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert csr.is_signature_valid


@pytest.mark.parametrize("key_type", ["RSA_2048", "EC_P384", "ED25519"])
def test_each_key_type_signs_its_csr(key_type: str) -> None:
    key = crypto.generate_key(key_type)
    csr = x509.load_pem_x509_csr(crypto.build_csr(key, "cn.example.test", ()))
    assert csr.is_signature_valid
    assert crypto.public_der(key) == crypto.public_der(csr)  # type: ignore[arg-type]
