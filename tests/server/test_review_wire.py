"""Review fixes on the wire: Console API input, server SDK connection hygiene, Ogg buffering."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import websockets

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import classify, decode_envelope, encode_configure, encode_confirm
from avatarkit.server_sdk import new_avatar_session

pytestmark = pytest.mark.timeout(30)


async def test_console_api_refuses_an_expire_at_too_large_for_a_float(server):
    """A JSON integer beyond float range was an uncaught OverflowError: HTTP 500."""
    url = server.console_url + "/session-tokens"
    body = b'{"expireAt": 1' + b"0" * 400 + b"}"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers={"X-Api-Key": server.api_key}) as response:
            assert response.status == 400
            assert (await response.json())["errors"][0]["code"] == str(ErrorCode.INVALID_REQUEST)


async def _fake_motion_server(after_confirm, confirm: bytes = encode_confirm("conn")):
    """A websocket server that confirms the handshake, then runs ``after_confirm(ws)``."""
    closed = asyncio.Event()

    async def handler(ws):
        assert decode_envelope(await ws.recv()).type == pb.MESSAGE_CLIENT_CONFIGURE_SESSION
        await ws.send(confirm)
        await after_confirm(ws)
        try:
            await asyncio.wait_for(ws.wait_closed(), 5.0)
        finally:
            closed.set()

    server = await websockets.serve(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/v2/driveningress", closed


async def test_server_sdk_closes_the_socket_after_a_malformed_message():
    """The reader stopped on a bad envelope but left the websocket open, and close() then
    returned early (already 'closed'), so the connection leaked until the server timed out."""

    async def garbage(ws):
        await ws.send(b"\xff\xff\xff not a protobuf")

    server, url, closed = await _fake_motion_server(garbage)
    errors: list[Exception] = []
    try:
        session = new_avatar_session(
            avatar_id="ava", app_id="app", ingress_endpoint_url=url, on_error=errors.append
        )
        session.session_token = "token"
        await session.start()
        await asyncio.wait_for(closed.wait(), 5.0)  # the SDK hung up by itself
        assert errors and isinstance(errors[0], AvatarKitError)
        assert errors[0].code is ErrorCode.PROTOCOL_ERROR
        await session.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_server_sdk_interrupt_on_a_closed_socket_is_an_avatarkit_error():
    """interrupt() let websockets' ConnectionClosed escape (send_audio already wrapped it)."""

    async def hang_up(ws):
        await ws.close()

    server, url, closed = await _fake_motion_server(hang_up)
    try:
        session = new_avatar_session(avatar_id="ava", app_id="app", ingress_endpoint_url=url)
        session.session_token = "token"
        await session.start()
        await asyncio.wait_for(closed.wait(), 5.0)
        session._last_req_id = "req"
        session._closed = False  # the reader may not have seen the close yet: the race window
        with pytest.raises(AvatarKitError) as info:
            await session.interrupt()
        assert info.value.code is ErrorCode.CONNECTION_CLOSED
    finally:
        server.close()
        await server.wait_closed()


