"""Shared fixtures: one CA hierarchy per key algorithm, built once per session.

RSA key generation dominates the suite's runtime, so keys are generated here once and
reused; tests needing a throwaway key should prefer EC P-256 or Ed25519.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from pki.certs import Issuer, build_intermediate_ca, build_leaf, build_root_ca
from pki.export import pem
from pki.keys import PrivateKey, describe_public_key, generate_private_key
from pki.names import build_name
from pki.policy import Decision, Policy, Request, evaluate

CA_ALGORITHMS = ("RSA_2048", "EC_P256", "EC_P384", "ED25519")
LEAF_POLICY = Policy(dns_rules=(".example.test",), ip_cidrs=("10.0.0.0/8",))

FileData = bytes | str | x509.Certificate | list[x509.Certificate]
requires_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@dataclass(frozen=True)
class Hierarchy:
    root_key: PrivateKey
    root: x509.Certificate
    inter_key: PrivateKey
    inter: x509.Certificate
    issuer: Issuer  # the intermediate, with CRL/OCSP/caIssuers URLs

    def leaf(self, key: PrivateKey, *names: str, ips: tuple[str, ...] = ()) -> x509.Certificate:
        return build_leaf(self.issuer, key.public_key(), self.decision(key, *names, ips=ips))

    def decision(self, key: PrivateKey, *names: str, ips: tuple[str, ...] = ()) -> Decision:
        request = Request(
            describe_public_key(key),
            common_name=names[0] if names else None,
            dns_names=names,
            ip_addresses=ips,
        )
        ca_not_after = self.inter.not_valid_after_utc
        return evaluate(LEAF_POLICY, request, now=utcnow(), ca_not_after=ca_not_after)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def make_hierarchy(algorithm: str) -> Hierarchy:
    now = utcnow()
    root_key = generate_private_key(algorithm)
    root = build_root_ca(
        root_key,
        build_name(f"Test Root {algorithm}", organization="certportal tests", country="DE"),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=3650),
        path_length=1,
    )
    inter_key = generate_private_key(algorithm)
    inter = build_intermediate_ca(
        Issuer(root, root_key),
        inter_key.public_key(),
        build_name(f"Test Issuing CA {algorithm}", organization="certportal tests"),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=1825),
    )
    issuer = Issuer(
        inter,
        inter_key,
        crl_url="http://pki.example.test/crl/inter.crl",
        ocsp_url="http://pki.example.test/ocsp",
        ca_issuers_url="http://pki.example.test/ca/inter.der",
    )
    return Hierarchy(root_key, root, inter_key, inter, issuer)


_HIERARCHIES: dict[str, Hierarchy] = {}


def hierarchy_for(algorithm: str) -> Hierarchy:
    if algorithm not in _HIERARCHIES:
        _HIERARCHIES[algorithm] = make_hierarchy(algorithm)
    return _HIERARCHIES[algorithm]


@pytest.fixture(scope="session", params=CA_ALGORITHMS)
def hierarchy(request: pytest.FixtureRequest) -> Hierarchy:
    return hierarchy_for(request.param)


@pytest.fixture(scope="session")
def ec_hierarchy() -> Hierarchy:
    return hierarchy_for("EC_P256")


@pytest.fixture(scope="session")
def rsa_key() -> PrivateKey:
    return generate_private_key("RSA_2048")


@pytest.fixture
def ec_key() -> PrivateKey:
    return generate_private_key("EC_P256")


# --------------------------------------------------------------------------- openssl


@dataclass
class OpenSSL:
    workdir: Path

    def write(self, name: str, data: FileData) -> str:
        if isinstance(data, x509.Certificate):
            data = pem(data)
        elif isinstance(data, list):
            data = "".join(pem(c) for c in data)
        path = self.workdir / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def verify(
        self,
        root: x509.Certificate,
        chain: list[x509.Certificate],
        leaf: x509.Certificate,
        *extra: str,
    ) -> subprocess.CompletedProcess[str]:
        args = ["verify", "-CAfile", self.write("root.pem", root)]
        if chain:
            args += ["-untrusted", self.write("chain.pem", chain)]
        return self.run(*args, *extra, self.write("leaf.pem", leaf))


@pytest.fixture
def openssl(tmp_path: Path) -> Iterator[OpenSSL]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    yield OpenSSL(tmp_path)
