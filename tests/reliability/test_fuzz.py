"""Bad input: decoders under hypothesis, random and mutated envelopes over a real socket while a
healthy session streams, and the HTTP surfaces (asset service, Console API)."""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import connect, expected_frames, receive_utterance, speech_pcm

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import (
    animation_frames,
    classify,
    decode_envelope,
    encode_animation,
    encode_audio,
    encode_configure,
    encode_interrupt,
)

pytestmark = pytest.mark.timeout(60)
QUICK = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_animation() -> bytes:
    import numpy as np

    from avatarkit.motion import MotionFrame

    rng = np.random.default_rng(1)
    frames = [
        MotionFrame(
            i,
            30,
            rng.random(52, dtype=np.float32),
            rng.normal(0, 0.1, 3).astype(np.float32),
            rng.normal(0, 0.1, 2).astype(np.float32),
        )
        for i in range(9)
    ]
    return encode_animation("conn", "req", frames, end=True)


ANIMATION = _valid_animation()


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        if op < 0.5 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif op < 0.75 and out:
            del out[rng.randrange(len(out)) :][: rng.randint(1, 16)]
        else:
            pos = rng.randint(0, len(out))
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
    return bytes(out)


@QUICK
@given(st.binary(max_size=4096))
def test_decoders_raise_only_protocol_errors(data):
    try:
        envelope = decode_envelope(data)
    except AvatarKitError as exc:
        assert exc.code is ErrorCode.PROTOCOL_ERROR
        return
    try:
        animation_frames(envelope)
    except AvatarKitError as exc:
        assert exc.code in (ErrorCode.PROTOCOL_ERROR, ErrorCode.INVALID_ANIMATION_DATA)


@QUICK
@given(st.randoms(use_true_random=False))
def test_mutated_animation_envelopes_decode_or_fail_cleanly(rng):
    try:
        req_id, frames, _ = animation_frames(decode_envelope(mutate(ANIMATION, rng)))
    except AvatarKitError as exc:
        assert exc.code in (ErrorCode.PROTOCOL_ERROR, ErrorCode.INVALID_ANIMATION_DATA)
        return
    for frame in frames:  # whatever survived is well-formed
        assert (
            frame.weights.shape == (52,) and 0 <= frame.weights.min() and frame.weights.max() <= 1
        )


@QUICK
@given(
    st.one_of(st.none(), st.integers(), st.text(max_size=20)),
    st.text(max_size=200),
    st.one_of(st.none(), st.integers(100, 599)),
)
def test_classify_always_gives_a_code(code, text, status):
    assert isinstance(classify(code, text, http_status=status), ErrorCode)


def _hostile_messages(rng: random.Random, n: int) -> list[bytes | str]:
    pcm = speech_pcm(0.2)
    makers = [
        lambda: rng.randbytes(rng.randint(0, 2048)),
        lambda: mutate(encode_audio("m", pcm), rng),
        lambda: mutate(encode_configure(16000), rng),
        lambda: encode_configure(rng.choice([0, 1, 7999, 2**31 - 1, 96000, -1, -(2**31)])),
        lambda: encode_audio(
            "x" * rng.choice([1, 1000, 100_000]), pcm[: rng.randint(0, 641)], end=rng.random() < 0.3
        ),
        lambda: encode_audio("", pcm),
        lambda: encode_audio(
            f"r{rng.randint(0, 9)}", pcm[: rng.randrange(1, 641, 2)], end=rng.random() < 0.5
        ),
        lambda: encode_interrupt(f"r{rng.randint(0, 9)}"),
        lambda: pb.Message(type=rng.randint(6, 1000)).SerializeToString(),
        lambda: pb.Message(type=pb.MESSAGE_SERVER_RESPONSE_ANIMATION).SerializeToString(),
        lambda: "text frame \u2603",
        lambda: encode_audio(
            "big", b"\0" * (5000 + rng.randint(0, 3000))
        ),  # over this server's 4 KB limit
    ]
    return [rng.choice(makers)() for _ in range(n)]


async def _hostile_client(server, messages, replies: list) -> int:
    """Sends everything (reconnecting when closed); returns how many connections it took."""
    connections, i = 0, 0
    while i < len(messages):
        connections += 1
        ws = await connect(server, configure=False)
        try:
            if connections % 2:  # half the connections are configured first, half start hostile
                await ws.send(encode_configure(16000))
            while i < len(messages):
                await ws.send(messages[i])
                i += 1
                while True:  # drain whatever came back, without waiting on the server
                    try:
                        replies.append(await asyncio.wait_for(ws.recv(), 0.001))
                    except TimeoutError:
                        break
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is None or exc.rcvd.code in (1000, 1009, 1002, 1007), exc
            i += 1
        finally:
            await ws.close()
    return connections


