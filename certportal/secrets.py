"""Secrets at rest: AES-256-GCM under a key-encryption key (KEK) from the environment.

A sealed value is text: ``v2:<key id>:<base64(nonce || ciphertext+tag)>``. The key id
(first 8 hex digits of SHA-256 of the KEK) says which key sealed it, so the previous
keys named in CERTPORTAL_KEK_PREVIOUS still open old values while ``rotate_kek``
re-seals them under the current one.

The associated data binds a value to where it belongs: the model, the field and the
row's primary key. A ciphertext copied into another column, or into the same column of
another row (say, a CA key pasted over a leaf's), does not open there. Values are
therefore sealed once the row has its primary key: models with UUID keys know it
before the INSERT; rows with database-assigned keys are sealed right after it
(``seal_into``), in the same transaction.

``v1`` values (bound to model and field only) are still read, so a portal upgraded
before its migration ran keeps working; the migration and ``rotate_kek`` re-seal them
as ``v2`` (``reseal_column``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction

VERSION = "v2"
LEGACY_VERSION = "v1"
VERSIONS = (LEGACY_VERSION, VERSION)


class SecretError(Exception):
    """A sealed value cannot be opened (unknown key, tampered, moved, or not sealed)."""


def _decode_kek(raw: str, name: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{name} is not valid base64") from exc
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name} must decode to 32 bytes, not {len(key)}")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class KeyRing:
    """The current KEK and the previous ones that may still open old values."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def find(self, kid: str) -> bytes:
        for key in (self.current, *self.previous):
            if key_id(key) == kid:
                return key
        raise SecretError(f"no key-encryption key with id {kid} is configured")


@lru_cache(maxsize=4)
def _keyring(current: str, previous: tuple[str, ...]) -> KeyRing:
    return KeyRing(
        current=_decode_kek(current, "CERTPORTAL_KEK"),
        previous=tuple(_decode_kek(p, "CERTPORTAL_KEK_PREVIOUS") for p in previous),
    )


def keyring() -> KeyRing:
    return _keyring(settings.CERTPORTAL_KEK, tuple(settings.CERTPORTAL_KEK_PREVIOUS))


def _associated_data(version: str, label: str, row: str) -> bytes:
    # v1 bound the column only; v2 adds the row. A label never holds "#".
    return (label if version == LEGACY_VERSION else f"{label}#{row}").encode()


def seal(
    plaintext: bytes,
    *,
    label: str,
    row: str,
    ring: KeyRing | None = None,
    version: str = VERSION,
) -> str:
    """Seal for column ``label`` of the row whose primary key is ``row``."""
    ring = ring or keyring()
    nonce = os.urandom(12)
    data = _associated_data(version, label, row)
    blob = nonce + AESGCM(ring.current).encrypt(nonce, plaintext, data)
    return f"{version}:{ring.current_id}:{base64.b64encode(blob).decode()}"


def _parts(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(":", 2)
    if len(parts) != 3 or parts[0] not in VERSIONS:
        raise SecretError("value is not a sealed secret")
    return parts[0], parts[1], parts[2]


def sealed_key_id(sealed: str) -> str:
    return _parts(sealed)[1]


def is_current(sealed: str, ring: KeyRing | None = None) -> bool:
    """Whether a value is sealed in the current format under the current KEK."""
    ring = ring or keyring()
    return sealed.startswith(f"{VERSION}:{ring.current_id}:")


def unseal(sealed: str, *, label: str, row: str, ring: KeyRing | None = None) -> bytes:
    ring = ring or keyring()
    version, kid, encoded = _parts(sealed)
    try:
        blob = base64.b64decode(encoded, validate=True)
        data = _associated_data(version, label, row)
        return AESGCM(ring.find(kid)).decrypt(blob[:12], blob[12:], data)
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise SecretError(
            f"the sealed value in {label} of row {row} cannot be opened: it was tampered "
            "with, or sealed for another row or column"
        ) from exc


class SealedField(models.TextField):
    """A TextField that only ever holds sealed values; rotate_kek finds columns by this type.

    It does not decrypt on load: models open the value explicitly when they need the
    plaintext, so listing certificates never touches key material.
    """

    description = "Secret sealed with AES-256-GCM under the KEK"

    def label_for(self, model: type[models.Model]) -> str:
        return f"{model._meta.label}.{self.name}"


def _sealed_field(instance: models.Model, field_name: str) -> SealedField:
    field = instance._meta.get_field(field_name)
    assert isinstance(field, SealedField)
    return field


def _row_id(instance: models.Model) -> str:
    if instance.pk is None:
        raise ValueError(
            f"{type(instance).__name__} has no primary key yet: a sealed value binds its "
            "row, so save the row first (seal_into) or give the model a UUID key"
        )
    return str(instance.pk)


def seal_for(instance: models.Model, field_name: str, plaintext: bytes) -> str:
    """The sealed value of plaintext for this row's field; the row must have its pk."""
    field = _sealed_field(instance, field_name)
    return seal(plaintext, label=field.label_for(type(instance)), row=_row_id(instance))


def seal_into(instance: models.Model, field_name: str, plaintext: bytes) -> None:
    """Seal plaintext for a saved row and write that column only (one UPDATE).

    For rows whose primary key the database assigns: insert first, then seal, inside
    the caller's transaction."""
    sealed = seal_for(instance, field_name, plaintext)
    type(instance)._default_manager.filter(pk=instance.pk).update(**{field_name: sealed})
    setattr(instance, field_name, sealed)


def unseal_for(instance: models.Model, field_name: str) -> bytes:
    field = _sealed_field(instance, field_name)
    return unseal(
        getattr(instance, field_name),
        label=field.label_for(type(instance)),
        row=_row_id(instance),
    )


RESEAL_BATCH = 500


def reseal_column(
    model: Any, field: SealedField, ring: KeyRing | None = None, *, version: str = VERSION
) -> int:
    """Re-seal every value of one column not yet in ``version`` under the current KEK.

    Works on historical models too (a data migration passes its own). Rows are locked
    while they are rewritten, a batch per transaction; running it twice does no harm.
    Returns how many values it re-sealed.
    """
    ring = ring or keyring()
    label = field.label_for(model)
    current = f"{version}:{ring.current_id}:"
    stale = (
        model._default_manager.exclude(**{field.name: ""})
        .exclude(**{f"{field.name}__startswith": current})
        .order_by("pk")
    )
    count = 0
    while True:
        with transaction.atomic():
            rows = list(stale.select_for_update().values_list("pk", field.name)[:RESEAL_BATCH])
            for pk, sealed in rows:
                plaintext = unseal(sealed, label=label, row=str(pk), ring=ring)
                fresh = seal(plaintext, label=label, row=str(pk), ring=ring, version=version)
                model._default_manager.filter(pk=pk).update(**{field.name: fresh})
                count += 1
        if len(rows) < RESEAL_BATCH:
            return count


def sealed_columns(registry: Any) -> list[tuple[Any, SealedField]]:
    """Every (model, SealedField) of an app registry (the live one or a migration's)."""
    return [
        (model, field)
        for model in registry.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, SealedField)
    ]
