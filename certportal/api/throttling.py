"""Per-token throttling in the shared cache (Redis when REDIS_URL is set).

A fixed-window counter (``certportal.cache.count_in_window``): one atomic increment per
request whatever the rate. (DRF's SimpleRateThrottle keeps every request's timestamp in
one cache value and rewrites it on each request, so its cost grows with the rate: at a
few hundred requests a second that value is tens of kilobytes read and written per
call.)
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from certportal import cache
from certportal.api.models import ApiToken
from certportal.clientip import client_ip


class TokenRateThrottle(SimpleRateThrottle):
    """One bucket per API token; session users per user, anonymous callers per address."""

    scope = "token"
    cache_format = "throttle_%(scope)s_%(ident)s"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiToken):
            ident = f"t{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            ident = f"a{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def get_ident(self, request: Request) -> str:
        # DRF's own reads X-Forwarded-For from anyone (NUM_PROXIES unset): a client
        # could name a new address per request and never be throttled.
        return client_ip(request) or "unknown"

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        window = cache.count_in_window(key, self.duration, now=self.timer())
        self.ends_in = window.ends_in
        return window.count <= self.num_requests

    def wait(self) -> float | None:
        return max(self.ends_in, 0.0)
