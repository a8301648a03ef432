"""End to end over real HTTP against a live server: issue, renew, revoke, download, and
a 2-of-3 approval policy, with bearer tokens as an automation client would use them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from django.utils import timezone

from issuance import services as issuance

pytestmark = pytest.mark.django_db(transaction=True)


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base + "/api/v1/applications/payments-api"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.base + path, json=body, timeout=30)

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base + path, timeout=30)


@pytest.fixture
def clients(live_server: Any, tokens: dict[str, str]) -> dict[str, Api]:
    return {name: Api(live_server.url, token) for name, token in tokens.items()}


def test_issue_renew_revoke_and_download_over_http(clients: dict[str, Api], make_csr: Any) -> None:
    op = clients["operator"]
    csr = make_csr("api.example.test", ["api.example.test"]).decode()
    with_csr = op.post("/certificates/", {"profile": "tls-server", "csr": csr})
    assert with_csr.status_code == 201, with_csr.text
    assert with_csr.json()["private_key"] is None
    assert x509.load_pem_x509_certificate(with_csr.json()["certificate"].encode())

    generated = op.post(
        "/certificates/",
        {
            "profile": "tls-server",
            "common_name": "gen.example.test",
            "sans": ["gen.example.test"],
            "key_algorithm": "EC_P384",
            "validity_days": 30,
        },
    )
    assert generated.status_code == 201, generated.text
    body = generated.json()
    assert body["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert body["sans"] == ["gen.example.test"]
    shown_again = op.get(f"/certificates/{body['id']}/").json()
    assert "private_key" not in shown_again

    renewed_new = op.post(f"/certificates/{body['id']}/renew/", {"key": "new"})
    assert renewed_new.status_code == 201, renewed_new.text
    assert renewed_new.json()["replaces"] == body["id"]
    assert renewed_new.json()["private_key"] != body["private_key"]
    successor = renewed_new.json()
    renewed_reuse = op.post(f"/certificates/{successor['id']}/renew/", {"key": "reuse"})
    assert renewed_reuse.status_code == 201, renewed_reuse.text
    assert renewed_reuse.json()["private_key"] == successor["private_key"]
    renew_csr = make_csr("api.example.test", ["api.example.test"]).decode()
    renewed_csr = op.post(
        f"/certificates/{with_csr.json()['id']}/renew/", {"key": "csr", "csr": renew_csr}
    )
    assert renewed_csr.status_code == 201, renewed_csr.text
    assert op.get(f"/certificates/{with_csr.json()['id']}/").json()["status"] == "superseded"

    p12 = op.post(
        f"/certificates/{renewed_reuse.json()['id']}/pkcs12/", {"password": "pw-12345678"}
    )
    assert p12.status_code == 200
    assert p12.headers["Content-Type"] == "application/x-pkcs12"
    key, cert, chain = pkcs12.load_key_and_certificates(p12.content, b"pw-12345678")
    assert key is not None and cert is not None
    assert cert.serial_number == int(renewed_reuse.json()["serial_number"], 16)
    assert len(chain) == 2  # issuing CA and root

    pem = op.get(f"/certificates/{renewed_csr.json()['id']}/chain/")
    assert pem.status_code == 200 and pem.text.count("BEGIN CERTIFICATE") == 3

    revoked = op.post(
        f"/certificates/{renewed_csr.json()['id']}/revoke/", {"reason": "keyCompromise"}
    )
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revocation_reason"] == "keyCompromise"
    again = op.post(f"/certificates/{renewed_csr.json()['id']}/revoke/", {"reason": "superseded"})
    assert again.status_code == 409 and again.json()["code"] == "already_revoked"


@pytest.fixture
def two_of_three(clients: dict[str, Api], personas: dict[str, Any]) -> None:
    response = clients["admin"].post(
        "/approval-policies/",
        {
            "name": "two of three",
            "steps": [{"required": 2, "users": ["app-admin", "app-operator", "app-auditor"]}],
        },
    )
    assert response.status_code == 201, response.text


def _held(op: Api, make_csr: Any, name: str) -> str:
    csr = make_csr(name, [name]).decode()
    response = op.post("/certificates/", {"profile": "tls-server", "csr": csr})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending_approval"
    return response.json()["request_id"]


def test_two_of_three_policy_over_http(
    clients: dict[str, Api], two_of_three: None, make_csr: Any
) -> None:
    op = clients["operator"]
    request_id = _held(op, make_csr, "held.example.test")
    own = op.post(f"/requests/{request_id}/approve/", {"comment": "mine"})
    assert own.status_code == 403 and own.json()["code"] == "own_request"

    first = clients["admin"].post(f"/requests/{request_id}/approve/", {"comment": "looks fine"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending_approval"
    assert first.json()["certificate"] is None
    twice = clients["admin"].post(f"/requests/{request_id}/approve/", {"comment": "again"})
    assert twice.status_code == 409 and twice.json()["code"] == "already_decided"

    second = clients["auditor"].post(f"/requests/{request_id}/approve/", {"comment": "agreed"})
    assert second.status_code == 200, second.text
    polled = op.get(f"/requests/{request_id}/").json()
    assert polled["status"] == "issued"
    assert polled["certificate"]["common_name"] == "held.example.test"
    assert [d["approver"] for d in polled["approval"]["decisions"]] == ["app-admin", "app-auditor"]


def test_rejection_and_expiry_end_held_requests(
    clients: dict[str, Api], two_of_three: None, make_csr: Any
) -> None:
    op = clients["operator"]
    rejected_id = _held(op, make_csr, "no.example.test")
    rejected = clients["admin"].post(f"/requests/{rejected_id}/reject/", {"comment": "not ours"})
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reason"] == "not ours"
    late = clients["auditor"].post(f"/requests/{rejected_id}/approve/", {"comment": "x"})
    assert late.status_code == 409 and late.json()["code"] == "not_pending"

    expiring_id = _held(op, make_csr, "slow.example.test")
    assert issuance.expire_pending_requests(now=timezone.now() + timedelta(days=8)) == 1
    assert op.get(f"/requests/{expiring_id}/").json()["status"] == "expired"
    after = clients["admin"].post(f"/requests/{expiring_id}/approve/", {"comment": "too late"})
    assert after.status_code == 409
    assert op.get("/certificates/").json()["count"] == 0
