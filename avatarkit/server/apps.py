"""The apps a server hosts: ``avatarkit serve --config apps.toml``, or one app from the env.

An apps file lists apps, each with its API keys (salted hashes, see
:mod:`avatarkit.server.apikeys`), the avatars it may drive, its live-session limit and the
longest token the Console API issues it::

    [[apps]]
    id = "kiosk"
    avatars = ["ava", "kai"]   # optional: omitted, every avatar the server serves
    max_sessions = 10         # live sessions at once, on every worker; 0: no limit
    max_token_ttl_s = 3600    # at most 86400

    [[apps.keys]]
    id = "3f2a9c01"
    hash = "scrypt$16384$8$1$...$..."
    created = "2026-12-03T13:00:00Z"
    label = "prod"

The server re-reads the file when it changes (checked on each Console API and ingress
request), so ``avatarkit keys create`` / ``revoke`` take effect without a restart; a file
that no longer validates is logged and the last good one stays in force.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.server.apikeys import KEY_ID_RE, check_hash_format, key_id_of, verify_key

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1 << 20
MAX_APPS = 1000
MAX_KEYS_PER_APP = 8
MAX_AVATARS_PER_APP = 1000
MAX_TOKEN_TTL_S = 24 * 3600.0
APP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
AVATAR_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # what the ingress accepts
_APP_FIELDS = {"id", "avatars", "max_sessions", "max_token_ttl_s", "keys"}
_KEY_FIELDS = {"id", "hash", "created", "label"}


@dataclass(frozen=True)
class AppKey:
    key_id: str
    hash: str
    created: str = ""
    label: str = ""


@dataclass(frozen=True)
class AppPolicy:
    app_id: str
    keys: tuple[AppKey, ...] = ()
    avatars: frozenset[str] | None = None  # None: any avatar the server serves
    max_sessions: int = 0  # 0: no limit
    max_token_ttl_s: float = MAX_TOKEN_TTL_S

    def key(self, key_id: str) -> AppKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    def allows(self, avatar_id: str) -> bool:
        return self.avatars is None or avatar_id in self.avatars


def invalid(path: str | os.PathLike[str], where: str, why: str) -> AvatarKitError:
    return AvatarKitError(ErrorCode.INVALID_CONFIG, f"{path}: {where}: {why}")


def load_apps(path: str | os.PathLike[str]) -> dict[str, AppPolicy]:
    """The apps of ``path``, validated; raises ``invalidConfig`` naming the file and field."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AvatarKitError(
            ErrorCode.INVALID_CONFIG, f"{path}: cannot read: {exc.strerror or exc}"
        ) from None
    return parse_apps(raw, path)


def parse_apps(raw: bytes, path: str | os.PathLike[str] = "apps.toml") -> dict[str, AppPolicy]:
    if len(raw) > MAX_FILE_BYTES:
        raise invalid(path, "file", f"larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise invalid(path, "file", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise invalid(path, "TOML", str(exc)) from None
    unknown = set(document) - {"apps"}
    if unknown:
        raise invalid(path, "top level", f"unknown keys {sorted(unknown)} (expected [[apps]])")
    entries = document.get("apps", [])
    if not isinstance(entries, list) or not entries:
        raise invalid(path, "apps", "at least one [[apps]] table is required")
    if len(entries) > MAX_APPS:
        raise invalid(path, "apps", f"more than {MAX_APPS} apps")
    apps: dict[str, AppPolicy] = {}
    for index, entry in enumerate(entries):
        app = _parse_app(entry, f"apps[{index}]", path)
        if app.app_id in apps:
            raise invalid(path, f"apps[{index}].id", f"{app.app_id!r} appears twice")
        apps[app.app_id] = app
    key_ids = [key.key_id for app in apps.values() for key in app.keys]
    if len(set(key_ids)) != len(key_ids):
        raise invalid(path, "keys", "a key id appears in two apps (ids are unique per file)")
    return apps


def _parse_app(entry: Any, where: str, path: str | os.PathLike[str]) -> AppPolicy:
    _check_table(entry, _APP_FIELDS, where, path)
    app_id = entry.get("id")
    if not isinstance(app_id, str) or not APP_ID_RE.match(app_id):
        raise invalid(path, f"{where}.id", "required: 1-64 of A-Z a-z 0-9 . _ -, not first . _ -")
    avatars = entry.get("avatars")
    if avatars is not None:
        if not isinstance(avatars, list) or len(avatars) > MAX_AVATARS_PER_APP:
            raise invalid(path, f"{where}.avatars", f"a list of at most {MAX_AVATARS_PER_APP} ids")
        for avatar in avatars:
            if not isinstance(avatar, str) or not AVATAR_ID_RE.match(avatar):
                raise invalid(path, f"{where}.avatars", f"{avatar!r} is not an avatar id")
    max_sessions = entry.get("max_sessions", 0)
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 0:
        raise invalid(path, f"{where}.max_sessions", "an integer >= 0 (0: no limit)")
    ttl = entry.get("max_token_ttl_s", MAX_TOKEN_TTL_S)
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not math.isfinite(ttl)
        or not 0 < ttl <= MAX_TOKEN_TTL_S
    ):
        raise invalid(path, f"{where}.max_token_ttl_s", f"seconds, > 0 and <= {MAX_TOKEN_TTL_S:g}")
    keys = entry.get("keys", [])
    if not isinstance(keys, list) or len(keys) > MAX_KEYS_PER_APP:
        raise invalid(path, f"{where}.keys", f"a list of at most {MAX_KEYS_PER_APP} [[apps.keys]]")
    parsed = tuple(_parse_key(k, f"{where}.keys[{i}]", path) for i, k in enumerate(keys))
    return AppPolicy(
        app_id=app_id,
        keys=parsed,
        avatars=None if avatars is None else frozenset(avatars),
        max_sessions=max_sessions,
        max_token_ttl_s=float(ttl),
    )


