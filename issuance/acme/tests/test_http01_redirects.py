"""http-01 follows redirects like Let's Encrypt: a bounded number, http or https only, on
the ports settings name, every new host resolved and checked like the first."""

from __future__ import annotations

import pytest

from issuance.acme import validation
from issuance.acme.tests.support import HTTP01_PORT, TLSALPN01_PORT, http_routes

TOKEN = "tok3n"
PROOF = f"{TOKEN}.thumbprint"
START = f"/.well-known/acme-challenge/{TOKEN}"


def check(settings) -> validation.Failure:
    # Every hop goes through the same fetch as the first: resolved with the configured
    # resolver and held to CERTPORTAL_OUTBOUND_ALLOW_PRIVATE (tested for the first hop).
    return validation.http01("app.example.test", TOKEN, PROOF)


def chain(length: int) -> dict[str, tuple[int, str]]:
    """START -> /hop/length -> ... -> /hop/1 -> /proof."""
    routes = {START: (302, f"/hop/{length}") if length else (200, PROOF)}
    for n in range(length, 0, -1):
        routes[f"/hop/{n}"] = (301, f"/hop/{n - 1}" if n > 1 else "/proof")
    routes["/proof"] = (200, PROOF)
    return routes


def test_a_short_chain_of_redirects_is_followed(acme_settings):
    with http_routes(chain(3), HTTP01_PORT):
        assert check(acme_settings) is None


def test_absolute_redirects_to_another_name_are_resolved_and_followed(acme_settings):
    routes = {
        START: (307, f"http://other.example.test:{HTTP01_PORT}/elsewhere"),
        "/elsewhere": (200, PROOF),
    }
    with http_routes(routes, HTTP01_PORT):
        assert check(acme_settings) is None


def test_more_than_ten_redirects_fail(acme_settings):
    with http_routes(chain(validation.MAX_REDIRECTS + 1), HTTP01_PORT):
        assert check(acme_settings) == (
            "connection",
            f"More than {validation.MAX_REDIRECTS} redirects.",
        )


@pytest.mark.parametrize(
    ("location", "detail"),
    [
        ("ftp://app.example.test/x", "Redirect to ftp URL refused."),
        (f"http://app.example.test:{HTTP01_PORT + 7}/x", f"http port {HTTP01_PORT + 7}"),
        ("https://app.example.test:8443/x", "https port 8443"),
        ("http://:99999/x", "Redirect to a malformed URL refused."),
    ],
)
def test_redirects_to_other_schemes_or_ports_are_refused(acme_settings, location, detail):
    with http_routes({START: (302, location)}, HTTP01_PORT):
        failure = check(acme_settings)
    assert failure is not None and failure[0] == "connection" and detail in failure[1]


def test_a_redirect_to_https_is_followed_without_checking_the_certificate(acme_settings):
    secure = f"https://app.example.test:{TLSALPN01_PORT}/proof"
    with (
        http_routes({START: (302, secure)}, HTTP01_PORT),
        http_routes({"/proof": (200, PROOF)}, TLSALPN01_PORT, tls=True),
    ):
        assert check(acme_settings) is None


def test_the_final_answer_must_still_be_the_key_authorization(acme_settings):
    with http_routes({START: (302, "/proof"), "/proof": (200, "wrong")}, HTTP01_PORT):
        assert check(acme_settings) == (
            "unauthorized",
            "http-01 answer is not the key authorization.",
        )
