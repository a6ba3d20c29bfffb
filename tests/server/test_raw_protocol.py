"""Malformed and edge-case input on a raw websocket (our own encoders, no SDK in between)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time

import aiohttp
import numpy as np
import pytest
import websockets

from avatarkit.errors import ErrorCode
from avatarkit.package import list_packages
from avatarkit.paths import AVATARS_DIR
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import (
    CLOSE_SLOW_CONSUMER,
    animation_frames,
    classify,
    decode_envelope,
    encode_audio,
    encode_configure,
    encode_interrupt,
)

pytestmark = pytest.mark.timeout(30)
BUNDLED = list_packages(AVATARS_DIR)


async def connect(server, *, configure: bool = True, sample_rate: int = 16000, **ws_options):
    headers = {"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()}
    ws = await websockets.connect(
        server.ingress_url + "/websocket?id=ava", additional_headers=headers, **ws_options
    )
    if configure:
        await ws.send(encode_configure(sample_rate))
        assert decode_envelope(await ws.recv()).type == pb.MESSAGE_SERVER_CONFIRM_SESSION
    return ws


async def receive(ws, timeout: float = 5.0) -> pb.Message:
    return decode_envelope(await asyncio.wait_for(ws.recv(), timeout))


async def receive_error(ws) -> tuple[ErrorCode, pb.ServerError]:
    envelope = await receive(ws)
    assert envelope.type == pb.MESSAGE_SERVER_ERROR, envelope
    err = envelope.server_error
    return classify(err.code, err.message), err


async def utterance(ws, req_id: str) -> list:
    """Frames of ``req_id`` up to its end=true message."""
    frames = []
    while True:
        envelope = await receive(ws)
        assert envelope.type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION, envelope
        got_req, got, end = animation_frames(envelope)
        assert got_req == req_id
        frames += got
        if end:
            return frames


def expected_frames(n_bytes: int, rate: int = 16000, fps: int = 30) -> int:
    return math.ceil(n_bytes // 2 * fps / rate)


async def test_audio_before_configure_is_a_protocol_error(server):
    ws = await connect(server, configure=False)
    await ws.send(encode_audio("r1", b"\0\0" * 100))
    code, err = await receive_error(ws)
    assert code is ErrorCode.PROTOCOL_ERROR
    assert "expected ClientConfigureSession message" in err.message
    with pytest.raises(websockets.ConnectionClosed):
        await receive(ws)


@pytest.mark.parametrize("first", [b"\xff\xff\xff garbage", "configure please"])
async def test_malformed_first_message_is_refused(server, first):
    ws = await connect(server, configure=False)
    await ws.send(first)
    code, _ = await receive_error(ws)
    assert code is ErrorCode.PROTOCOL_ERROR
    with pytest.raises(websockets.ConnectionClosed):
        await receive(ws)


async def test_bad_messages_after_handshake_keep_the_session(server, make_speech):
    ws = await connect(server)
    await ws.send(pb.Message(type=99).SerializeToString())  # unknown message type
    assert (await receive_error(ws))[0] is ErrorCode.PROTOCOL_ERROR
    await ws.send("text is not protobuf")
    assert (await receive_error(ws))[0] is ErrorCode.PROTOCOL_ERROR
    await ws.send(b"\x0a\xff")  # truncated protobuf
    assert (await receive_error(ws))[0] is ErrorCode.INVALID_REQUEST
    await ws.send(encode_audio("", b"\0\0"))  # no req_id
    assert (await receive_error(ws))[0] is ErrorCode.INVALID_REQUEST
    await ws.send(encode_configure(16000))  # configured twice
    assert (await receive_error(ws))[0] is ErrorCode.INVALID_REQUEST
    pcm = make_speech(0.5)
    await ws.send(encode_audio("ok", pcm, end=True))
    assert len(await utterance(ws, "ok")) == expected_frames(len(pcm))
    await ws.close()


async def test_odd_length_and_empty_chunks(server, make_speech):
    pcm = make_speech(1.0)
    ws = await connect(server)
    await ws.send(encode_audio("whole", pcm, end=True))
    whole = await utterance(ws, "whole")
    for i in range(0, len(pcm), 333):  # every chunk odd-sized: samples straddle messages
        await ws.send(encode_audio("odd", pcm[i : i + 333]))
        await ws.send(encode_audio("odd", b""))
    await ws.send(encode_audio("odd", b"", end=True))  # the last chunk may be empty
    odd = await utterance(ws, "odd")
    assert (
        [f.index for f in odd] == [f.index for f in whole] == list(range(expected_frames(len(pcm))))
    )
    np.testing.assert_allclose([f.weights for f in odd], [f.weights for f in whole], atol=2 / 255)
    await ws.send(encode_audio("empty", b"", end=True))  # an utterance with no audio at all
    assert await utterance(ws, "empty") == []
    await ws.close()


async def test_ended_request_cannot_take_more_audio(server):
    ws = await connect(server)
    await ws.send(encode_audio("r", b"\0\0" * 1600, end=True))
    await utterance(ws, "r")
    await ws.send(encode_audio("r", b"\0\0" * 100))
    code, err = await receive_error(ws)
    assert code is ErrorCode.INVALID_REQUEST and err.req_id == "r"
    await ws.close()


async def test_late_audio_after_interrupt_yields_nothing(server, make_speech):
    pcm = make_speech(1.0)
    ws = await connect(server)
    await ws.send(encode_audio("a", pcm[:8000]))
    assert (await receive(ws)).server_response_animation.req_id == "a"
    await ws.send(encode_interrupt("a"))
    await ws.send(encode_audio("a", pcm[8000:], end=True))  # too late: dropped silently
    await ws.send(encode_audio("b", pcm[:3200], end=True))
    while True:  # frames of "a" already in flight may still arrive, never its end
        envelope = await receive(ws)
        req_id, _, end = animation_frames(envelope)
        assert not (req_id == "a" and end)
        if req_id == "b" and end:
            break
    await ws.close()


async def test_fps_can_be_chosen_per_session(server, make_speech):
    pcm = make_speech(0.5)
    ws = await websockets.connect(
        server.ingress_url + "/websocket?id=ava",
        additional_headers={"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()},
    )
    await ws.send(encode_configure(16000, extra_params={"fps": "60"}))
    assert (await receive(ws)).type == pb.MESSAGE_SERVER_CONFIRM_SESSION
    await ws.send(encode_audio("r", pcm, end=True))
    frames = await utterance(ws, "r")
    assert len(frames) == expected_frames(len(pcm), fps=60) and frames[0].fps == 60
    await ws.close()
    ws = await connect(server, configure=False)
    await ws.send(encode_configure(16000, extra_params={"fps": "61"}))
    assert (await receive_error(ws))[0] is ErrorCode.INVALID_REQUEST
    await ws.close()


async def test_oversized_messages(make_server):
    server = make_server(max_message_bytes=4096)
    ws = await connect(server)
    await ws.send(encode_audio("big", b"\0" * 5000))
    code, err = await receive_error(ws)
    assert code is ErrorCode.MESSAGE_TOO_LARGE and err.req_id == "big"
    await ws.send(
        encode_audio("big", b"\0" * 100, end=True)
    )  # the rest of it: ignored, no error spam
    await ws.send(encode_audio("small", b"\0" * 3000, end=True))  # the session goes on
    await utterance(ws, "small")
    await ws.send(encode_audio("huge", b"\0" * 9000))  # past the hard cap: closed with 1009
    with pytest.raises(websockets.ConnectionClosed) as info:
        await receive(ws)
    assert info.value.rcvd.code == 1009


async def test_burst_faster_than_real_time_streams_promptly(make_server, make_speech):
    server = make_server(max_utterance_audio_s=15)
    pcm = make_speech(10.0)
    ws = await connect(server)
    sent = time.perf_counter()
    for i in range(0, len(pcm), 32000):  # 10 s of TTS audio as fast as the socket takes it
        await ws.send(encode_audio("burst", pcm[i : i + 32000]))
    first = await receive(ws)
    assert first.server_response_animation.first_frame == 0
    assert time.perf_counter() - sent < 5.0
    await ws.send(encode_audio("burst", b"", end=True))
    frames = animation_frames(first)[1] + await utterance(ws, "burst")
    assert len(frames) == expected_frames(len(pcm))
    await ws.send(encode_audio("long", pcm))  # past max_utterance_audio_s in total
    await ws.send(encode_audio("long", pcm))
    while (envelope := await receive(ws)).type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION:
        pass
    assert (
        classify(envelope.server_error.code, envelope.server_error.message)
        is ErrorCode.INVALID_REQUEST
    )
    assert "15 s of audio" in envelope.server_error.message
    await ws.close()


async def test_slow_consumer_is_closed_not_buffered(make_server, make_speech):
    server = make_server(send_queue_messages=8, batch_frames=1, max_frames_per_message=1)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing
    headers = {"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()}
    ws = await websockets.connect(
        server.ingress_url + "/websocket?id=ava",
        additional_headers=headers,
        sock=sock,
        max_queue=1,
        max_size=None,
        compression=None,
    )
    await ws.send(encode_configure(16000))
    pcm = make_speech(10.0)
    deadline = time.monotonic() + 15
    sent = 0
    while server.stats.errors[ErrorCode.SLOW_CONSUMER] == 0 and time.monotonic() < deadline:
        try:
            for i in range(0, len(pcm), 640):  # TTS-style 20 ms chunks, one frame per message back
                await ws.send(encode_audio("r", pcm[i : i + 640]))
        except websockets.ConnectionClosed:
            break  # the server already dropped us
        sent += len(pcm)
        await asyncio.sleep(0.05)
    assert sent <= 12 * len(pcm)  # detected within two minutes of audio, not after everything
    assert server.stats.errors[ErrorCode.SLOW_CONSUMER] == 1
    while server.active_sessions and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert server.active_sessions == 0
    with pytest.raises(
        websockets.ConnectionClosed
    ) as info:  # reading now: the backlog, then the close
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    if info.value.rcvd is not None:
        assert info.value.rcvd.code == CLOSE_SLOW_CONSUMER


def _signed(server, **claims) -> str:
    import jwt

    base = {
        "app": server.app_id,
        "exp": int(time.time()) + 600,
        "jti": f"t{time.monotonic_ns()}",
        "scope": "motion:stream",
    }
    return jwt.encode({**base, **claims}, server.config.signing_key(), algorithm="HS256")


def _errors_body(status: int, code: str, title: str, detail: str) -> bytes:
    return json.dumps(
        {"errors": [{"status": status, "code": code, "title": title, "detail": detail}]}
    ).encode()


async def test_refused_upgrades_answer_exactly_as_documented(server):
    """The table in docs/protocol.md §3, byte for byte (the vendor's check order: token first)."""
    url = server.ingress_url.replace("ws://", "http://") + "/websocket?id=ava"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:  # not a websocket upgrade
            assert response.status == 400
            assert await response.read() == _errors_body(
                400, "invalidRequest", "invalid request", "expected a websocket upgrade"
            )
    ours, valid = server.app_id, server.issue_token()
    invalid = b'{"message":"Invalid session token"}\n'
    cases = [
        # (app id, token, avatar id) -> (status, exact body)
        ((ours, "", "ava"), (400, invalid)),  # no token
        (("e2e-invalid-app", "e2e-invalid-session-token", "e2e-invalid-avatar"), (400, invalid)),
        ((ours, _signed(server, scope="admin"), "ava"), (400, invalid)),
        ((ours, _signed(server, alg_none=1)[:-4] + "AAAA", "ava"), (400, invalid)),  # forged
        (
            (ours, _signed(server, exp=int(time.time()) - 5), "ava"),
            (
                401,
                _errors_body(
                    401,
                    "sessionTokenExpired",
                    "session token expired",
                    "the token's expireAt has passed",
                ),
            ),
        ),
        (
            ("app_other", valid, "ava"),
            (
                404,
                _errors_body(
                    404,
                    "appIDUnrecognized",
                    "app id unrecognized",
                    "app id unrecognized: 'app_other'",
                ),
            ),
        ),
        (
            (ours, _signed(server, app="app_other"), "ava"),
            (
                400,
                _errors_body(
                    400,
                    "appIDMismatch",
                    "app id mismatch",
                    "app id mismatch: the token belongs to another app",
                ),
            ),
        ),
        (
            (ours, valid, "nope"),
            (
                404,
                _errors_body(
                    404,
                    "avatarNotFound",
                    "avatar not found",
                    f"Avatar not found: no avatar 'nope' among the {len(BUNDLED)} served from "
                    f"the bundled avatars ({AVATARS_DIR})",  # where it looked
                ),
            ),
        ),
        (
            (ours, valid, "../x"),
            (
                404,
                _errors_body(
                    404,
                    "avatarNotFound",
                    "avatar not found",
                    "Avatar not found: malformed avatar id",
                ),
            ),
        ),
    ]
    for (app_id, token, avatar), (status, body) in cases:
        headers = {"X-App-ID": app_id, "X-Session-Key": token}
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(
                f"{server.ingress_url}/websocket?id={avatar}", additional_headers=headers
            )
        response = info.value.response
        assert (response.status_code, response.body) == (status, body), (app_id, token, avatar)
        assert response.headers["Content-Type"].startswith("application/json")
        parsed = json.loads(response.body)
        first = (parsed.get("errors") or [parsed])[0]
        text = " ".join(str(first.get(k, "")) for k in ("title", "detail", "message"))
        expected = {400: ErrorCode.SESSION_TOKEN_INVALID, 401: ErrorCode.SESSION_TOKEN_EXPIRED}.get(
            status
        )
        code = classify(first.get("code"), text, http_status=status, upgrade=True)
        assert code == (expected if "code" not in first else first["code"])


async def test_console_api_refuses_bad_requests(server):
    url = server.console_url + "/session-tokens"
    key = {"X-Api-Key": server.api_key}
    cases = [
        (key, b"not json", 400, ErrorCode.INVALID_REQUEST),
        (key, b"[1, 2]", 400, ErrorCode.INVALID_REQUEST),
        (key, json.dumps({"expireAt": "soon"}).encode(), 400, ErrorCode.INVALID_REQUEST),
        (
            key,
            json.dumps({"expireAt": time.time() + 60, "appId": "other"}).encode(),
            404,
            ErrorCode.APP_ID_UNRECOGNIZED,
        ),
        ({}, json.dumps({"expireAt": time.time() + 60}).encode(), 403, "invalidApiKey"),
    ]
    async with aiohttp.ClientSession() as http:
        for headers, body, status, code in cases:
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == status, body
                assert (await response.json())["errors"][0]["code"] == code
        payload = {"expireAt": int(time.time()) + 60, "appId": server.app_id}
        async with http.post(url, json=payload, headers=key) as response:
            assert response.status == 200
            assert (await response.json())["sessionToken"].count(".") == 2
        async with http.get(server.base_url + "/v1/health") as response:
            assert (await response.json())["status"] == "ok"


async def test_assets_are_served_on_the_same_port(server):
    pytest.importorskip("avatarkit.server.assets")
    async with aiohttp.ClientSession() as http, http.get(server.assets_url) as response:
        assert response.status == 200
        assert isinstance((await response.json())["avatars"], list)


async def test_idle_timeout_applies_mid_utterance_too(make_server):
    server = make_server(idle_timeout_s=0.3)
    ws = await connect(server)
    await ws.send(encode_audio("r", b"\0\0" * 160))  # opens an utterance, then nothing more
    while (envelope := await receive(ws)).type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION:
        pass
    err = envelope.server_error
    assert classify(err.code, err.message) is ErrorCode.IDLE_TIMEOUT
    assert err.message.startswith("no audio input for 0.3 s")
    with pytest.raises(websockets.ConnectionClosedOK):
        await receive(ws)


async def test_invalid_ogg_opus_is_refused_per_utterance(server, make_speech, make_ogg_opus):
    ws = await websockets.connect(
        server.ingress_url + "/websocket?id=ava",
        additional_headers={"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()},
    )
    await ws.send(encode_configure(16000, audio_format=pb.AUDIO_FORMAT_OGG_OPUS))
    assert (await receive(ws)).type == pb.MESSAGE_SERVER_CONFIRM_SESSION
    await ws.send(encode_audio("junk", b"RIFF....WAVEfmt " * 10))
    code, err = await receive_error(ws)
    assert code is ErrorCode.INVALID_AUDIO and err.req_id == "junk"
    stream = make_ogg_opus(make_speech(0.5))
    await ws.send(encode_audio("cut", stream[: len(stream) - 100], end=True))  # truncated page
    code, err = await receive_error(ws)
    assert code is ErrorCode.INVALID_AUDIO and err.req_id == "cut"
    await ws.send(encode_audio("ok", stream, end=True))  # the session goes on
    assert abs(len(await utterance(ws, "ok")) - 15) <= 1
    await ws.close()


async def test_unknown_audio_format_is_refused(server):
    ws = await connect(server, configure=False)
    await ws.send(encode_configure(16000, audio_format=7))
    code, err = await receive_error(ws)
    assert code is ErrorCode.UNSUPPORTED_AUDIO_FORMAT and err.code == 3  # SDK: invalidRequest


async def test_clients_read_the_bare_invalid_token_body(server):
    """Our two clients report the server's text of a {"message": ...} refusal, not a blank."""
    from avatarkit.controller.direct import _refusal
    from avatarkit.errors import AvatarKitError
    from avatarkit.server_sdk import new_avatar_session

    headers = {"X-App-ID": server.app_id, "X-Session-Key": "bogus"}
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(
            server.ingress_url + "/websocket?id=ava", additional_headers=headers
        )
    error = _refusal(info.value)
    assert error.code is ErrorCode.SESSION_TOKEN_INVALID
    assert error.message == "connection refused (400): Invalid session token"
    session = new_avatar_session(
        avatar_id="ava",
        api_key=server.api_key,
        app_id=server.app_id,
        console_endpoint_url=server.console_url,
        ingress_endpoint_url=server.ingress_url,
    )
    session.session_token = "bogus"
    with pytest.raises(AvatarKitError) as info:
        await session.start()
    assert info.value.code is ErrorCode.SESSION_TOKEN_INVALID
    assert info.value.message == "HTTP 400: Invalid session token"