async def test_socket_fuzz_never_hurts_the_server_or_a_healthy_session(make_server):
    server = make_server(max_message_bytes=4096)
    rng = random.Random(8)
    messages = _hostile_messages(rng, 400)
    healthy = await connect(server)
    pcm = speech_pcm(3.0, seed=3)
    replies: list = []

    async def healthy_session() -> list:
        for i in range(0, len(pcm), 640):  # 20 ms chunks, a bit faster than real time
            await healthy.send(encode_audio("good", pcm[i : i + 640], end=i + 640 >= len(pcm)))
            await asyncio.sleep(0.005)
        return await receive_utterance(healthy, "good")

    start = time.monotonic()
    frames, connections = await asyncio.gather(
        healthy_session(), _hostile_client(server, messages, replies)
    )
    assert time.monotonic() - start < 30
    assert [f.index for f in frames] == list(range(expected_frames(len(pcm))))  # complete, in order
    for data in replies:  # every answer is a well-formed envelope; errors carry a stable code
        envelope = decode_envelope(data)
        if envelope.type == pb.MESSAGE_SERVER_ERROR:
            assert (
                classify(envelope.server_error.code, envelope.server_error.message)
                is not ErrorCode.SERVER_ERROR
            )
    assert sum(server.stats.errors.values()) > 50 and connections >= 1
    assert ErrorCode.SERVER_ERROR not in server.stats.errors
    await healthy.close()
    async with aiohttp.ClientSession() as http, http.get(server.base_url + "/v1/health") as resp:
        assert (await resp.json())["status"] == "ok"  # still serving


ASSET_PATHS = [
    "/v1/avatars/ava/files/..%2f..%2fmanifest.json",
    "/v1/avatars/..%2f..%2fetc/files/passwd",
    "/v1/avatars/ava/files/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/v1/avatars/ava/files/..\\..\\x",
    "/v1/avatars/%2e%2e/files/ava",
    "/v1/avatars/ava/files/%00",
    "/v1/avatars/ava/files/\u00e9\u2603.glb",
    "/v1/avatars/\u0430va",
    "/v1/avatars/ava/files/" + "a" * 5000,
    "/v1/avatars/ava/files//etc/passwd",
    "/v1/avatars/ava%00/files/x",
    "/v1/avatars/ava/files/manifest.json%20",
]


async def test_asset_service_paths_ranges_and_headers(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.assets_url + "/ava") as resp:
            manifest = await resp.json()
        name = manifest["files"][0]["name"] if isinstance(manifest.get("files"), list) else None
        for path in ASSET_PATHS:
            async with http.get(server.base_url + path) as resp:
                body = await resp.read()
                assert resp.status in (400, 404), (path, resp.status)
                assert b"[project]" not in body and b"root:" not in body
        if name is None:
            return
        url = f"{server.assets_url}/ava/files/{name}"
        async with http.get(url) as resp:
            whole = await resp.read()
        rng = random.Random(4)
        ranges = [
            "bytes=0-0",
            "bytes=-1",
            f"bytes={len(whole)}-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=0-1,3-4",
            "bytes=a-b",
            "items=0-1",
            "bytes=" + "9" * 40 + "-",
            "bytes=--1",
            "",
        ]
        ranges += [
            f"bytes={rng.randint(0, len(whole) * 2)}-"
            f"{rng.choice(['', rng.randint(0, len(whole) * 2)])}"
            for _ in range(30)
        ]
        for header in ranges:
            for extra in ({}, {"If-Range": '"nope"'}, {"If-None-Match": "\u00ff,,*, W/"}):
                async with http.get(url, headers={"Range": header, **extra}) as resp:
                    body = await resp.read()
                    assert resp.status in (200, 206, 304, 416), (header, extra, resp.status)
                    if resp.status == 206:
                        first, last = map(
                            int, resp.headers["Content-Range"].split()[1].split("/")[0].split("-")
                        )
                        assert body == whole[first : last + 1]
                    elif resp.status == 200:
                        assert body == whole


async def test_console_api_json_and_expire_at(server):
    url = server.console_url + "/session-tokens"
    now = time.time()
    bodies = [
        b"",
        b"null",
        b"[]",
        b"{",
        b'{"expireAt": "soon"}',
        b'{"expireAt": true}',
        b'{"expireAt": 1e400}',
        b'{"expireAt": NaN}',
        b'{"expireAt": -1}',
        b'{"expireAt": 0}',
        b'{"expireAt": 99999999999999999999999999}',
        b'{"expireAt": null}',
        b'{"appId": 5}',
        b'{"expireAt": [1]}',
        b'{"expireAt": {}}',
        b"\xff\xfe",
        b'"x"',
        b"1" * 10000,
        f'{{"expireAt": {now + 30}, "appId": "other"}}'.encode(),
    ]
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            async with http.post(
                url,
                data=body,
                headers={"X-Api-Key": server.api_key, "Content-Type": "application/json"},
            ) as resp:
                assert resp.status in (400, 404), (body[:40], resp.status)
                assert (await resp.json())["errors"][0]["code"]
        async with http.post(
            url, data=b"{" + b" " * (2 << 20) + b"}", headers={"X-Api-Key": server.api_key}
        ) as resp:
            assert resp.status == 413  # body size is bounded (aiohttp's 1 MiB default)
        async with http.post(
            url, json={"expireAt": now + 30}, headers={"X-Api-Key": server.api_key}
        ) as resp:
            assert resp.status == 200
