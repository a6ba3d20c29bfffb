"""AvatarManager against a real asset server on loopback: dedupe, caches, failures, progress."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from pathlib import Path

import pytest

from avatarkit import avatar_cache
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager, LoadProgress, LoadState
from avatarkit.package import sha256_file

pytestmark = pytest.mark.timeout(60)


def new_manager(url: str, cache: Path, **kw) -> AvatarManager:
    kw.setdefault("backoff", 0.01)
    return AvatarManager(url, cache, **kw)


def check_progress(events: list[LoadProgress], final: LoadState) -> None:
    """downloading, strictly increasing in 0..1, then exactly one terminal state, last."""
    assert events, "no progress reported"
    states = [e.state for e in events]
    assert (
        states[-1] == final
        and states.count(LoadState.COMPLETED) + states.count(LoadState.FAILED) == 1
    )
    downloading = [e.progress for e in events[:-1]]
    assert all(s == LoadState.DOWNLOADING for s in states[:-1])
    assert downloading[0] == 0.0 and all(0 <= p <= 1 for p in downloading)
    assert all(b > a for a, b in zip(downloading, downloading[1:], strict=False))
    if final == LoadState.COMPLETED:
        assert events[-1].progress == 1.0 and events[-1].error is None
    else:
        assert isinstance(events[-1].error, AvatarKitError)


def cache_is_clean(cache: Path, avatar_id: str) -> bool:
    """No package for the id, and no staging/trash leftovers."""
    leftovers = (
        [p.name for p in cache.iterdir() if p.name.startswith((".staging", ".trash"))]
        if cache.exists()
        else []
    )
    return not (cache / avatar_id).exists() and not leftovers


def test_concurrent_loads_share_one_download_and_one_object(
    packages, make_server, faults, tmp_path
):
    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, tmp_path / "cache")
            first, second = [], []
            a, b = await asyncio.gather(m.load("kai", first.append), m.load("kai", second.append))
            assert a is b
            assert len(faults.file_requests()) == 1 and m.files_downloaded == 1
            check_progress(first, LoadState.COMPLETED)
            check_progress(second, LoadState.COMPLETED)
            assert len(first) > 3  # by bytes, not just 0 and 1
            # Later loads come from memory: same object, no progress, no request.
            late = []
            assert await m.load("kai", late.append) is a and late == []
            assert len(faults.file_requests()) == 1
            assert a.id == "kai" and a.model_path.is_file() and len(a.available_channels) == 52
            assert sha256_file(a.model_path) == a.manifest.files[0].sha256

    asyncio.run(scenario())


def test_disk_cache_hit_needs_no_network(packages, make_server, tmp_path):
    cache = tmp_path / "cache"

    async def download():
        async with make_server(packages) as server:
            await new_manager(server.url, cache).load("kai")

    asyncio.run(download())
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1/avatars"
    offline = new_manager(dead, cache, retries=0)
    events = []
    avatar = offline.load_blocking("kai", events.append)
    assert avatar.id == "kai" and events == []  # a cache hit reports no progress
    assert offline.retrieve("kai") is avatar
    with pytest.raises(AvatarKitError) as err:
        offline.load_blocking("ava")
    assert err.value.code == ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA


def test_damaged_disk_cache_is_downloaded_again(packages, make_server, faults, tmp_path):
    cache = tmp_path / "cache"

    async def scenario():
        async with make_server(packages) as server:
            avatar = await new_manager(server.url, cache).load("kai")
            with open(avatar.model_path, "r+b") as fh:  # bit rot
                fh.seek(1000)
                fh.write(b"\x00\x01\x02")
            again = await new_manager(server.url, cache).load("kai")
            assert sha256_file(again.model_path) == again.manifest.files[0].sha256
            assert len(faults.file_requests()) == 2

    asyncio.run(scenario())


def test_clear_and_clear_all(packages, make_server, tmp_path):
    cache = tmp_path / "cache"

    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, cache)
            first = await m.load("kai")
            m.clear("kai")
            assert m.retrieve("kai") is None and not (cache / "kai").exists()
            events = []
            second = await m.load("kai", events.append)
            assert second is not first and events[-1].state == LoadState.COMPLETED
            m.clear_all()
            assert m.retrieve("kai") is None
            assert [p.name for p in cache.iterdir() if not p.name.startswith(".locks")] == []

    asyncio.run(scenario())


def test_unknown_avatar_is_avatar_not_found(packages, make_server, tmp_path):
    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, tmp_path / "cache")
            events = []
            with pytest.raises(AvatarKitError) as err:
                await m.load("nobody", events.append)
            assert err.value.code == ErrorCode.AVATAR_NOT_FOUND
            check_progress(events, LoadState.FAILED)
            assert events[-1].error.code == ErrorCode.AVATAR_NOT_FOUND
            with pytest.raises(AvatarKitError) as err:
                await m.load("../etc")
            assert err.value.code == ErrorCode.AVATAR_NOT_FOUND

    asyncio.run(scenario())


def test_connection_dropped_mid_file_resumes_with_range(packages, make_server, faults, tmp_path):
    faults.drop = 2

    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, tmp_path / "cache")
            events = []
            avatar = await m.load("kai", events.append)
            check_progress(events, LoadState.COMPLETED)
            assert sha256_file(avatar.model_path) == avatar.manifest.files[0].sha256
            ranges = [r for _, r in faults.file_requests()]
            assert (
                len(ranges) == 3
                and ranges[0] is None
                and all(r and r.startswith("bytes=") for r in ranges[1:])
            )

    asyncio.run(scenario())


def test_server_error_is_retried_with_backoff_then_fails(packages, make_server, faults, tmp_path):
    faults.manifest_status = 503

    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, tmp_path / "cache", retries=2)
            events = []
            with pytest.raises(AvatarKitError) as err:
                await m.load("kai", events.append)
            assert err.value.code == ErrorCode.FAILED_TO_FETCH_AVATAR_METADATA
            assert len([r for r in faults.requests if r[0].endswith("/kai")]) == 3  # 1 + 2 retries
            check_progress(events, LoadState.FAILED)

    asyncio.run(scenario())


def test_corrupted_file_is_retried_once(packages, make_server, faults, tmp_path):
    faults.corrupt = 1

    async def scenario():
        async with make_server(packages) as server:
            avatar = await new_manager(server.url, tmp_path / "cache").load("kai")
            assert sha256_file(avatar.model_path) == avatar.manifest.files[0].sha256
            assert len(faults.file_requests()) == 2

    asyncio.run(scenario())


def test_always_corrupted_file_fails_and_is_never_cached(packages, make_server, faults, tmp_path):
    faults.corrupt = -1
    cache = tmp_path / "cache"

    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, cache)
            events = []
            with pytest.raises(AvatarKitError) as err:
                await m.load("kai", events.append)
            assert err.value.code == ErrorCode.CHECKSUM_MISMATCH
            check_progress(events, LoadState.FAILED)
            assert cache_is_clean(cache, "kai") and m.retrieve("kai") is None

    asyncio.run(scenario())


def test_slow_server_completes_with_fine_grained_progress(packages, make_server, faults, tmp_path):
    faults.chunk_delay = 0.005

    async def scenario():
        async with make_server(packages) as server:
            events = []
            await new_manager(server.url, tmp_path / "cache").load("kai", events.append)
            check_progress(events, LoadState.COMPLETED)
            assert len(events) > 20

    asyncio.run(scenario())


def test_server_too_slow_times_out_after_retries(packages, make_server, faults, tmp_path):
    faults.chunk_delay = 1.0
    cache = tmp_path / "cache"

    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, cache, retries=1, timeout=0.2)
            with pytest.raises(AvatarKitError) as err:
                await m.load("kai")
            assert err.value.code == ErrorCode.FAILED_TO_DOWNLOAD_AVATAR_ASSETS
            assert cache_is_clean(cache, "kai")

    asyncio.run(scenario())


def test_full_disk_is_reported_and_leaves_nothing(packages, make_server, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    written = []

    def full_disk(fh, data):
        if len(written) >= 3:
            raise avatar_cache.disk_error(OSError(errno.ENOSPC, "No space left on device"), cache)
        written.append(len(data))
        fh.write(data)

    monkeypatch.setattr(avatar_cache, "write_chunk", full_disk)

    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, cache)
            events = []
            with pytest.raises(AvatarKitError) as err:
                await m.load("kai", events.append)
            assert err.value.code == ErrorCode.DISK_FULL
            check_progress(events, LoadState.FAILED)
            assert events[-1].error.code == ErrorCode.DISK_FULL
            assert cache_is_clean(cache, "kai")

    asyncio.run(scenario())


def test_enospc_maps_to_disk_full():
    assert (
        avatar_cache.disk_error(OSError(errno.ENOSPC, "full"), Path(".")).code
        == ErrorCode.DISK_FULL
    )
    assert (
        avatar_cache.disk_error(OSError(errno.EROFS, "ro"), Path(".")).code
        == ErrorCode.CACHE_NOT_WRITABLE
    )


def test_unwritable_cache_dir(packages, make_server, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")

    async def scenario():
        async with make_server(packages) as server:
            with pytest.raises(AvatarKitError) as err:
                await new_manager(server.url, blocker / "cache").load("kai")
            assert err.value.code == ErrorCode.CACHE_NOT_WRITABLE

    asyncio.run(scenario())


def test_cancel_load(packages, make_server, faults, tmp_path):
    faults.chunk_delay = 0.05
    cache = tmp_path / "cache"

    async def scenario():
        async with make_server(packages) as server:
            m = new_manager(server.url, cache)
            events = []
            task = asyncio.create_task(m.load("kai", events.append))
            while not events or events[-1].progress == 0:
                await asyncio.sleep(0.01)
            assert m.cancel_load("kai")
            with pytest.raises(AvatarKitError) as err:
                await task
            assert err.value.code == ErrorCode.LOAD_CANCELLED
            check_progress(events, LoadState.FAILED)
            assert events[-1].error.code == ErrorCode.LOAD_CANCELLED
            assert not m.cancel_load("kai")
            await asyncio.sleep(0.05)
            assert cache_is_clean(cache, "kai")

    asyncio.run(scenario())


CHILD = """
import sys
from avatarkit.manager import AvatarManager
avatar = AvatarManager(sys.argv[1], sys.argv[2], backoff=0.01).load_blocking("kai")
print(avatar.model_path)
"""


def test_two_processes_loading_at_once_share_a_sound_cache(packages, make_server, faults, tmp_path):
    cache = tmp_path / "cache"
    faults.chunk_delay = 0.002  # long enough that the two downloads overlap

    async def scenario():
        async with make_server(packages) as server:
            procs = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    CHILD,
                    server.url,
                    str(cache),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                for _ in range(2)
            ]
            outputs = [await p.communicate() for p in procs]
            for p, (_, err) in zip(procs, outputs, strict=True):
                assert p.returncode == 0, err.decode()[-2000:]
            paths = {out.decode().strip() for out, _ in outputs}
            assert paths == {str(cache / "kai" / "kai.glb")}
            # The lock let the second process find the first one's package: one download.
            assert len(faults.file_requests()) == 1

    asyncio.run(scenario())
    offline = new_manager("http://127.0.0.1:9/v1/avatars", cache, retries=0)
    assert offline.retrieve("kai") is not None
    assert cache_is_clean(cache, "nobody") and not [
        p for p in cache.iterdir() if p.name.startswith(".staging")
    ]


def test_local_packages_folder_as_base_url(tmp_path):
    from avatarkit.paths import AVATARS_DIR

    m = AvatarManager(str(AVATARS_DIR), tmp_path / "cache")
    events = []
    avatar = m.load_blocking("ava", events.append)
    assert avatar.id == "ava" and avatar.root == AVATARS_DIR / "ava"
    assert [e.state for e in events] == [LoadState.DOWNLOADING, LoadState.COMPLETED]
    assert m.load_blocking("ava") is avatar
    with pytest.raises(AvatarKitError) as err:
        m.load_blocking("nobody")
    assert err.value.code == ErrorCode.AVATAR_NOT_FOUND
