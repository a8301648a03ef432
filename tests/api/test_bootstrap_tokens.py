from __future__ import annotations

import json
from io import StringIO
from typing import Any

from django.core.management import call_command
from rest_framework.test import APIClient


def test_bootstrap_demo_json_gives_working_api_tokens_per_role(db: Any) -> None:
    out = StringIO()
    call_command("bootstrap_demo", "--json", stdout=out)
    tokens = json.loads(out.getvalue())["api_tokens"]
    assert set(tokens) == {"admin", "operator", "auditor"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['auditor']}")
    listed = client.get("/api/v1/applications/").json()
    assert [a["slug"] for a in listed["results"]] == ["payments-api"]
    again = StringIO()
    call_command("bootstrap_demo", "--json", stdout=again)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['auditor']}")
    assert client.get("/api/v1/applications/").status_code == 401  # the old one is revoked
