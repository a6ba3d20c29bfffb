"""Regions: named endpoint sets for ``Configuration(region=...)``.

``local`` is built in (a local ``avatarkit serve``). More come from a TOML file named by
``AVATARKIT_REGIONS_FILE``::

    [regions.eu]
    console_url = "https://eu.example.com/v1/console"
    ingress_url = "wss://eu.example.com/v2/driveningress"
    assets_url = "https://eu.example.com/v1/avatars"   # optional

A file's region of the same name replaces the built-in one.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from urllib.parse import urlsplit

from avatarkit.errors import AvatarKitError, ErrorCode

MAX_FILE_BYTES = 1 << 20
_FIELDS = {"console_url", "ingress_url", "assets_url"}


@dataclass(frozen=True)
class Region:
    console_url: str
    ingress_url: str
    assets_url: str | None = None


BUILT_IN = {
    "local": Region("http://127.0.0.1:8765/v1/console", "ws://127.0.0.1:8765/v2/driveningress"),
}


def regions() -> dict[str, Region]:
    """The built-in regions and those of ``AVATARKIT_REGIONS_FILE`` (read at each call)."""
    path = os.environ.get("AVATARKIT_REGIONS_FILE")
    return {**BUILT_IN, **(load_regions(path) if path else {})}


def region(name: str) -> Region:
    known = regions()
    if name not in known:
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST,
            f"unknown region {name!r}; known: {', '.join(sorted(known))} "
            "(more from AVATARKIT_REGIONS_FILE)",
        )
    return known[name]


def load_regions(path: str) -> dict[str, Region]:
    def invalid(why: str) -> AvatarKitError:
        return AvatarKitError(ErrorCode.INVALID_CONFIG, f"{path}: {why}")

    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise invalid(f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise invalid("larger than 1 MiB")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise invalid(f"not UTF-8 TOML: {exc}") from None
    entries = document.get("regions")
    if set(document) - {"regions"} or not isinstance(entries, dict):
        raise invalid("expected [regions.NAME] tables only")
    out: dict[str, Region] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) - _FIELDS:
            raise invalid(f"regions.{name}: keys are {sorted(_FIELDS)}")
        urls = {key: entry.get(key) for key in _FIELDS}
        for key, schemes in (("console_url", ("http", "https")), ("ingress_url", ("ws", "wss"))):
            url = urls[key]
            if not isinstance(url, str) or urlsplit(url).scheme not in schemes:
                raise invalid(f"regions.{name}.{key}: a {' or '.join(schemes)} URL is required")
        if urls["assets_url"] is not None and not isinstance(urls["assets_url"], str):
            raise invalid(f"regions.{name}.assets_url: a URL string")
        out[name] = Region(str(urls["console_url"]), str(urls["ingress_url"]), urls["assets_url"])
    return out
