"""Secrets at rest: AES-256-GCM under a key-encryption key (KEK) from the environment.

A sealed value is text: ``v1:<key id>:<base64(nonce || ciphertext+tag)>``. The key id
(first 8 hex digits of SHA-256 of the KEK) says which key sealed it, so the previous
keys named in CERTPORTAL_KEK_PREVIOUS still open old values while ``rotate_kek``
re-seals them under the current one. The field's label is the associated data, so a
ciphertext copied into another column does not open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

VERSION = "v1"


class SecretError(Exception):
    """A sealed value cannot be opened (unknown key, tampered, or not sealed)."""


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


def seal(plaintext: bytes, *, label: str, ring: KeyRing | None = None) -> str:
    ring = ring or keyring()
    nonce = os.urandom(12)
    blob = nonce + AESGCM(ring.current).encrypt(nonce, plaintext, label.encode())
    return f"{VERSION}:{ring.current_id}:{base64.b64encode(blob).decode()}"


def sealed_key_id(sealed: str) -> str:
    parts = sealed.split(":", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        raise SecretError("value is not a sealed secret")
    return parts[1]


def unseal(sealed: str, *, label: str, ring: KeyRing | None = None) -> bytes:
    ring = ring or keyring()
    kid = sealed_key_id(sealed)
    try:
        blob = base64.b64decode(sealed.split(":", 2)[2], validate=True)
        return AESGCM(ring.find(kid)).decrypt(blob[:12], blob[12:], label.encode())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise SecretError(f"sealed value for {label} cannot be opened") from exc


class SealedField(models.TextField):
    """A TextField that only ever holds sealed values; rotate_kek finds columns by this type.

    It does not decrypt on load: models open the value explicitly when they need the
    plaintext, so listing certificates never touches key material.
    """

    description = "Secret sealed with AES-256-GCM under the KEK"

    def label_for(self, model: type[models.Model]) -> str:
        return f"{model._meta.label}.{self.name}"


def seal_for(instance: models.Model, field_name: str, plaintext: bytes) -> str:
    field = instance._meta.get_field(field_name)
    assert isinstance(field, SealedField)
    return seal(plaintext, label=field.label_for(type(instance)))


def unseal_for(instance: models.Model, field_name: str) -> bytes:
    field = instance._meta.get_field(field_name)
    assert isinstance(field, SealedField)
    return unseal(getattr(instance, field_name), label=field.label_for(type(instance)))
