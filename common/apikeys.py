"""API keys: `trk_<id>_<secret><check>`, made and checked without any table read.

The id (10 base32 characters) names the key's item, so checking a key is one GetItem; the
secret is 32 base62 characters (190 bits) from `secrets`; the check is 6 base32 characters of
CRC-32 over the rest, so a mistyped or truncated key is refused before anything is read. Only
the SHA-256 of the whole key is stored: the key is random, so no slow hash is needed, and a
leaked table gives nothing to log in with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import zlib
from typing import NamedTuple

PREFIX = "trk_"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B62 = string.digits + string.ascii_letters
ID_LENGTH, SECRET_LENGTH, CHECK_LENGTH = 10, 32, 6
KEY_RE = re.compile(
    rf"^{PREFIX}(?P<id>[{_B32}]{{{ID_LENGTH}}})_(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})"
    rf"(?P<check>[{_B32}]{{{CHECK_LENGTH}}})$"
)


class Malformed(ValueError):
    """Not a key of ours: wrong shape or checksum (nothing was looked up)."""


class Key(NamedTuple):
    id: str
    digest: str  # what the table holds


def _check(body: str) -> str:
    crc = zlib.crc32(body.encode()).to_bytes(4, "big")
    return base64.b32encode(crc).decode().lower()[:CHECK_LENGTH]


def new_key() -> tuple[str, str]:
    """A fresh (key id, key): the key is shown once, then only its digest is kept."""
    key_id = "".join(secrets.choice(_B32) for _ in range(ID_LENGTH))
    secret = "".join(secrets.choice(_B62) for _ in range(SECRET_LENGTH))
    body = f"{PREFIX}{key_id}_{secret}"
    return key_id, body + _check(body)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse(key: str) -> Key:
    """The key's id and digest, or Malformed (a typo fails here, before any read)."""
    match = KEY_RE.match(key)
    if match is None:
        raise Malformed("not an API key of this tracker (trk_…)")
    body = key[:-CHECK_LENGTH]
    if not hmac.compare_digest(_check(body), match["check"]):
        raise Malformed("the API key's checksum does not match: mistyped or cut short?")
    return Key(match["id"], digest(key))


def matches(key: Key, stored_digest: str) -> bool:
    return hmac.compare_digest(key.digest, stored_digest)
