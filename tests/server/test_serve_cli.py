"""``avatarkit serve`` as a user runs it: a real process, its printed credentials, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
import spatius

from avatarkit.protocol import decode_animation

pytestmark = pytest.mark.timeout(60)


def start_serve(*args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARKIT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "avatarkit", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    banner: dict[str, str] = {}
    assert process.stdout is not None
    for line in process.stdout:
        if match := re.match(r"\s+(\w+)\s+= (\S+)", line):
            banner[match[1]] = match[2]
        if line.startswith("Ctrl-C"):
            break
    return process, banner


async def wait_healthy(base: str) -> set[int]:
    """pids of the workers that answered, one fresh connection per request."""
    pids: set[int] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)
            ) as http:
                for _ in range(16):
                    async with http.get(base + "/v1/health") as response:
                        pids.add((await response.json())["pid"])
            return pids
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError("server did not come up")


async def one_utterance(
    banner: dict[str, str], api_key: str, app_id: str, avatar_id: str = "ava"
) -> int:
    frames = []
    done = asyncio.Event()

    def on_frames(data: bytes, last: bool) -> None:
        frames.extend(decode_animation(data)[1])
        if last:
            done.set()

    async with spatius.new_avatar_session(
        avatar_id=avatar_id,
        api_key=api_key,
        app_id=app_id,
        console_endpoint_url=banner["console_endpoint_url"],
        ingress_endpoint_url=banner["ingress_endpoint_url"],
        transport_frames=on_frames,
    ) as session:
        await session.send_audio(b"\x10\x00" * 8000, end=True)
        await asyncio.wait_for(done.wait(), 5)
    return len(frames)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()


async def test_serve_avatars_serves_a_users_folder(tmp_path):
    """``--avatars DIR``: the folder's file is listed, downloadable and spoken for, with
    no other flag; a folder that is not there stops the start, naming it."""
    import shutil

    from avatarkit.paths import AVATARS_DIR

    shutil.copy(AVATARS_DIR / "kai" / "kai.glb", tmp_path / "Front Desk.vrm")
    process, banner = start_serve("--avatars", str(tmp_path))
    try:
        assert banner["avatars"].startswith("ava,")  # printed: what it serves
        base = banner["console_endpoint_url"].removesuffix("/v1/console")
        await wait_healthy(base)
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/v1/avatars/front-desk") as response:
                assert response.status == 200
                assert (await response.json())["model"] == "front-desk.vrm"
        key, app = banner["api_key"], banner["app_id"]
        assert await one_utterance(banner, key, app, avatar_id="front-desk") == 15
    finally:
        assert stop(process) == 0
    missing = subprocess.run(
        [sys.executable, "-m", "avatarkit", "serve", "--port", "0", "--avatars", "/no/such"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    assert "[avatarNotFound]" in missing.stderr and "/no/such" in missing.stderr


async def test_serve_prints_generated_credentials_that_work():
    process, banner = start_serve()
    try:
        assert banner["api_key"].startswith("ak_") and banner["app_id"].startswith("app_")
        base = banner["console_endpoint_url"].removesuffix("/v1/console")
        await wait_healthy(base)
        assert await one_utterance(banner, banner["api_key"], banner["app_id"]) == 15
    finally:
        assert stop(process) == 0


async def test_two_workers_share_the_port_and_the_secret():
    process, banner = start_serve(
        "--workers", "2", "--api-key", "ak_test_key", "--app-id", "app_test"
    )
    try:
        assert banner["api_key"] == "(given)"
        base = banner["console_endpoint_url"].removesuffix("/v1/console")
        pids = await wait_healthy(base)
        deadline = time.monotonic() + 20  # the second worker may still be importing
        while len(pids) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            pids |= await wait_healthy(base)
        assert len(pids) == 2  # the kernel spread connections over both workers
        # Token from whichever worker, websocket on whichever worker: all accepted.
        results = await asyncio.gather(
            *(one_utterance(banner, "ak_test_key", "app_test") for _ in range(6))
        )
        assert results == [15] * 6
    finally:
        assert stop(process) == 0
