"""AvatarManager regressions found in review: cache races and a blocking fsync."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from avatarkit import avatar_cache
from avatarkit import package as package_module
from avatarkit.manager import AvatarManager

pytestmark = pytest.mark.timeout(60)


def test_cache_file_vanishing_mid_check_is_a_miss_not_a_crash(
    packages, make_server, tmp_path, monkeypatch
):
    """Another process may swap the cached package while we verify it: an OSError from the
    check means "not cached" (download again), never a raw exception out of load()/retrieve()."""
    cache = tmp_path / "cache"

    async def download():
        async with make_server(packages) as server:
            await AvatarManager(server.url, cache, backoff=0.01).load("kai")

    asyncio.run(download())

    def vanished(path):
        raise FileNotFoundError(2, "No such file or directory", str(path))

    monkeypatch.setattr(package_module, "sha256_file", vanished)
    assert AvatarManager("http://127.0.0.1:9/v1/avatars", cache).retrieve("kai") is None


def test_fsync_does_not_block_the_event_loop(packages, make_server, tmp_path, monkeypatch):
    """Downloads run on the app's loop: a slow fsync (seconds on a busy disk) must not stall it."""
    real_fsync = os.fsync

    def slow_fsync(fd):
        time.sleep(0.4)
        real_fsync(fd)

    monkeypatch.setattr(avatar_cache.os, "fsync", slow_fsync)

    async def scenario():
        async with make_server(packages) as server:
            m = AvatarManager(server.url, tmp_path / "cache", backoff=0.01)
            worst = 0.0
            done = False

            async def ticker():
                nonlocal worst
                while not done:
                    t = time.perf_counter()
                    await asyncio.sleep(0.01)
                    worst = max(worst, time.perf_counter() - t)

            tick = asyncio.create_task(ticker())
            await m.load("kai")
            done = True
            await tick
            return worst

    worst = asyncio.run(scenario())
    assert worst < 0.3, f"event loop stalled {worst:.2f} s"


def test_staging_left_by_a_killed_download_is_removed_by_the_next_one(
    packages, make_server, tmp_path
):
    """A process killed mid-download leaves ``.staging-<id>-<hex>``; the next download of that
    id (holding the id's lock, so no live process owns it) removes it: the cache stays bounded."""
    cache = tmp_path / "cache"
    dead = cache / ".staging-kai-0123456789ab"
    dead.mkdir(parents=True)
    (dead / "kai.glb").write_bytes(b"\0" * 100_000)  # half a model
    other = cache / ".staging-kai-2-0123456789ab"  # another id's download: not ours to touch
    other.mkdir()

    async def scenario():
        async with make_server(packages) as server:
            await AvatarManager(server.url, cache, backoff=0.01).load("kai")

    asyncio.run(scenario())
    assert not dead.exists() and other.exists() and (cache / "kai").is_dir()


@pytest.mark.parametrize(
    "body", ['["kai"]', '{"avatars": [{"name": "no id"}]}', '{"avatars": ["kai"]}', "[1, 2]"]
)
def test_malformed_avatar_list_is_a_coded_error(body, tmp_path):
    """``avatarkit avatars --url`` against a wrong or foreign service: a stable code, not a
    TypeError/KeyError traceback."""
    from aiohttp import web

    from avatarkit.errors import AvatarKitError, ErrorCode

    async def scenario():
        async def listing(request):
            return web.Response(text=body, content_type="application/json")

        app = web.Application()
        app.router.add_get("/v1/avatars", listing)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            with pytest.raises(AvatarKitError) as info:
                await AvatarManager(f"http://127.0.0.1:{port}/v1/avatars", tmp_path).list_remote()
            assert info.value.code in (
                ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA,
                ErrorCode.INVALID_AVATAR_METADATA,
            )
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
