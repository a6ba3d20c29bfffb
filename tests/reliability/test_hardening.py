"""Hostile clients against a real server process on loopback (issue 14, "Server").

Attackers connect from 127.0.0.2 (all of 127/8 is loopback on Linux), healthy clients from
127.0.0.1, so per-address limits can be told apart from a server that is down.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
import websockets
from reliability_helpers import (
    ServerProcess,
    connect,
    expected_frames,
    receive_utterance,
    speech_pcm,
)

from avatarkit.errors import ErrorCode
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import (
    classify,
    decode_envelope,
    encode_audio,
    encode_configure,
    encode_interrupt,
)

pytestmark = pytest.mark.timeout(60)

ATTACKER = "127.0.0.2"


@pytest.fixture
def servers(tmp_path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def _half_open(port: int, count: int, source: str = ATTACKER) -> list[socket.socket]:
    """``count`` connections that send a request line and one header, never the blank line."""
    opened = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(0.3)
        sock.bind((source, 0))
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            sock.close()
            continue
        opened.append(sock)
    return opened


def _still_open(sockets: list[socket.socket]) -> int:
    alive = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            if sock.recv(1):
                alive += 1
        except BlockingIOError:
            alive += 1  # no FIN, no RST: the server still holds it
        except OSError:
            pass
    return alive


def _wait_all_closed(sockets: list[socket.socket], within: float = 5.0) -> float:
    """Seconds until the server has closed every one (polled: robust on a loaded machine)."""
    started = time.monotonic()
    while _still_open(sockets):
        assert time.monotonic() - started < within, f"{_still_open(sockets)} still open"
        time.sleep(0.1)
    return time.monotonic() - started


def _healthy_get(base_url: str, timeout: float = 2.0) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(base_url + "/v1/health", timeout=timeout) as response:
        assert response.status == 200
    return time.monotonic() - started


def test_slowloris_is_cut_off_and_healthy_clients_are_served(servers, tmp_path):
    server = ServerProcess(
        tmp_path / "server.log", nofile=512, header_timeout_s=1.0, max_http_connections_per_ip=64
    )
    servers.append(server)
    attack = _half_open(server.port, 300)
    try:
        assert _healthy_get(server.base_url) < 1.0  # served at once despite 300 attempts
        _wait_all_closed(attack)  # the admitted ones at their header deadline (1 s)
        assert _healthy_get(server.base_url) < 1.0
    finally:
        for sock in attack:
            sock.close()
    # From many addresses (6 × 60 = 360 > the total cap of 512 - 192): the cap, not the
    # file limit, refuses the excess, so accept() never fails and the server recovers.
    attack = [sock for i in range(2, 8) for sock in _half_open(server.port, 60, f"127.0.1.{i}")]
    try:
        _wait_all_closed(attack)
        assert _healthy_get(server.base_url) < 1.0
    finally:
        for sock in attack:
            sock.close()
    log = server.log()
    assert "Traceback" not in log and "accept()" not in log
    assert "open connections (the limit)" in log
    assert len(log.splitlines()) < 20, log[-3000:]  # one line per kind of refusal, folded


def test_descriptor_exhaustion_logs_a_line_not_a_traceback_per_accept(servers, tmp_path):
    # Caps off, so accept() itself runs out of descriptors: what asyncio then logs per failure.
    server = ServerProcess(
        tmp_path / "server.log",
        nofile=128,
        header_timeout_s=1.0,
        max_http_connections_per_ip=0,
        max_connections=0,
    )
    servers.append(server)
    attack = _half_open(server.port, 300)
    time.sleep(0.5)
    for sock in attack:
        sock.close()
    deadline = time.monotonic() + 5  # the admitted ones time out too; the server recovers
    while True:
        try:
            assert _healthy_get(server.base_url, timeout=1.0) < 1.0
            break
        except OSError:
            assert time.monotonic() < deadline, "the server did not recover"
    log = server.log()
    assert "Traceback" not in log
    accept_lines = [line for line in log.splitlines() if "accept()" in line]
    assert 1 <= len(accept_lines) <= 3, log[-3000:]


async def test_unconfigured_upgrades_do_not_lock_out_a_healthy_client(make_server):
    # The deployed handshake timeout (10 s): before, 100 idle upgrades held the address's
    # 100 session slots that long, and the healthy client got 429 concurrentLimitExceeded.
    server = make_server(handshake_timeout_s=10.0)
    idle = [await connect(server, configure=False) for _ in range(100)]
    try:
        started = time.monotonic()
        ws = await connect(server)  # same address, configures at once
        pcm = speech_pcm(0.5)
        await ws.send(encode_audio("r1", pcm, end=True))
        assert len(await receive_utterance(ws, "r1")) == expected_frames(len(pcm))
        assert time.monotonic() - started < 2.0
        await ws.close()
        await asyncio.sleep(0.2)
        still_open = sum(w.state is websockets.State.OPEN for w in idle)
        assert still_open <= server.config.max_pending_handshakes_per_ip  # the oldest were closed
    finally:
        await asyncio.gather(*(w.close() for w in idle), return_exceptions=True)


async def test_per_address_limit_counts_configured_sessions(make_server):
    server = make_server(max_connections_per_ip=2)
    pending = await connect(server, configure=False)  # upgraded while the address had room
    first, second = await connect(server), await connect(server)
    with pytest.raises(websockets.InvalidStatus) as info:  # the 429 at the upgrade holds
        await connect(server, configure=False)
    assert info.value.response.status_code == 429
    await pending.send(encode_configure(16000))  # the slot check at configure refuses it
    envelope = decode_envelope(await asyncio.wait_for(pending.recv(), 5))
    error = envelope.server_error
    assert classify(error.code, error.message) is ErrorCode.CONCURRENT_LIMIT_EXCEEDED
    await asyncio.gather(first.close(), second.close(), pending.close())


async def test_hostile_range_headers_never_reach_a_500(server):
    import aiohttp

    url = f"{server.assets_url}/ava/files/ava.glb"
    cases = {
        "bytes=" + "9" * 4300 + "-": 400,  # past int()'s digit limit: was a 500 and a traceback
        "bytes=-" + "9" * 5000: 400,  # over the header length cap (256)
        "bytes=" + "9" * 200 + "-": 416,  # beyond any file
        "bytes=0-" + "9" * 200: 206,  # clamped to the end of the file
        "bytes=" + "0" * 40 + "5-9": 206,  # leading zeros are still a small number
        "bytes=\u0660-\u0669": 416,  # Arabic-Indic digits: not a range (was served as 0-9)
        "bytes=\u0660-": 416,
        "bytes=0-9": 206,
    }
    async with aiohttp.ClientSession() as http:
        for header, status in cases.items():
            async with http.get(url, headers={"Range": header}) as response:
                assert response.status == status, header[:40]
                if status == 206:
                    assert int(response.headers["Content-Length"]) == len(await response.read())


async def test_deeply_nested_console_bodies_are_a_400(server):
    import aiohttp

    url = server.console_url + "/session-tokens"
    bodies = [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"expireAt": ' + "[" * 50_000 + "]" * 50_000 + "}",
    ]
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            async with http.post(url, data=body, headers={"X-Api-Key": server.api_key}) as response:
                assert response.status == 400  # was a 500 (RecursionError)
                assert (await response.json())["errors"][0]["code"] == "invalidRequest"


async def _next_error(ws) -> tuple[ErrorCode, object, int]:
    data = await asyncio.wait_for(ws.recv(), 5)
    envelope = decode_envelope(data)
    assert envelope.type == pb.MESSAGE_SERVER_ERROR, envelope.type
    error = envelope.server_error
    return classify(error.code, error.message), error, len(data)


async def test_long_req_ids_and_large_control_messages_are_refused_unechoed(server):
    ws = await connect(server, max_size=None)
    pcm = speech_pcm(0.3)
    cases = [
        (encode_interrupt("i" * (1536 << 10)), ErrorCode.MESSAGE_TOO_LARGE),  # 1.5 MiB id
        (encode_interrupt("j" * (70 << 10)), ErrorCode.MESSAGE_TOO_LARGE),  # over 64 KiB
        (encode_interrupt("k" * 129), ErrorCode.INVALID_REQUEST),
        (encode_audio("a" * (450 << 10), pcm, end=True), ErrorCode.INVALID_REQUEST),  # 0.45 MiB id
        (encode_audio("b" * 129, pcm), ErrorCode.INVALID_REQUEST),
    ]
    for message, code in cases:
        await ws.send(message)
        got, error, size = await _next_error(ws)
        assert got is code
        assert error.req_id == "" and size < 300  # the id is never echoed back
    # Nothing of them was kept, and the session goes on: a 128-character id is fine.
    session = next(iter(server._state.sessions))
    assert not session._dropped and not session._ended and not session._utterances
    req_id = "r" * 128
    await ws.send(encode_audio(req_id, pcm, end=True))
    assert len(await receive_utterance(ws, req_id)) == expected_frames(len(pcm))
    await ws.close()
    # A configure message quoting 60 000 characters back in its error: not echoed either.
    ws = await connect(server, configure=False)
    await ws.send(encode_configure(16000, extra_params={"fps": "9" * 60_000}))
    got, error, size = await _next_error(ws)
    assert got is ErrorCode.INVALID_REQUEST and size < 400
    await ws.close()


async def test_closed_sessions_are_freed_by_reference_counting(make_server):
    """No reference cycle keeps a closed session (and all it holds) until a full GC pass."""
    import gc
    import weakref

    server = make_server(idle_timeout_s=0.5)
    gc.collect()
    gc.disable()
    try:
        refs = []
        for ending in (
            "client closes",
            "idle timeout: the server closes",
            "interrupted mid-utterance",
        ):
            ws = await connect(server)
            session = next(iter(server._state.sessions))
            refs.append(weakref.ref(session))
            del session
            pcm = speech_pcm(0.5)
            if ending == "interrupted mid-utterance":
                await ws.send(encode_audio("r1", pcm[: len(pcm) // 2]))
                await ws.send(encode_interrupt("r1"))
            else:
                await ws.send(encode_audio("r1", pcm, end=True))
                await receive_utterance(ws, "r1")
            if ending.startswith("idle timeout"):
                got, _, _ = await _next_error(ws)
                assert got is ErrorCode.IDLE_TIMEOUT
            await ws.close()
            deadline = time.monotonic() + 5
            while server.active_sessions and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # let the server's loop finish with them
        assert [ref() is None for ref in refs] == [True] * len(refs)
    finally:
        gc.enable()


async def test_error_floods_are_rate_limited_with_a_bounded_log(server, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="avatarkit.server")
    ws = await connect(server, max_queue=None)
    replies: list[ErrorCode] = []

    async def read() -> None:  # a client that reads promptly
        while True:
            envelope = decode_envelope(await ws.recv())
            if envelope.type == pb.MESSAGE_SERVER_ERROR:
                error = envelope.server_error
                replies.append(classify(error.code, error.message))

    reader = asyncio.create_task(read())
    try:
        again = encode_configure(16000)  # "already configured": one error reply each
        flood_started = time.monotonic()
        for _ in range(10):
            await asyncio.gather(*(ws.send(again) for _ in range(1000)))
        await asyncio.sleep(0.3)
        assert server.active_sessions == 1  # before: closed as a slow consumer
        budget = server.config.error_burst
        # + what refills while the flood lasts (and one notice per episode)
        refills = server.config.error_rate_per_s * (time.monotonic() - flood_started)
        assert budget <= len(replies) <= budget + 2 * refills + 2
        assert replies.count(ErrorCode.RATE_LIMITED) >= 1
        pcm = speech_pcm(0.3)  # the session goes on
        await ws.send(encode_audio("r1", pcm, end=True))
        deadline = time.monotonic() + 5
        while server.stats.utterances < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert server.stats.utterances == 1
    finally:
        reader.cancel()
        await ws.close()
    lines = [r for r in caplog.records if r.name.startswith("avatarkit.server.session")]
    assert len(lines) <= 8, [r.getMessage() for r in lines]  # before: one INFO line per error


def _animation_of(item: object) -> str | None:
    """The req_id of a queued animation envelope (whatever the outbox wraps it in)."""
    data = getattr(item, "data", item)
    if not isinstance(data, bytes):
        return None
    envelope = decode_envelope(data)
    return (
        envelope.server_response_animation.req_id
        if envelope.HasField("server_response_animation")
        else None
    )


async def test_interrupt_takes_back_queued_animation_of_an_ended_utterance(make_server):
    # One frame per message and no slow-consumer limit: a burst fills the outbox while
    # the client reads nothing (a 4 KiB window), as a client busy elsewhere would.
    server = make_server(
        batch_frames=1, max_frames_per_message=1, send_queue_messages=100_000, send_stall_s=0
    )
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ws = await connect(
        server, sock=sock, configure=False, max_queue=1, max_size=None, compression=None
    )
    await ws.send(encode_configure(16000, extra_params={"fps": "60"}))  # half the audio to infer
    assert decode_envelope(await ws.recv()).type == pb.MESSAGE_SERVER_CONFIRM_SESSION
    # A congested path: small kernel buffers on the server's side too (no autotuning).
    session = next(iter(server._state.sessions))
    session._request.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
    )
    pcm = speech_pcm(15.0)
    total = expected_frames(len(pcm), fps=60)  # 900 messages each
    fillers = ("f1", "f2", "f3")  # fill the buffers (~260 KB) until the writer waits
    for req_id in (*fillers, "r1"):  # then r1 waits in the outbox
        await ws.send(encode_audio(req_id, pcm, end=True))
    deadline = time.monotonic() + 10
    while server.stats.utterances < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)  # all of it inferred and queued
    queued = sum(_animation_of(item) == "r1" for item in list(session._outbox))
    del session
    await ws.send(encode_interrupt("r1"))
    await asyncio.sleep(0.2)
    await ws.send(encode_audio("r2", pcm[:6400], end=True))
    got_r1, ended_r1 = 0, False
    while True:  # reading now: what was already on its way, then r2
        envelope = decode_envelope(await asyncio.wait_for(ws.recv(), 5))
        assert envelope.type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION, envelope
        animation = envelope.server_response_animation
        if animation.req_id == "r1":
            got_r1 += 1
            ended_r1 |= animation.end
        elif animation.req_id == "r2" and animation.end:
            break
    assert queued > total // 2  # most of r1 was still waiting when the interrupt came
    assert not ended_r1 and got_r1 <= total - queued, (
        got_r1,
        queued,
    )  # before: all 900 and the end
    await ws.close()


def test_short_token_secrets_are_refused(monkeypatch):
    import subprocess
    import sys

    from avatarkit.errors import AvatarKitError
    from avatarkit.server import EmbeddedServer, ServerConfig

    for secret in ("x", "s" * 31):
        with pytest.raises(AvatarKitError) as info:
            ServerConfig(token_secret=secret)
        assert info.value.code is ErrorCode.INVALID_REQUEST and "32 bytes" in info.value.message
    monkeypatch.setenv("AVATARKIT_TOKEN_SECRET", "x")
    with pytest.raises(AvatarKitError):
        EmbeddedServer()  # the environment's secret is checked too (it was ignored)
    with pytest.raises(AvatarKitError):
        ServerConfig(api_key="k", app_id="a").with_credentials()
    result = subprocess.run(
        [sys.executable, "-m", "avatarkit", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "32 bytes" in result.stderr  # refused before serving


async def test_embedded_server_signs_with_the_environments_secret(monkeypatch):
    import jwt

    from avatarkit.server import EmbeddedServer

    secret = "a-shared-secret-of-at-least-32-bytes!"
    monkeypatch.setenv("AVATARKIT_TOKEN_SECRET", secret)
    with EmbeddedServer(app_id="app_shared") as one, EmbeddedServer(app_id="app_shared") as two:
        assert one.api_key != two.api_key
        token = one.issue_token()
        assert jwt.decode(token, secret, algorithms=["HS256"])["app"] == "app_shared"
        await (await connect(two, token=token)).close()  # any server holding the secret accepts it


def test_trusted_proxy_is_exempt_from_the_per_address_tcp_cap(make_server):
    server = make_server(max_http_connections_per_ip=2, trusted_proxies=("127.0.0.2",))
    guard = server._runner.guard
    proxy = _half_open(server.port, 5, "127.0.0.2")  # a balancer carries many clients
    other = _half_open(server.port, 5, "127.0.0.3")
    try:
        time.sleep(0.2)
        assert guard.by_address["127.0.0.2"] == 5 and guard.by_address["127.0.0.3"] == 2
        assert guard.refused["address"] == 3
    finally:
        for sock in proxy + other:
            sock.close()


def test_a_trickled_console_body_is_cut_off(make_server):
    server = make_server(header_timeout_s=1.0)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        sock.sendall(
            b"POST /v1/console/session-tokens HTTP/1.1\r\nHost: x\r\n"
            b"X-Api-Key: " + server.api_key.encode() + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer:
            sock.sendall(b" ")  # a byte at a time, never the whole body
            try:
                sock.settimeout(0.2)
                answer += sock.recv(4096)
            except TimeoutError:
                pass
            assert time.monotonic() - started < 4, "the server kept waiting for the body"
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]  # before: it waited for ever
    finally:
        sock.close()
