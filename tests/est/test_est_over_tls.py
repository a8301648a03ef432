"""EST over real TLS: nginx terminates it and passes the client certificate; curl and
openssl are the clients (no packaged EST client exists)."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from applications.choices import Role
from applications.models import AuditEvent
from applications.services import create_application
from approvals import services as approvals
from certportal.events import Actor
from issuance import services as issuance
from issuance.choices import CertificateStatus, EnrollmentMethod
from issuance.est import services as est
from issuance.est.models import EstHeldRequest
from issuance.est.tests.conftest import multipart_parts
from issuance.models import Certificate, CertificateRequest

pytestmark = pytest.mark.interop

ACTOR = Actor(label="pytest")


@dataclass
class Reply:
    status: int
    headers: str
    body: bytes


def run(*args: str | Path, stdin: bytes | None = None) -> bytes:
    done = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def curl(front: dict[str, Any], path: str, *options: str | Path, work: Path) -> Reply:
    headers = work / "headers.txt"
    body = work / "body.bin"
    status = run(
        "curl", "-sS", "--cacert", front["ca"], "-o", body, "-D", headers, "-w", "%{http_code}",
        *options, front["url"] + path,
    )  # fmt: skip
    return Reply(int(status), headers.read_text().lower(), body.read_bytes())


def make_csr(
    work: Path, name: str, cn: str = "dev.example.test", sans: str = "DNS:dev.example.test"
) -> Path:
    """A P-256 key (name.key) and its DER CSR (name.der)."""
    run(
        "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", work / f"{name}.key", "-subj", f"/CN={cn}",
        "-addext", f"subjectAltName={sans}", "-outform", "DER", "-out", work / f"{name}.der",
    )  # fmt: skip
    return work / f"{name}.der"


def b64_file(work: Path, der: Path, *, wrap: bool) -> Path:
    out = work / (der.stem + (".wrapped" if wrap else ".b64"))
    out.write_bytes(run("base64", *([] if wrap else ["-w0"]), der))
    return out


def print_certs(work: Path, body: bytes) -> str:
    der = work / "p7.der"
    der.write_bytes(base64.b64decode(body))
    return run("openssl", "pkcs7", "-inform", "DER", "-in", der, "-print_certs").decode()


def save_pem(work: Path, name: str, pem: str) -> Path:
    path = work / name
    path.write_text(pem)
    return path


def enroll_args(user: str, password: str, body: Path, *extra: str) -> tuple[str, ...]:
    return (
        "-u", f"{user}:{password}", "-H", "Content-Type: application/pkcs10",
        *extra, "--data-binary", f"@{body}",
    )  # fmt: skip


def counts() -> tuple[int, int, int]:
    return (
        CertificateRequest.objects.count(),
        Certificate.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def setup(application: Any, tls_profile: Any) -> dict[str, Any]:
    enrollment = est.save_enrollment(
        application, est.EnrollmentSpec(profile=tls_profile, client_cert_auth=True), actor=ACTOR
    )
    _, password = est.create_credential(enrollment, username="device", actor=ACTOR)
    return {"label": enrollment.label, "password": password, "application": application}


def enroll(
    tls_front: Any, work: Path, setup: dict[str, Any], name: str = "dev"
) -> tuple[Path, Path]:
    """simpleenroll with Basic auth; returns the leaf PEM and its key."""
    body = b64_file(work, make_csr(work, name), wrap=True)
    reply = curl(
        tls_front, f"/.well-known/est/{setup['label']}/simpleenroll",
        *enroll_args("device", setup["password"], body), work=work,
    )  # fmt: skip
    assert reply.status == 200, reply.body
    assert "application/pkcs7-mime; smime-type=certs-only" in reply.headers
    return save_pem(work, f"{name}.pem", print_certs(work, reply.body)), work / f"{name}.key"


def test_cacerts_and_simpleenroll_verify_with_openssl(
    tls_front: Any, work: Path, setup: dict[str, Any]
) -> None:
    reply = curl(tls_front, f"/.well-known/est/{setup['label']}/cacerts", work=work)
    assert reply.status == 200
    chain = print_certs(work, reply.body)
    assert chain.count("BEGIN CERTIFICATE") == 2
    assert "test-issuing CA" in chain and "test-root CA" in chain
    chain_file = save_pem(work, "chain.pem", chain)
    leaf, _ = enroll(tls_front, work, setup)
    verified = run("openssl", "verify", "-CAfile", chain_file, leaf).decode()
    assert verified.strip().endswith(": OK")
    row = Certificate.objects.get()
    assert row.method == EnrollmentMethod.EST
    assert (
        AuditEvent.objects.filter(action="certificate.issued", object_id=str(row.pk)).count() == 1
    )


@pytest.mark.parametrize("shape", ["wrapped", "one-line", "pem"])
@pytest.mark.parametrize("cte", [True, False])
def test_body_shapes_with_and_without_cte(
    tls_front: Any, work: Path, setup: dict[str, Any], shape: str, cte: bool
) -> None:
    der = make_csr(work, "shape")
    if shape == "pem":
        body = work / "shape.pem"
        run("openssl", "req", "-inform", "DER", "-in", der, "-out", body)
    else:
        body = b64_file(work, der, wrap=shape == "wrapped")
    extra = ("-H", "Content-Transfer-Encoding: base64") if cte else ()
    reply = curl(
        tls_front, f"/.well-known/est/{setup['label']}/simpleenroll",
        *enroll_args("device", setup["password"], body, *extra), work=work,
    )  # fmt: skip
    assert reply.status == 200, reply.body


def test_simplereenroll_with_client_certificate_and_new_key(
    tls_front: Any, work: Path, setup: dict[str, Any]
) -> None:
    leaf, key = enroll(tls_front, work, setup)
    body = b64_file(work, make_csr(work, "renewed"), wrap=False)
    reply = curl(
        tls_front, f"/.well-known/est/{setup['label']}/simplereenroll",
        "--cert", leaf, "--key", key, "-H", "Content-Type: application/pkcs10",
        "--data-binary", f"@{body}", work=work,
    )  # fmt: skip
    assert reply.status == 200, reply.body
    new_pem = save_pem(work, "renewed.pem", print_certs(work, reply.body))
    old = Certificate.objects.get(replaces__isnull=True)
    new = Certificate.objects.get(replaces=old)
    assert old.status == CertificateStatus.SUPERSEDED
    new_key = run("openssl", "pkey", "-in", work / "renewed.key", "-pubout")
    assert run("openssl", "x509", "-in", new_pem, "-pubkey", "-noout") == new_key
    assert run("openssl", "x509", "-in", leaf, "-pubkey", "-noout") != new_key
    assert new.fingerprint_sha256 != old.fingerprint_sha256


def test_reenroll_refuses_foreign_revoked_and_untrusted_header(
    tls_front: Any, work: Path, setup: dict[str, Any], tls_profile: Any, settings: Any
) -> None:
    other = create_application(name="other-app", profiles=[tls_profile], actor=ACTOR)
    run(
        "openssl",
        "req",
        "-in",
        make_csr(work, "foreign"),
        "-inform",
        "DER",
        "-out",
        work / "foreign.csr",
    )
    foreign = issuance.submit(
        application=other, profile=tls_profile, method="api", actor=ACTOR,
        csr=(work / "foreign.csr").read_bytes(),
    ).certificate  # fmt: skip
    assert foreign is not None
    foreign_pem = save_pem(work, "foreign.pem", foreign.certificate_pem)
    body = b64_file(work, make_csr(work, "again"), wrap=False)

    def reenroll(cert: Path, key: Path) -> Reply:
        return curl(
            tls_front, f"/.well-known/est/{setup['label']}/simplereenroll",
            "--cert", cert, "--key", key, "-H", "Content-Type: application/pkcs10",
            "--data-binary", f"@{body}", work=work,
        )  # fmt: skip

    before = counts()
    assert reenroll(foreign_pem, work / "foreign.key").status == 403
    assert counts() == before
    leaf, key = enroll(tls_front, work, setup)
    mine = Certificate.objects.get(application=setup["application"])
    settings.CERTPORTAL_TRUSTED_PROXIES = ["192.0.2.1"]  # nginx is no longer trusted
    before = counts()
    assert reenroll(leaf, key).status == 401
    assert counts() == before
    settings.CERTPORTAL_TRUSTED_PROXIES = ["127.0.0.1"]
    issuance.revoke(mine, reason="superseded", actor=ACTOR)
    before = counts()
    assert reenroll(leaf, key).status == 403
    assert counts() == before


def test_serverkeygen_key_matches_certificate(
    tls_front: Any, work: Path, setup: dict[str, Any]
) -> None:
    body = b64_file(work, make_csr(work, "keygen"), wrap=True)
    reply = curl(
        tls_front, f"/.well-known/est/{setup['label']}/serverkeygen",
        *enroll_args("device", setup["password"], body), work=work,
    )  # fmt: skip
    assert reply.status == 200, reply.body
    assert "multipart/mixed" in reply.headers
    content_type = next(
        line.split(":", 1)[1].strip()
        for line in reply.headers.splitlines()
        if line.startswith("content-type:")
    )
    parts = multipart_parts(content_type, reply.body)
    (work / "key.der").write_bytes(parts["application/pkcs8"])
    certificate = save_pem(
        work, "keygen.pem", print_certs(work, base64.b64encode(parts["application/pkcs7-mime"]))
    )
    key_pub = run("openssl", "pkey", "-inform", "DER", "-in", work / "key.der", "-pubout")
    assert run("openssl", "x509", "-in", certificate, "-pubkey", "-noout") == key_pub


def test_csrattrs_parse_with_asn1parse(tls_front: Any, work: Path, setup: dict[str, Any]) -> None:
    reply = curl(tls_front, f"/.well-known/est/{setup['label']}/csrattrs", work=work)
    assert reply.status == 200
    (work / "attrs.der").write_bytes(base64.b64decode(reply.body))
    parsed = run("openssl", "asn1parse", "-inform", "DER", "-in", work / "attrs.der").decode()
    assert "challengePassword" in parsed
    assert "id-ecPublicKey" in parsed and "prime256v1" in parsed
    assert "Extension Request" in parsed and "X509v3 Subject Alternative Name" in parsed


def test_approvals_202_then_certificate_or_403(
    tls_front: Any, work: Path, setup: dict[str, Any], personas: dict[str, Any]
) -> None:
    policy = approvals.PolicySpec(
        name="all", steps=[approvals.StepSpec(required=1, role=Role.ADMIN)]
    )
    approvals.save_policy(setup["application"], policy, actor=ACTOR)
    path = f"/.well-known/est/{setup['label']}/simpleenroll"
    outcomes = {}
    for verdict in ("approve", "reject"):
        body = b64_file(work, make_csr(work, verdict), wrap=True)
        args = enroll_args("device", setup["password"], body)
        first = curl(tls_front, path, *args, work=work)
        assert first.status == 202
        assert "retry-after:" in first.headers
        assert curl(tls_front, path, *args, work=work).status == 202
        held = EstHeldRequest.objects.get(request__state="pending_approval").request
        approvals.decide(
            held, user=personas["admin"], verdict=verdict, comment="decided", actor=ACTOR
        )
        outcomes[verdict] = curl(tls_front, path, *args, work=work)
    assert outcomes["approve"].status == 200
    assert "BEGIN CERTIFICATE" in print_certs(work, outcomes["approve"].body)
    assert outcomes["reject"].status == 403
    assert b"decided" in outcomes["reject"].body


def test_refusals_over_tls_write_nothing(tls_front: Any, work: Path, setup: dict[str, Any]) -> None:
    label = setup["label"]
    body = b64_file(work, make_csr(work, "refused"), wrap=True)
    big = work / "big.b64"
    big.write_bytes(b"A" * 70000)
    garbage = work / "garbage.b64"
    garbage.write_bytes(b"this is not a CSR")
    pkcs10 = ("-H", "Content-Type: application/pkcs10")
    cases = [
        (401, f"/.well-known/est/{label}/simpleenroll", (*pkcs10, "--data-binary", f"@{body}")),
        (401, f"/.well-known/est/{label}/simpleenroll", enroll_args("device", "wrong", body)),
        (
            404,
            "/.well-known/est/no-such-label/simpleenroll",
            enroll_args("device", setup["password"], body),
        ),
        (
            415,
            f"/.well-known/est/{label}/simpleenroll",
            (
                "-u",
                f"device:{setup['password']}",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                f"@{body}",
            ),
        ),
        (
            413,
            f"/.well-known/est/{label}/simpleenroll",
            enroll_args("device", setup["password"], big),
        ),
        (
            400,
            f"/.well-known/est/{label}/simpleenroll",
            enroll_args("device", setup["password"], garbage),
        ),
        (501, f"/.well-known/est/{label}/fullcmc", enroll_args("device", setup["password"], body)),
    ]
    before = counts()
    for status, path, options in cases:
        reply = curl(tls_front, path, *options, work=work)
        assert reply.status == status, (path, reply.body)
        if status == 401:
            assert 'www-authenticate: basic realm="est' in reply.headers
    assert counts() == before
