"""API keys: generated once, shown once, stored only as a salted scrypt hash.

A key reads ``ak_<key id>_<secret>``: the key id (8 hex digits) names its stored hash, so
checking a key costs one hash, not one per key on file, and ``avatarkit keys list`` /
``revoke`` can name a key without knowing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

# scrypt at n=2^14, r=8: about 16 MiB and a few tens of ms per check (the server keeps
# keys it has verified, so a busy backend pays it once per key and reload).
_N, _R, _P, _LEN = 1 << 14, 8, 1, 32
_MAX_MEMORY = 64 << 20  # a stored hash asking for more (128 * N * r bytes) is refused, not run
KEY_ID_RE = re.compile(r"^[0-9a-f]{8}$")
_KEY_RE = re.compile(r"^ak_([0-9a-f]{8})_([A-Za-z0-9_-]{16,128})$")
_HASH_RE = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


def new_key() -> tuple[str, str]:
    """A fresh ``(key id, key)``; the key is shown to its owner once and never stored."""
    key_id = secrets.token_hex(4)
    return key_id, f"ak_{key_id}_{secrets.token_urlsafe(24)}"


def key_id_of(key: str) -> str | None:
    """The key id a presented key claims, or None when it is not shaped like our keys."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


def hash_key(key: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_hash_format(stored: str) -> str | None:
    """Why ``stored`` is not a usable hash (None: it is)."""
    match = _HASH_RE.match(stored)
    if not match:
        return "expected scrypt$N$r$p$salt$digest (written by `avatarkit keys create`)"
    n, r, p = (int(v) for v in match.group(1, 2, 3))
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 4 or 128 * n * r > _MAX_MEMORY:
        return "scrypt parameters out of range (N a power of two, r 1..32, p 1..4, <= 64 MiB)"
    try:
        base64.b64decode(match.group(4), validate=True)
        if len(base64.b64decode(match.group(5), validate=True)) < 16:
            return "digest shorter than 16 bytes"
    except ValueError:
        return "salt or digest is not base64"
    return None


def verify_key(key: str, stored: str) -> bool:
    """Whether ``key`` hashes to ``stored`` (compared in constant time)."""
    match = _HASH_RE.match(stored)
    if not match or check_hash_format(stored):
        return False
    n, r, p = (int(v) for v in match.group(1, 2, 3))
    salt = base64.b64decode(match.group(4))
    expected = base64.b64decode(match.group(5))
    digest = hashlib.scrypt(
        key.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=2 * _MAX_MEMORY
    )
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
