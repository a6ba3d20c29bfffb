"""Avatar downloads against a real full / read-only filesystem, and a download cut in half
by a server that then goes away: clean, coded failures, nothing half-written left behind."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager
from avatarkit.server.assets import AssetServer, add_asset_routes

pytestmark = pytest.mark.timeout(60)
AVATAR = "kai"  # about 2 MB


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A real tmpfs at ``path`` (needs CAP_SYS_ADMIN, which CI containers may lack)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def leftovers(cache: Path) -> list[str]:
    """Anything but the lock folder: staging dirs or partial files would be defects."""
    return sorted(p.name for p in cache.iterdir() if p.name != ".locks") if cache.is_dir() else []


async def load(url: str, cache: Path) -> AvatarKitError | None:
    try:
        await AvatarManager(url, cache, retries=1, backoff=0.01, timeout=5).load(AVATAR)
    except AvatarKitError as exc:
        return exc
    return None


async def test_full_filesystem_is_disk_full_and_leaves_nothing(tmp_path):
    with tmpfs(tmp_path / "small", "size=512k") as cache:
        async with AssetServer() as server:
            error = await load(server.url, cache)
        assert error is not None and error.code is ErrorCode.DISK_FULL
        assert leftovers(cache) == []


async def test_read_only_filesystem_is_cache_not_writable(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=4m") as cache:
        async with AssetServer() as server:
            error = await load(server.url, cache / "avatars")
        assert error is not None and error.code is ErrorCode.CACHE_NOT_WRITABLE


async def test_download_cut_in_half_fails_cleanly_then_loads_when_the_service_is_back(tmp_path):
    app = web.Application()
    add_asset_routes(app)

    async def half_then_drop(request: web.Request) -> web.StreamResponse:
        """Sends the first half of the file's bytes, then the connection dies."""
        from avatarkit.paths import AVATARS_DIR

        data = (
            AVATARS_DIR / request.match_info["avatar_id"] / request.match_info["name"]
        ).read_bytes()
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        request.transport.abort()
        return response

    app.router.add_get("/cut/v1/avatars/{avatar_id}/files/{name}", half_then_drop)

    async def manifest(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/v1/avatars/{request.match_info['avatar_id']}")

    app.router.add_get("/cut/v1/avatars/{avatar_id}", manifest)
    cache = tmp_path / "cache"
    async with AssetServer(app=app) as server:
        base = f"http://127.0.0.1:{server.port}"
        # Every file request is cut half way, over and over: the load fails with a code.
        error = await load(base + "/cut/v1/avatars", cache)
        assert error is not None and error.code is ErrorCode.FAILED_TO_DOWNLOAD_AVATAR_ASSETS, error
        assert not (cache / AVATAR).exists()  # nothing half-written is visible as a package
        # The service is healthy again: the same cache loads it, whole and verified.
        avatar = await asyncio.wait_for(
            AvatarManager(base + "/v1/avatars", cache, retries=1, backoff=0.01, timeout=5).load(
                AVATAR
            ),
            30,
        )
        assert avatar.id == AVATAR and (cache / AVATAR).is_dir()
        assert [n for n in leftovers(cache) if n.startswith(".staging")] == []
