"""Several servers: two ``avatarkit serve`` behind a real nginx, and ``--workers 2``."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
import websockets
from reliability_helpers import (
    connect,
    console_token,
    expected_frames,
    health,
    receive_utterance,
    redis_server_binary,
    refusal_code,
    speech_pcm,
    start_redis,
    start_serve,
)

from avatarkit.errors import ErrorCode
from avatarkit.protocol import encode_audio
from avatarkit.server.workers import pick_free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from loadbalancer import NginxBalancer, nginx_binary  # noqa: E402

pytestmark = pytest.mark.timeout(90)
API_KEY, APP_ID = "ak_scale_test_key", "app_scale"


class Target:
    """What ``connect`` needs to reach a server (or a balancer) by port."""

    def __init__(self, port: int) -> None:
        self.port, self.app_id = port, APP_ID
        self.base_url = f"http://127.0.0.1:{port}"


async def open_sessions(target: Target, tokens: list[str]) -> list:
    return [await connect(target, token=token) for token in tokens]


async def kill_one_and_check_survivors(sessions: list, kill, survivors_expected: int) -> None:
    """Utterances are half sent when ``kill()`` runs; only the killed server's sessions fail."""
    pcm = speech_pcm(1.0)
    half = len(pcm) // 2
    for i, ws in enumerate(sessions):
        await ws.send(encode_audio(f"u{i}", pcm[:half]))
    await asyncio.sleep(0.2)
    kill()

    async def finish(i: int, ws) -> bool:
        try:
            await ws.send(encode_audio(f"u{i}", pcm[half:], end=True))
            frames = await receive_utterance(ws, f"u{i}", timeout=10)
        except (websockets.ConnectionClosed, ConnectionError):
            return False
        assert [f.index for f in frames] == list(range(expected_frames(len(pcm))))
        return True

    survived = await asyncio.gather(*(finish(i, ws) for i, ws in enumerate(sessions)))
    assert sum(survived) == survivors_expected
    await asyncio.gather(*(ws.close() for ws in sessions), return_exceptions=True)


@pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (scripts/setup.sh OPTIONAL_DEBS)"
)
async def test_two_servers_behind_nginx():
    ports = [pick_free_port("127.0.0.1") for _ in range(2)]
    servers = []
    balancer = NginxBalancer([f"127.0.0.1:{p}" for p in ports], pick_free_port("127.0.0.1"))
    try:
        servers += [start_serve(port, API_KEY, APP_ID) for port in ports]
        backends = [Target(port) for port in ports]
        balancer.start()
        lb = Target(balancer.port)
        # Tokens issued by either server, and through the balancer, are accepted by all.
        tokens = [await console_token(b.base_url, API_KEY) for b in backends for _ in range(3)]
        tokens += [await console_token(lb.base_url, API_KEY) for _ in range(2)]
        sessions = await open_sessions(lb, tokens)
        counts = [(await health(b.base_url))["sessions"] for b in backends]
        assert sum(counts) == len(sessions) and min(counts) >= 2, counts  # spread across both
        # Killing one server takes only its own sessions; the others finish their utterances.
        await kill_one_and_check_survivors(
            sessions, lambda: servers[0].send_signal(signal.SIGKILL), counts[1]
        )
        # New sessions keep working through the balancer (the dead upstream is skipped).
        for _ in range(3):
            ws = await connect(lb, token=await console_token(lb.base_url, API_KEY))
            await ws.send(encode_audio("after", speech_pcm(0.5), end=True))
            assert len(await receive_utterance(ws, "after")) == expected_frames(16000)
            await ws.close()
    finally:
        balancer.stop()
        for process in servers:
            process.kill()
            process.wait(10)


async def test_workers_share_port_and_a_killed_worker_takes_only_its_sessions():
    port = pick_free_port("127.0.0.1")
    master = start_serve(port, API_KEY, APP_ID, "--workers", "2")
    target = Target(port)
    try:
        pids: set[int] = set()
        deadline = asyncio.get_running_loop().time() + 20
        while len(pids) < 2:  # both workers up (the second may still be importing)
            assert asyncio.get_running_loop().time() < deadline, "the second worker never answered"
            pids.add((await health(target.base_url))["pid"])
            await asyncio.sleep(0.02)
        sessions = []
        per_worker: dict[int, int] = {}
        for _ in range(40):  # SO_REUSEPORT hashes connections: open until both workers hold some
            sessions.append(
                await connect(target, token=await console_token(target.base_url, API_KEY))
            )
            for _ in range(6):
                info = await health(target.base_url)
                per_worker[info["pid"]] = info["sessions"]
            if (
                len(per_worker) == 2
                and min(per_worker.values()) >= 2
                and sum(per_worker.values()) == len(sessions)
            ):
                break
        assert len(per_worker) == 2 and sum(per_worker.values()) == len(sessions), per_worker
        victim, survivor = list(per_worker)
        import os

        await kill_one_and_check_survivors(
            sessions, lambda: os.kill(victim, signal.SIGKILL), per_worker[survivor]
        )
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(15)
        except Exception:
            master.kill()


@pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (scripts/setup.sh OPTIONAL_DEBS)"
)
@pytest.mark.skipif(
    redis_server_binary() is None,
    reason="redis-server is not installed (scripts/setup.sh OPTIONAL_DEBS)",
)
async def test_two_servers_share_tokens_and_limits_through_redis(tmp_path):
    pytest.importorskip("redis", reason="the redis package (extra avatarkit[redis])")
    redis_process, redis_url = start_redis(tmp_path)
    ports = [pick_free_port("127.0.0.1") for _ in range(2)]
    servers = []
    balancer = NginxBalancer([f"127.0.0.1:{p}" for p in ports], pick_free_port("127.0.0.1"))
    opened: list = []
    try:
        servers += [
            start_serve(
                port,
                API_KEY,
                APP_ID,
                "--redis",
                redis_url,
                "--max-per-ip",
                "3",
                "--trust-proxy",
                "127.0.0.1",
            )
            for port in ports
        ]
        one, two = (Target(port) for port in ports)
        balancer.start()
        lb = Target(balancer.port)

        # A token used on one server is refused on the other: after its connection closed...
        token = await console_token(one.base_url, API_KEY)
        await (await connect(one, token=token)).close()
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(two, token=token, configure=False)
        assert refusal_code(info.value) == (400, ErrorCode.SESSION_TOKEN_INVALID)
        assert b"already used" in info.value.response.body
        # ...and while it is live.
        token = await console_token(two.base_url, API_KEY)
        opened.append(await connect(two, token=token))
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(one, token=token, configure=False)
        assert refusal_code(info.value) == (400, ErrorCode.SESSION_TOKEN_INVALID)

        # The per-address limit (3) counts sessions on both servers: every client here comes
        # from 127.0.0.1, directly or through nginx.
        opened.append(await connect(one, token=await console_token(one.base_url, API_KEY)))
        opened.append(await connect(lb, token=await console_token(lb.base_url, API_KEY)))
        counts = [(await health(t.base_url))["sessions"] for t in (one, two)]
        assert sum(counts) == 3 and min(counts) >= 1, counts
        for target in (one, two, lb, lb):
            with pytest.raises(websockets.InvalidStatus) as info:
                await connect(
                    target, token=await console_token(lb.base_url, API_KEY), configure=False
                )
            assert refusal_code(info.value) == (429, ErrorCode.CONCURRENT_LIMIT_EXCEEDED)
        # Behind the trusted proxy each client has its own limit (X-Forwarded-For): another
        # address gets its 3 sessions through nginx, on either server, and no fourth.
        other = {"local_addr": ("127.0.0.2", 0)}
        for target in (lb, lb, two):
            opened.append(
                await connect(target, token=await console_token(lb.base_url, API_KEY), **other)
            )
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(
                lb, token=await console_token(lb.base_url, API_KEY), configure=False, **other
            )
        assert refusal_code(info.value) == (429, ErrorCode.CONCURRENT_LIMIT_EXCEEDED)
        for _ in range(3):
            await opened.pop().close()
        await opened.pop().close()  # a slot of 127.0.0.1 frees on whichever server it was
        deadline = asyncio.get_running_loop().time() + 5
        while sum([(await health(t.base_url))["sessions"] for t in (one, two)]) > 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        ws = await connect(lb, token=await console_token(lb.base_url, API_KEY))
        opened.append(ws)
        await ws.send(encode_audio("after", speech_pcm(0.5), end=True))
        assert len(await receive_utterance(ws, "after")) == expected_frames(16000)
    finally:
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
        balancer.stop()
        for process in servers:
            process.kill()
            process.wait(10)
        redis_process.kill()
        redis_process.wait(10)


@pytest.mark.skipif(
    redis_server_binary() is None,
    reason="redis-server is not installed (scripts/setup.sh OPTIONAL_DEBS)",
)
async def test_redis_store_forgets_a_dead_server_and_fails_closed(tmp_path, make_server):
    pytest.importorskip("redis", reason="the redis package (extra avatarkit[redis])")
    from avatarkit.server.shared import RedisStore

    redis_process, redis_url = start_redis(tmp_path)
    try:
        crashed, alive = RedisStore(redis_url), RedisStore(redis_url)
        await crashed.heartbeat()
        await alive.heartbeat()
        assert await crashed.acquire_address("10.0.0.1", 2) and await crashed.acquire_address(
            "10.0.0.1", 2
        )
        assert not await alive.acquire_address("10.0.0.1", 2)  # the limit spans servers
        assert await crashed.acquire_app("kiosk", 1)  # an apps file's max_sessions: the same
        assert not await alive.acquire_app("kiosk", 1) and await alive.acquire_app("tutor", 1)
        assert await alive.app_sessions("kiosk") == 1
        await alive._redis.delete(f"avatarkit:server:{crashed.server_id}")  # its heartbeat lapsed
        assert await alive.address_sessions("10.0.0.1") == 0
        assert await alive.acquire_address("10.0.0.1", 2)  # a crash never holds slots for long
        assert await alive.acquire_app("kiosk", 1)
        await alive.release_app("kiosk")
        assert await alive.app_sessions("kiosk") == 0
        await crashed.close_quietly()
        await alive.close()

        server = make_server(redis_url=redis_url)
        ws = await connect(server)
        redis_process.kill()
        redis_process.wait(10)
        with pytest.raises(websockets.InvalidStatus) as info:  # no shared state: no new sessions
            await connect(server, configure=False)
        assert info.value.response.status_code == 503
        await ws.send(encode_audio("r1", speech_pcm(0.3), end=True))  # open sessions go on
        assert len(await receive_utterance(ws, "r1")) == expected_frames(9600)
        await ws.close()
    finally:
        if redis_process.poll() is None:
            redis_process.kill()
            redis_process.wait(10)