def test_ogg_decoder_accepts_a_full_size_message_after_a_partial_page(make_speech, make_ogg_opus):
    """The 1 MiB unparsed-bytes bound was checked before parsing, so a message of valid,
    complete pages near the message limit failed when a partial page was still buffered."""
    from avatarkit.protocol import ogg_opus

    stream = make_ogg_opus(make_speech(8.0))
    decoder = ogg_opus.OggOpusDecoder(16000)
    limit = ogg_opus.MAX_BUFFERED_BYTES
    ogg_opus.MAX_BUFFERED_BYTES = len(stream) - 10  # scale the bound to the test stream
    try:
        pcm = decoder.feed(stream[:20]) + decoder.feed(stream[20:]) + decoder.finish()
    finally:
        ogg_opus.MAX_BUFFERED_BYTES = limit
    assert abs(len(pcm) // 2 - 8 * 16000) < 16000 * 0.05


async def test_a_large_ogg_message_does_not_stall_the_event_loop(
    make_server, make_speech, make_ogg_opus
):
    """A whole Ogg Opus message was decoded in one call on the event loop (1 MiB at 64 kbps
    is ~2 min of audio; at low bitrates up to the 600 s utterance cap): every other session
    on the server stalled for that long. It is now decoded in slices with yields between."""
    import threading

    from avatarkit.protocol import encode_audio, encode_configure
    from avatarkit.protocol.ogg_opus import OggOpusDecoder

    stream = make_ogg_opus(make_speech(120.0))  # just under the 1 MiB message limit
    started = time.perf_counter()
    OggOpusDecoder(16000).feed(stream)
    decode_s = time.perf_counter() - started

    server = make_server(idle_timeout_s=60.0)
    loop = server._loop
    ticks: list[float] = []
    stop = threading.Event()

    def tick() -> None:  # a heartbeat on the server's loop: gaps between ticks are stalls
        ticks.append(time.perf_counter())
        if not stop.is_set():
            loop.call_later(0.002, tick)

    loop.call_soon_threadsafe(tick)
    headers = {"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()}
    async with websockets.connect(
        server.ingress_url + "/websocket?id=ava", additional_headers=headers, max_size=None
    ) as ws:
        await ws.send(encode_configure(16000, audio_format=pb.AUDIO_FORMAT_OGG_OPUS))
        assert decode_envelope(await ws.recv()).type == pb.MESSAGE_SERVER_CONFIRM_SESSION
        await asyncio.sleep(0.05)
        sent = time.perf_counter()
        await ws.send(encode_audio("req", stream, end=True))
        while True:
            envelope = decode_envelope(await asyncio.wait_for(ws.recv(), 20.0))
            assert envelope.type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION, envelope
            if envelope.server_response_animation.end:
                break
    await asyncio.sleep(0.1)  # a tick after the last stall, too
    stop.set()
    window = [sent] + [t for t in ticks if t > sent]
    gaps = [b - a for a, b in zip(window, window[1:], strict=False)]
    assert max(gaps) < decode_s / 2, (max(gaps), decode_s)  # was about decode_s before


async def test_a_session_missed_by_the_drain_is_closed_like_the_others(server):
    """A session whose upgrade was still in flight when draining began is not in the
    drain's snapshot of sessions. It used to be confirmed and then sit there (every
    utterance refused) until aiohttp's cleanup cut it 2 s after the grace period."""
    from avatarkit.protocol import classify, encode_configure
    from avatarkit.server.app import server_state

    headers = {"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()}
    async with websockets.connect(
        server.ingress_url + "/websocket?id=ava", additional_headers=headers
    ) as ws:
        state = server_state(server._runner.app)
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(_set_draining(state), server._loop)
        )
        await ws.send(encode_configure(16000))
        envelope = decode_envelope(await asyncio.wait_for(ws.recv(), 5.0))
        assert envelope.type == pb.MESSAGE_SERVER_ERROR, envelope
        assert (
            classify(envelope.server_error.code, envelope.server_error.message)
            is ErrorCode.SERVER_SHUTTING_DOWN
        )
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5.0)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    server_state(server._runner.app).draining = False  # let the fixture stop it normally


async def _set_draining(state) -> None:
    state.draining = True  # what _drain_sessions does first, before it lists the sessions


async def test_public_sdk_reads_the_per_address_refusal_as_invalid_request(
    make_server, sdk_session
):
    """docs/protocol.md said serverError; the SDK maps any other 4xx upgrade refusal to
    invalidRequest (only our own classifier reads the phrase as concurrentLimitExceeded)."""
    import spatius

    server = make_server(max_connections_per_ip=1)
    first = sdk_session(target=server)
    await first.init()
    await first.start()
    try:
        second = sdk_session(target=server)
        await second.init()
        with pytest.raises(spatius.AvatarSDKError) as info:
            await second.start()
        assert info.value.code == spatius.AvatarSDKErrorCode.invalidRequest
    finally:
        await first.close()


def test_ogg_decoder_bounds_a_packet_that_never_ends():
    """A packet continued page after page (every lacing value 255) was collected without
    limit: nothing decodes, so the per-utterance audio cap never applied, and one session
    could grow server memory for as long as it kept sending."""
    import struct

    from avatarkit.protocol import ogg_opus

    def page(seq: int) -> bytes:
        header = struct.pack("<4sBBqIIIB", b"OggS", 0, 1 if seq else 0, -1, 7, seq, 0, 255)
        return header + bytes([255] * 255) + bytes(255 * 255)

    decoder = ogg_opus.OggOpusDecoder(16000)
    fed = 0
    with pytest.raises(AvatarKitError) as info:
        while fed < 4 * ogg_opus.MAX_BUFFERED_BYTES:
            chunk = b"".join(page(fed // 65307 + i) for i in range(4))
            decoder.feed(chunk)
            fed += len(chunk)
    assert info.value.code is ErrorCode.INVALID_AUDIO
    assert fed <= 2 * ogg_opus.MAX_BUFFERED_BYTES


async def test_server_sdk_closes_the_socket_after_a_malformed_handshake_reply():
    """start() raised protocolError on a garbage reply but left the websocket open."""

    async def nothing(ws):
        pass

    server, url, closed = await _fake_motion_server(nothing, confirm=b"\xff\xff garbage")
    try:
        session = new_avatar_session(avatar_id="ava", app_id="app", ingress_endpoint_url=url)
        session.session_token = "token"
        with pytest.raises(AvatarKitError) as info:
            await session.start()
        assert info.value.code is ErrorCode.PROTOCOL_ERROR
        await asyncio.wait_for(closed.wait(), 5.0)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_non_ascii_digit_fps_is_an_invalid_request(server):
    """``"²".isdigit()`` is true but ``int("²")`` raises: the ValueError escaped the
    handshake, so the client got an abnormal close instead of an invalidRequest error."""
    from avatarkit.protocol import classify, encode_configure

    headers = {"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()}
    async with websockets.connect(
        server.ingress_url + "/websocket?id=ava", additional_headers=headers
    ) as ws:
        await ws.send(encode_configure(16000, extra_params={"fps": "\u00b2"}))
        envelope = decode_envelope(await asyncio.wait_for(ws.recv(), 5.0))
        assert envelope.type == pb.MESSAGE_SERVER_ERROR, envelope
        assert (
            classify(envelope.server_error.code, envelope.server_error.message)
            is ErrorCode.INVALID_REQUEST
        )


async def test_one_broken_limit_check_does_not_stop_the_watchdog_for_the_others(
    make_server, monkeypatch
):
    """A session whose limit check raises is closed with serverError; the others keep
    their idle-timeout checks (the watchdog task must not die)."""
    from avatarkit.server.session import Session

    server = make_server(idle_timeout_s=0.5)
    original = Session.check_limits
    broken: list[str] = []  # the connection id whose check raises

    def check(self, now_monotonic, now_unix):
        if self.connection_id in broken:
            raise RuntimeError("boom")
        return original(self, now_monotonic, now_unix)

    monkeypatch.setattr(Session, "check_limits", check)
    token_a, token_b = server.issue_token(), server.issue_token()
    url = f"{server.ingress_url}/websocket?id=ava&appId={server.app_id}&sessionKey="
    async with (
        websockets.connect(url + token_a) as first,
        websockets.connect(url + token_b) as second,
    ):
        confirmed = []
        for ws in (first, second):
            await ws.send(encode_configure(16000))
            confirmed.append(decode_envelope(await ws.recv()))
        assert all(m.type == pb.MESSAGE_SERVER_CONFIRM_SESSION for m in confirmed)
        broken.append(confirmed[0].server_confirm_session.connection_id)
        closed = []
        for ws in (first, second):
            try:
                while True:
                    message = decode_envelope(await asyncio.wait_for(ws.recv(), 5))
                    if message.type == pb.MESSAGE_SERVER_ERROR:
                        closed.append(
                            classify(message.server_error.code, message.server_error.message)
                        )
            except websockets.ConnectionClosed:
                pass
    assert sorted(closed) == sorted([ErrorCode.SERVER_ERROR, ErrorCode.IDLE_TIMEOUT])
