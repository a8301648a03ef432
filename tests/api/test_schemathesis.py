"""Property-based run of every operation in /api/schema/ with valid tokens, with data
that fits the schema and data that breaks it: no 5xx, data that breaks the schema is
refused (4xx), and every response conforms to the schema (status code, content type,
body)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.checks import negative_data_rejection

CHECKS = [
    negative_data_rejection,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _schema() -> dict[str, Any]:
    """The schema /api/schema/ serves, built at collection time (no database needed)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


schema = schemathesis.openapi.from_dict(_schema())


@pytest.fixture
def keep_test_connection() -> Any:
    """Calls go straight to the WSGI app: keep it from closing the test transaction's
    connection at the end of each request (Django's test client does the same)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(
    case: Any, world: Any, tokens: dict[str, str], keep_test_connection: None
) -> None:
    case.call_and_validate(
        app=get_wsgi_application(),
        headers={"Authorization": f"Bearer {tokens['admin']}"},
        checks=CHECKS,
    )