def _check_table(entry: Any, fields: set[str], where: str, path: str | os.PathLike[str]) -> None:
    """``entry`` is a TOML table holding only ``fields``."""
    if not isinstance(entry, dict):
        raise invalid(path, where, "must be a table")
    unknown = set(entry) - fields
    if unknown:
        raise invalid(path, where, f"unknown keys {sorted(unknown)}; known: {sorted(fields)}")


def _parse_key(entry: Any, where: str, path: str | os.PathLike[str]) -> AppKey:
    _check_table(entry, _KEY_FIELDS, where, path)
    key_id, stored = entry.get("id"), entry.get("hash")
    if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
        raise invalid(path, f"{where}.id", "8 lowercase hex digits (as `avatarkit keys` writes)")
    if not isinstance(stored, str):
        raise invalid(path, f"{where}.hash", "required")
    why = check_hash_format(stored)
    if why:
        raise invalid(path, f"{where}.hash", why)
    created, label = entry.get("created", ""), entry.get("label", "")
    if not isinstance(created, str) or not isinstance(label, str) or len(label) > 200:
        raise invalid(path, where, "created and label are strings (label up to 200 characters)")
    return AppKey(key_id, stored, created, label)


def dump_apps(apps: dict[str, AppPolicy]) -> str:
    """The apps file for ``apps`` (what ``avatarkit keys`` writes; JSON strings are TOML)."""
    lines = ["# AvatarKit apps (avatarkit serve --config FILE); keys: avatarkit keys --help"]
    for app in apps.values():
        lines += ["", "[[apps]]", f"id = {json.dumps(app.app_id)}"]
        if app.avatars is not None:
            lines.append(f"avatars = {json.dumps(sorted(app.avatars))}")
        lines.append(f"max_sessions = {app.max_sessions}")
        lines.append(f"max_token_ttl_s = {app.max_token_ttl_s:g}")
        for key in app.keys:
            lines += ["", "[[apps.keys]]", f"id = {json.dumps(key.key_id)}"]
            lines.append(f"hash = {json.dumps(key.hash)}")
            lines.append(f"created = {json.dumps(key.created)}")
            if key.label:
                lines.append(f"label = {json.dumps(key.label)}")
    return "\n".join(lines) + "\n"


def write_apps(path: str | os.PathLike[str], apps: dict[str, AppPolicy]) -> None:
    """Replace ``path`` atomically (a server re-reading it sees the old or the new file)."""
    text = dump_apps(apps)
    parse_apps(text.encode(), path)  # never write a file the server would refuse
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # hashes only, but no one else's business
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, target)


@dataclass
class AppRegistry:
    """The apps the server answers for: from a file (re-read when it changes) or just one.

    ``single_key`` is the env/flag API key of the one-app default, compared in constant
    time; apps from a file are checked against their keys' hashes.
    """

    apps: dict[str, AppPolicy]
    path: str = ""
    single_key: str = ""
    _stamp: tuple[int, int, int] | None = None
    _verified: dict[str, bytes] = field(default_factory=dict)  # key id -> sha256(key)

    @classmethod
    def single(cls, app_id: str, api_key: str, max_token_ttl_s: float) -> AppRegistry:
        return cls({app_id: AppPolicy(app_id, max_token_ttl_s=max_token_ttl_s)}, single_key=api_key)

    @classmethod
    def from_file(cls, path: str) -> AppRegistry:
        registry = cls({}, path=path)
        registry._stamp = _stamp(path)
        registry.apps = load_apps(path)
        return registry

    def refresh(self) -> None:
        """Re-read the file if it changed; a broken file keeps the last good apps (logged)."""
        if not self.path:
            return
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            apps = load_apps(self.path)
        except AvatarKitError as exc:
            log.error("apps file not reloaded, the previous one stays in force: %s", exc.message)
            return
        self.apps = apps
        self._verified.clear()  # stale entries (a revoked key is already gone from the lookup)
        log.info("apps file reloaded: %d app(s)", len(apps))

    def app(self, app_id: str) -> AppPolicy | None:
        return self.apps.get(app_id)

    async def authenticate(self, api_key: str) -> tuple[AppPolicy, str] | None:
        """The app ``api_key`` belongs to and the key's id ("" for the one-app key)."""
        if not self.path:
            if self.single_key and hmac.compare_digest(api_key.encode(), self.single_key.encode()):
                return next(iter(self.apps.values())), ""
            return None
        key_id = key_id_of(api_key)
        found = next(
            ((app, key) for app in self.apps.values() for key in app.keys if key.key_id == key_id),
            None,
        )
        if key_id is None or found is None:
            return None
        app, key = found
        fingerprint = hashlib.sha256(api_key.encode()).digest()
        cached = self._verified.get(key_id)
        if cached is not None and hmac.compare_digest(cached, fingerprint):
            return app, key_id
        # scrypt takes tens of ms: off the event loop.
        if not await asyncio.to_thread(verify_key, api_key, key.hash):
            return None
        current = self.app(app.app_id)  # the file may have been reloaded (a revoke?) meanwhile
        if current is None or current.key(key_id) != key:
            return None
        self._verified[key_id] = fingerprint
        return current, key_id


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino
