"""Name resolution for http-01 and tls-alpn-01 targets through the configured resolver:
A and AAAA both asked, missing names and failing resolvers refused clearly."""

from __future__ import annotations

import ipaddress

import pytest

from issuance.acme import validation


def test_a_and_aaaa_records_are_both_returned(acme_settings, dns_server):
    dns_server.aaaa["dual.example.test"] = "::1"
    assert validation.resolve_addresses("dual.example.test") == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert validation.resolve_addresses("v4.example.test") == [ipaddress.ip_address("127.0.0.1")]


def test_a_name_that_does_not_exist_is_refused(acme_settings, dns_server):
    dns_server.nxdomain.add("gone.example.test")
    with pytest.raises(validation._Refused, match="has no A or AAAA record") as refused:
        validation.resolve_addresses("gone.example.test")
    assert refused.value.kind == "dns"


def test_a_failing_resolver_is_a_dns_problem(acme_settings, dns_server):
    dns_server.servfail.add("broken.example.test")
    with pytest.raises(validation._Refused, match=r"Looking up broken\.example\.test failed"):
        validation.resolve_addresses("broken.example.test")


def test_an_ip_identifier_is_not_looked_up(acme_settings, dns_server):
    dns_server.servfail.add("192.0.2.7")
    assert validation.resolve_addresses("192.0.2.7") == [ipaddress.ip_address("192.0.2.7")]
