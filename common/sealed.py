"""Secrets at rest: AES-256-GCM (`cryptography`) under `TRACKER_SECRET_KEY`.

A sealed value is `v1` + 12-byte random nonce + ciphertext and tag. The associated data names
the item and field the value belongs to (`channel:<user>:<id>:url`), so a sealed value copied
into another item does not open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.errors import TrackerError

VERSION = b"v1"
NONCE = 12


class SealError(TrackerError):
    """A sealed value does not open under this key (another key, or tampered with)."""


def new_secret_key() -> str:
    """A fresh key, as `TRACKER_SECRET_KEY` takes it: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def key_bytes(text: str) -> bytes:
    """`TRACKER_SECRET_KEY`'s 32 bytes: the key itself in URL-safe base64, or the SHA-256 of
    a random text of at least 40 characters (what a secret store generates); else
    ValueError saying what it must be."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 32:
        return raw
    if len(text) >= 40:
        return hashlib.sha256(text.encode()).digest()
    raise ValueError(
        "must be 32 random bytes in URL-safe base64, or a random text of 40 characters or more"
    )


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = os.urandom(NONCE)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        if not sealed.startswith(VERSION):
            raise SealError(f"unknown sealed format for {context}")
        nonce, body = sealed[2 : 2 + NONCE], sealed[2 + NONCE :]
        try:
            return self._aead.decrypt(nonce, body, context.encode()).decode()
        except InvalidTag:
            raise SealError(
                f"cannot open the secret of {context}: TRACKER_SECRET_KEY is not the key it was "
                "sealed with"
            ) from None
