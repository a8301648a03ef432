"""Certificates, CRLs and OCSP checked by the real openssl CLI, over real HTTP."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from issuance.services import revoke, submit

pytestmark = pytest.mark.interop


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.django_db
@pytest.mark.parametrize("algorithm", ["RSA_2048", "EC_P256", "EC_P384", "ED25519"])
def test_openssl_verifies_chain_from_each_ca_algorithm(
    tmp_path, make_ca, make_profile, application, make_csr, actor, algorithm
):
    root = make_ca(f"root-{algorithm.lower()}", algorithm, path_length=1)
    inter = make_ca(f"inter-{algorithm.lower()}", algorithm, parent=root)
    profile = make_profile(f"p-{algorithm.lower()}", inter)
    application.profiles.add(profile)
    leaf = submit(
        application=application,
        profile=profile,
        method="api",
        actor=actor,
        csr=make_csr("app.example.test", ["app.example.test"]),
    ).certificate
    result = openssl(
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-CAfile",
        write(tmp_path / "root.pem", root.certificate_pem),
        "-untrusted",
        write(tmp_path / "inter.pem", inter.certificate_pem),
        write(tmp_path / "leaf.pem", leaf.certificate_pem),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")


def _urls(pem: str) -> tuple[str, str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    crl_dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl_url = crl_dp[0].full_name[0].value
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    ocsp_url = next(
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
    )
    return crl_url, ocsp_url


@pytest.mark.django_db(transaction=True)
def test_revocation_seen_by_openssl_crl_check_and_ocsp(
    tmp_path, live_server, settings, make_ca, make_profile, application, make_csr, actor
):
    settings.CERTPORTAL_BASE_URL = live_server.url
    root = make_ca("live-root", path_length=1)
    inter = make_ca("live-inter", parent=root)
    profile = make_profile("live-tls", inter)
    application.profiles.add(profile)
    leaf = submit(
        application=application,
        profile=profile,
        method="api",
        actor=actor,
        csr=make_csr("app.example.test"),
    ).certificate
    crl_url, ocsp_url = _urls(leaf.certificate_pem)
    assert crl_url.startswith(live_server.url) and ocsp_url.startswith(live_server.url)
    root_pem = write(tmp_path / "root.pem", root.certificate_pem)
    inter_pem = write(tmp_path / "inter.pem", inter.certificate_pem)
    leaf_pem = write(tmp_path / "leaf.pem", leaf.certificate_pem)

    def crl_check() -> subprocess.CompletedProcess[str]:
        der = urllib.request.urlopen(crl_url, timeout=10).read()
        (tmp_path / "crl.der").write_bytes(der)
        converted = openssl(
            "crl",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "crl.der"),
            "-out",
            str(tmp_path / "crl.pem"),
        )
        assert converted.returncode == 0, converted.stderr
        return openssl(
            "verify",
            "-crl_check",
            "-CAfile",
            root_pem,
            "-untrusted",
            inter_pem,
            "-CRLfile",
            str(tmp_path / "crl.pem"),
            leaf_pem,
        )

    def ocsp_status(*extra: str) -> str:
        """openssl's own OCSP client; with -no_nonce it gets the pre-signed answer."""
        result = openssl(
            "ocsp",
            *extra,
            "-issuer",
            inter_pem,
            "-cert",
            leaf_pem,
            "-url",
            ocsp_url,
            "-CAfile",
            root_pem,
            "-verify_other",
            inter_pem,
            "-timeout",
            "10",
        )
        assert "Response verify OK" in result.stderr + result.stdout, result.stderr
        if not extra:
            assert "WARNING: no nonce in response" not in result.stderr + result.stdout
        return result.stdout

    assert crl_check().returncode == 0
    assert f"{leaf_pem}: good" in ocsp_status()
    assert f"{leaf_pem}: good" in ocsp_status("-no_nonce")

    revoke(leaf, reason="keyCompromise", actor=actor)

    rejected = crl_check()
    assert rejected.returncode != 0
    assert "certificate revoked" in rejected.stdout + rejected.stderr
    for status in (ocsp_status(), ocsp_status("-no_nonce")):
        assert f"{leaf_pem}: revoked" in status
        assert "Reason: keyCompromise" in status


@pytest.mark.django_db(transaction=True)
def test_ocsp_unknown_serial_and_wrong_issuer(tmp_path, live_server, settings, make_ca, actor):
    settings.CERTPORTAL_BASE_URL = live_server.url
    root = make_ca("get-root")
    other = make_ca("unrelated-root")
    # A certificate the CA never issued: same issuer, random serial -> "unknown".
    from datetime import timedelta

    from django.utils import timezone

    from pki import certs, keys, names, policy

    decision = policy.Decision(
        subject=names.build_name("ghost.example.test"),
        common_name="ghost.example.test",
        dns_names=("ghost.example.test",),
        ip_addresses=(),
        emails=(),
        uris=(),
        not_before=timezone.now(),
        not_after=timezone.now() + timedelta(days=1),
        key_usages=("digitalSignature",),
        extended_key_usages=("serverAuth",),
    )
    ghost = certs.build_leaf(
        root.issuer(), keys.generate_private_key("EC_P256").public_key(), decision
    )
    from pki import export

    ghost_pem = write(tmp_path / "ghost.pem", export.pem(ghost))
    root_pem = write(tmp_path / "root.pem", root.certificate_pem)
    url = f"{live_server.url}/pki/ocsp/{root.slug}"
    result = openssl(
        "ocsp",
        "-issuer",
        root_pem,
        "-cert",
        ghost_pem,
        "-url",
        url,
        "-CAfile",
        root_pem,
        "-timeout",
        "10",
    )
    assert f"{ghost_pem}: unknown" in result.stdout, result.stdout + result.stderr
    # Asking the wrong CA's responder: "unauthorized" (RFC 6960 2.3), not a guess.
    wrong = f"{live_server.url}/pki/ocsp/{other.slug}"
    result = openssl(
        "ocsp",
        "-issuer",
        root_pem,
        "-cert",
        ghost_pem,
        "-url",
        wrong,
        "-CAfile",
        root_pem,
        "-timeout",
        "10",
    )
    assert "unauthorized" in (result.stdout + result.stderr).lower()
