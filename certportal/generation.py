"""The configuration generation: a number that changes after every committed change to
what issuance reads about its configuration (profiles, CAs, which profiles an
Application has, approval policies).

Per-process caches of that configuration (``issuance.services.attached_profile``) keep
an entry while the generation it was read under is still current. With a shared cache
(Redis) a change made by any process invalidates every process at once; without one,
only the changing process sees it at once and the others within the caches' lifetime
(``CERTPORTAL_CONFIG_CACHE_SECONDS``), which also bounds a change that bypasses the
models (raw SQL).

Changes are noticed through the models' save/delete/m2m signals (wired in
``issuance.apps``) plus ``changed()`` after queryset updates that matter; the bump runs
on commit, so no process can cache the old state under the new number.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from django.core.cache import cache
from django.db import transaction

from certportal import queue

logger = logging.getLogger(__name__)

_KEY = "certportal:config-generation"
_local = [0]
_lock = threading.Lock()


def current() -> tuple[int, int] | None:
    """The generation to tag cached configuration with (read it before reading the data);
    None when the shared cache cannot be reached: then nothing may be served from cache."""
    shared = 0
    if queue.shared_cache():
        try:
            value = cache.get(_KEY)
            if value is None:
                # A random start: a key lost from Redis never comes back as an old number.
                cache.add(_KEY, secrets.randbits(62), timeout=None)
                value = cache.get(_KEY, 0)
        except Exception:
            logger.warning("configuration generation unavailable; not caching", exc_info=True)
            return None
        shared = int(value)
    return shared, _local[0]


def changed() -> None:
    """Configuration changed in the current transaction. This process moves on at once (it
    reads its own writes, committed or not); every process moves on at commit."""
    _bump_local()
    transaction.on_commit(_bump)


def _bump_local() -> None:
    with _lock:
        _local[0] += 1


def _bump() -> None:
    _bump_local()
    if queue.shared_cache():
        try:
            cache.incr(_KEY)
        except ValueError:  # no such key: any new random start is a change
            cache.set(_KEY, secrets.randbits(62), timeout=None)
        except Exception:  # other processes fall back on CERTPORTAL_CONFIG_CACHE_SECONDS
            logger.warning("could not bump the configuration generation", exc_info=True)


def on_model_change(sender: Any, **kwargs: Any) -> None:
    """Signal receiver (post_save, post_delete, m2m_changed)."""
    if kwargs.get("action", "post_").startswith("post_"):
        changed()
