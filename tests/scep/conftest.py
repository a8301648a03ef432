"""micromdm's scepclient (Debian package ``scep``) against the portal in a live server
thread: an RSA root and issuing CA, an mTLS-client profile with SCEP switched on."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from applications.services import create_application
from certportal.events import Actor
from issuance.scep import services
from issuance.scep.models import ScepEnrollment
from profiles.choices import Preset
from profiles.models import CertificateAuthority

ACTOR = Actor(label="pytest")
STATIC = "interop-static-challenge-0123"
SCEPCLIENT = shutil.which("scepclient") or "/usr/bin/scepclient"


@dataclass
class Portal:
    url: str
    enrollment: ScepEnrollment
    chain: list[CertificateAuthority]  # issuing CA first, then the root


def portal_for(
    live_server: Any,
    make_ca: Callable[..., CertificateAuthority],
    make_profile: Any,
    algorithm: str,
) -> Portal:
    root = make_ca("scep-root", algorithm=algorithm, path_length=1)
    issuing = make_ca("scep-issuing", algorithm=algorithm, parent=root)
    profile = make_profile("mtls-client", issuing, preset=Preset.TLS_CLIENT)
    application = create_application(name="payments-api", profiles=[profile], actor=ACTOR)
    # Debian's scepclient (micromdm 2.1.0) encrypts with single DES and signs with SHA-1
    # whatever the capabilities say: only the legacy toggle lets it in.
    enrollment = services.enable(application, profile, actor=ACTOR, allow_legacy=True)
    services.set_static_challenge(enrollment, actor=ACTOR, challenge=STATIC)
    url = f"{live_server.url}/scep/payments-api/mtls-client/pkiclient.exe"
    return Portal(url, enrollment, [issuing, root])


@pytest.fixture
def portal(live_server: Any, make_ca: Any, make_profile: Any) -> Portal:
    if not Path(SCEPCLIENT).exists():
        pytest.fail("scepclient is missing: apt-get install -y scep")
    return portal_for(live_server, make_ca, make_profile, "RSA_2048")


def scepclient(
    url: str, workdir: Path, *extra: str, cn: str = "device-01", challenge: str | None = None
) -> subprocess.CompletedProcess[str]:
    args = [
        SCEPCLIENT,
        "-server-url", url,
        "-private-key", str(workdir / "key.pem"),
        "-certificate", str(workdir / "cert.pem"),
        "-cn", cn,
        *extra,
    ]  # fmt: skip
    if challenge is not None:
        args += ["-challenge", challenge]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def openssl_verify(portal: Portal, leaf: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    issuing, root = portal.chain
    (tmp_path / "root.pem").write_text(root.certificate_pem)
    (tmp_path / "issuing.pem").write_text(issuing.certificate_pem)
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"),
         "-untrusted", str(tmp_path / "issuing.pem"), str(leaf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
