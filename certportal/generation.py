"""The configuration generation: a number that changes after every committed change to
what requests read about configuration and credentials (profiles, CAs, which profiles an
Application has, approval policies, ACME accounts, API tokens, users and their
permissions, alert rules).

Per-process caches of those (``Cache``; docs/architecture.md lists them) keep an entry
while the generation it was read under is still current. With a shared cache (Redis) a
change made by any process invalidates every process at once; without one, only the
changing process sees it at once and the others within the caches' lifetime
(``CERTPORTAL_CONFIG_CACHE_SECONDS``), which also bounds a change that bypasses the
models (raw SQL); caches of credentials are ``shared_only`` and hold nothing then.

Changes are noticed through the save/delete/m2m signals of the models each ``Cache``
declares it depends on (it connects them itself) plus ``changed()`` after queryset
updates that matter; the bump runs on commit, so no process can cache the old state
under the new number. The generation's key is this module's own: no other module reads
it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from certportal.cache import is_shared

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY = "certportal:config-generation"
_local = [0]
_lock = threading.Lock()


def current() -> tuple[int, int] | None:
    """The generation to tag cached configuration with (read it before reading the data);
    None when the shared cache cannot be reached: then nothing may be served from cache.

    Within one web request the shared part is read once (the first lookup's view holds
    for the request, as a transaction's snapshot would); this process's own changes are
    seen at once."""
    in_request = _in_request()
    shared = getattr(_request, "shared", None) if in_request else None
    if shared is None:
        shared = _read_shared()
        if shared is None:
            return None
        if in_request:  # keep it for the rest of the request
            _request.shared = shared
    return shared, _local[0]


def _read_shared() -> int | None:
    if not is_shared():
        return 0
    try:
        value = cache.get(KEY)
        if value is None:
            # A random start: a key lost from Redis never comes back as an old number.
            cache.add(KEY, secrets.randbits(62), timeout=None)
            value = cache.get(KEY, 0)
    except redis.RedisError as exc:
        # Redis down: the request that needs it answers 503 and logs that
        # (certportal.faults); here one line a minute at most, not one per request.
        _warn_now_and_then(
            f"configuration generation unavailable ({type(exc).__name__}); not caching"
        )
        return None
    except Exception:
        logger.warning("configuration generation unavailable; not caching", exc_info=True)
        return None
    return int(value)


_warned_at = 0.0


def _warn_now_and_then(message: str) -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at >= 60:
        _warned_at = now
        logger.warning(message)


# Per thread: the shared generation read in the current web request, and when that
# request started. Outside a request (a django-q task) it is read on every lookup. The
# memo also ends a second after the request started, so a request_finished that never
# reached this thread cannot keep a stale number: long requests just read it again.
_request = threading.local()
_REQUEST_MEMO = 1.0


def _in_request() -> bool:
    """Whether this thread is in a web request whose memo still holds."""
    started = getattr(_request, "started", None)
    return started is not None and time.monotonic() - started < _REQUEST_MEMO


def request_started(**kwargs: Any) -> None:
    """Signal receiver (request_started)."""
    _request.shared = None
    _request.started = time.monotonic()


def request_finished(**kwargs: Any) -> None:
    """Signal receiver (request_finished)."""
    _request.__dict__.pop("shared", None)
    _request.__dict__.pop("started", None)


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
    if is_shared():
        try:
            cache.incr(KEY)
        except ValueError:  # no such key: any new random start is a change
            cache.set(KEY, secrets.randbits(62), timeout=None)
        except Exception:  # other processes fall back on CERTPORTAL_CONFIG_CACHE_SECONDS
            logger.warning("could not bump the configuration generation", exc_info=True)


# Saves that write only these fields change nothing a cache holds: Django's login writes
# a user's last_login with update_fields, and must not empty every process's caches.
_UNCACHED_FIELDS = frozenset({"last_login"})


def on_model_change(sender: Any, **kwargs: Any) -> None:
    """Signal receiver (post_save, post_delete, m2m_changed)."""
    update_fields = kwargs.get("update_fields")
    if update_fields and _UNCACHED_FIELDS.issuperset(update_fields):
        return
    if kwargs.get("action", "post_").startswith("post_"):
        changed()


def depend_on(*models: str) -> None:
    """Move the generation after every committed save or delete of these models
    ("app_label.ModelName"), and every change of the many-to-many through models among
    them. Each connection is made once, however many caches name the model."""
    for label in models:
        for signal in (post_save, post_delete, m2m_changed):
            signal.connect(
                on_model_change, sender=label, weak=False, dispatch_uid=f"{__name__}:{label}"
            )


class Cache(Generic[T]):
    """A per-process cache of values read from the database, each kept while the
    generation it was read under is current and for at most CERTPORTAL_CONFIG_CACHE_SECONDS.

    ``depends_on`` names every model whose rows the cached values are read from
    ("app_label.ModelName", through models of many-to-many fields too): the cache
    connects their signals itself (``depend_on``), so its invalidation is declared where
    it is defined. Changes made with queryset ``update()`` send no signal: the code that
    makes them calls ``changed()``.

    Values are shared by every caller in the process: callers that may change what they
    get must copy it. ``shared_only`` caches only when a shared cache (Redis) carries the
    generation, so that a change is seen by every process at its commit, never later:
    for what authenticates or authorizes (ACME accounts, API tokens, permission grants).
    """

    def __init__(
        self, *, depends_on: Sequence[str], shared_only: bool = False, max_entries: int = 1024
    ) -> None:
        if not depends_on:
            raise ValueError("a cache names the models it is read from")
        self.depends_on = tuple(depends_on)
        depend_on(*self.depends_on)
        self.shared_only = shared_only
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[tuple[int, int], float, T]] = {}

    def get(self, key: Hashable, load: Callable[[], T | None]) -> T | None:
        """The cached value for key, or load() (cached unless None)."""
        if self.shared_only and not is_shared():
            return load()
        tag = current()
        if tag is None:
            return load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] == tag and entry[1] > now:
            return entry[2]
        value = load()
        if value is not None:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (tag, now + settings.CERTPORTAL_CONFIG_CACHE_SECONDS, value)
        return value
