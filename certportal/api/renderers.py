"""Renderers for file downloads; errors on these endpoints still render as JSON."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.renderers import BaseRenderer


class _FileRenderer(BaseRenderer):
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode()
        if renderer_context and renderer_context.get("response") is not None:
            renderer_context["response"]["Content-Type"] = "application/json"
        return json.dumps(data).encode()


class PemRenderer(_FileRenderer):
    media_type = "application/x-pem-file"
    format = "pem"


class Pkcs12Renderer(_FileRenderer):
    media_type = "application/x-pkcs12"
    format = "p12"
