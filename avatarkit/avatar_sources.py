"""Where a manager's avatars come from, behind one small interface.

- ``PackageFolder``: a local folder of packages (the bundled ``assets/avatars``, any path,
  or a ``file://`` URL). Packages are read and verified in place; nothing is cached.
- ``AssetService``: the asset service over HTTP (``avatarkit serve``'s ``/v1/avatars``).
  Packages are downloaded into the manager's verified disk cache (``manager.py``).

A single local avatar file or folder is ``avatar.derive`` (``AvatarManager.derive``): no
source, no id. ``source_for(base_url)`` picks the source from the URL's form.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from avatarkit.avatar import Avatar
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.package import MANIFEST_NAME, list_packages


class PackageFolder:
    """Packages in a local folder, read in place."""

    cached = False  # nothing to download: the disk cache is not used

    def __init__(self, root: Path) -> None:
        self.root = root

    async def list(self, timeout: float) -> list[dict[str, Any]]:
        manifests = await asyncio.to_thread(list_packages, self.root)
        return [
            {"id": m.id, "name": m.name, "version": m.version, "size": m.total_size}
            for m in manifests
        ]

    async def load(self, avatar_id: str) -> Avatar:
        package = self.root / avatar_id
        if not (package / MANIFEST_NAME).is_file():
            raise AvatarKitError(
                ErrorCode.AVATAR_NOT_FOUND, f"no avatar {avatar_id!r} in {self.root}"
            )
        return await asyncio.to_thread(Avatar.from_package, package)


class AssetService:
    """The asset service at ``base_url``; its packages are downloaded into the cache."""

    cached = True

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def list(self, timeout: float) -> list[dict[str, Any]]:
        """The service's avatar list (``[{id, name, version, size, channels}]``)."""
        import aiohttp

        client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            try:
                async with session.get(self.base_url) as resp:
                    if resp.status != 200:
                        raise AvatarKitError(
                            ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA,
                            f"{self.base_url}: HTTP {resp.status}",
                        )
                    avatars = list((await resp.json(content_type=None))["avatars"])
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
                raise AvatarKitError(
                    ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA, f"{self.base_url}: {exc}"
                ) from exc
        if not all(isinstance(a, dict) and isinstance(a.get("id"), str) for a in avatars):
            raise AvatarKitError(
                ErrorCode.INVALID_AVATAR_METADATA, f"{self.base_url}: an entry without an id"
            )
        return avatars


AvatarSource = PackageFolder | AssetService


def source_for(base_url: str) -> AvatarSource:
    """A ``file://`` URL or a plain path names a local packages folder; anything else with
    a scheme is an asset service."""
    if base_url.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return PackageFolder(Path(unquote(urlparse(base_url).path)))
    if "://" not in base_url:
        return PackageFolder(Path(base_url))
    return AssetService(base_url)
