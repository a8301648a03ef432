"""micromdm's scepclient against the portal: enroll with the static challenge, with a
one-time challenge (then refused the second time), renew with the issued certificate;
each leaf verifies with ``openssl verify``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.models import Certificate
from issuance.scep import services
from pki.certs import fingerprint_sha256
from tests.scep.conftest import ACTOR, STATIC, Portal, openssl_verify, portal_for, scepclient

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]


def _leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _enrolled(
    portal: Portal, tmp_path: Path, *extra: str, **kwargs: Any
) -> tuple[Path, x509.Certificate]:
    workdir = tmp_path / "device"
    workdir.mkdir(exist_ok=True)
    done = scepclient(portal.url, workdir, *extra, **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    cert = workdir / "cert.pem"
    verified = openssl_verify(portal, cert, tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return workdir, _leaf(cert)


def test_scepclient_enrolls_with_the_static_challenge(portal: Portal, tmp_path: Path) -> None:
    _, leaf = _enrolled(portal, tmp_path, cn="device-01", challenge=STATIC)
    row = Certificate.objects.get(fingerprint_sha256=fingerprint_sha256(leaf))
    assert row.method == EnrollmentMethod.SCEP
    assert row.common_name == "device-01"


def test_scepclient_one_time_challenge_is_single_use(portal: Portal, tmp_path: Path) -> None:
    _, secret = services.mint_challenge(portal.enrollment, actor=ACTOR, expected_cn="device-02")
    _enrolled(portal, tmp_path, cn="device-02", challenge=secret)
    again = tmp_path / "again"
    again.mkdir()
    refused = scepclient(portal.url, again, cn="device-02", challenge=secret)
    assert refused.returncode != 0
    assert "failInfo" in refused.stdout + refused.stderr
    assert not (again / "cert.pem").exists()
    assert Certificate.objects.count() == 1


def test_scepclient_renews_with_the_issued_certificate(portal: Portal, tmp_path: Path) -> None:
    workdir, first = _enrolled(portal, tmp_path, cn="device-03", challenge=STATIC)
    renewed = scepclient(portal.url, workdir, cn="device-03")  # no challenge: RenewalReq
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = _leaf(workdir / "cert.pem")
    assert second.serial_number != first.serial_number
    assert openssl_verify(portal, workdir / "cert.pem", tmp_path).returncode == 0
    old = Certificate.objects.get(fingerprint_sha256=fingerprint_sha256(first))
    new = Certificate.objects.get(fingerprint_sha256=fingerprint_sha256(second))
    assert new.replaces_id == old.pk and old.status == CertificateStatus.SUPERSEDED


def test_scepclient_wrong_challenge_is_refused(portal: Portal, tmp_path: Path) -> None:
    workdir = tmp_path / "wrong"
    workdir.mkdir()
    refused = scepclient(portal.url, workdir, cn="device-04", challenge="not-the-challenge-at-all")
    assert refused.returncode != 0
    assert "failInfo" in refused.stdout + refused.stderr
    assert Certificate.objects.count() == 0


def test_scepclient_is_refused_while_legacy_algorithms_are_off(
    portal: Portal, tmp_path: Path
) -> None:
    services.update(portal.enrollment, actor=ACTOR, allow_legacy=False)
    workdir = tmp_path / "modern"
    workdir.mkdir()
    refused = scepclient(portal.url, workdir, cn="device-05", challenge=STATIC)
    assert refused.returncode != 0
    assert "badAlg" in refused.stdout + refused.stderr
    assert Certificate.objects.count() == 0


def test_scepclient_with_an_ec_ca_picks_the_ra_by_fingerprint(
    live_server: Any, make_ca: Any, make_profile: Any, tmp_path: Path
) -> None:
    """An EC CA cannot receive an envelope, and scepclient encrypts to every certificate
    of GetCACert unless told the RA's fingerprint: with it, an EC CA's profile works."""
    portal = portal_for(live_server, make_ca, make_profile, "EC_P256")
    ra = services.current_ra(portal.enrollment).certificate
    fingerprint = hashlib.sha256(ra.public_bytes(Encoding.DER)).hexdigest()
    _, leaf = _enrolled(
        portal, tmp_path, "-ca-fingerprint", fingerprint, cn="device-06", challenge=STATIC
    )
    assert leaf.issuer == portal.chain[0].certificate().subject
