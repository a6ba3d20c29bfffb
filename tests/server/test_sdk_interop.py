"""The public Spatius server SDK, unmodified, against our Motion Server over real sockets."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from datetime import UTC, datetime, timedelta

import jwt
import numpy as np
import pytest
from spatius import (
    AudioFormat,
    AvatarSDKError,
    AvatarSDKErrorCode,
    LiveKitEgressConfig,
    SessionTokenError,
)
from spatius.token_cache import clear_cached_session_tokens, store_session_token

import avatarkit.motion as motion_module
from avatarkit.errors import ErrorCode
from avatarkit.protocol import classify, decode_animation
from avatarkit.protocol.motion import WEIGHT_SCALE

pytestmark = pytest.mark.timeout(30)

CHUNK = 640  # 20 ms at 16 kHz


def frames_of(recorder):
    out = []
    for data, _ in recorder.envelopes:
        out.extend(decode_animation(data)[1])
    return out


def plant_token(server, token: str) -> None:
    """Make the SDK's init() use ``token`` (its prewarm cache: the SDK's own code path)."""
    store_session_token(
        api_key=server.api_key,
        app_id=server.app_id,
        console_endpoint_url=server.console_url,
        token=token,
        expire_at=datetime.now(UTC) + timedelta(hours=1),
    )


def signed(server, **claims) -> str:
    base = {
        "app": server.app_id,
        "exp": int(time.time()) + 600,
        "jti": "t1",
        "scope": "motion:stream",
    }
    return jwt.encode({**base, **claims}, server.config.signing_key(), algorithm="HS256")


async def expect_start_error(session) -> AvatarSDKError:
    await session.init()
    with pytest.raises(AvatarSDKError) as info:
        await session.start()
    await session.close()
    return info.value


@pytest.mark.parametrize("query_auth", [False, True])
async def test_whole_utterance_streams_to_end(
    server, sdk_session, recorder, make_speech, query_auth
):
    pcm = make_speech(2.0)
    async with sdk_session(recorder, use_query_auth=query_auth) as session:
        for chunk in [pcm[i : i + CHUNK] for i in range(0, len(pcm), CHUNK)]:
            req_id = await session.send_audio(chunk)
        assert await session.send_audio(b"", end=True) == req_id
        await recorder.wait_end()

    decoded = [decode_animation(data) for data, _ in recorder.envelopes]
    assert {r for r, _, _ in decoded} == {req_id}
    assert [end for _, _, end in decoded] == [False] * (len(decoded) - 1) + [True]
    assert [last for _, last in recorder.envelopes] == [end for _, _, end in decoded]
    frames = frames_of(recorder)
    assert [f.index for f in frames] == list(range(math.ceil(len(pcm) / 2 * 30 / 16000)))
    assert all(f.fps == 30 for f in frames)

    # The frames are the model's own output for the same chunks, quantised to bytes.
    stream = motion_module.create_stream(16000, 30)
    expected = [f for i in range(0, len(pcm), CHUNK) for f in stream.push(pcm[i : i + CHUNK])]
    expected += stream.finish()
    assert len(expected) == len(frames)
    np.testing.assert_allclose(
        np.stack([f.weights for f in frames]),
        np.clip(np.stack([f.weights for f in expected]), 0, 1),
        atol=0.5 / WEIGHT_SCALE + 1e-6,
    )
    assert max(float(f.weights.max()) for f in frames) > 0.0

    # Whole stream on the wire, envelope and websocket framing included, under 4 KB/s.
    wire = sum(len(d) + (2 if len(d) < 126 else 4) for d, _ in recorder.envelopes)
    assert wire / 2.0 < 4096
    assert not recorder.errors


async def test_two_concurrent_sessions(server, sdk_session, new_recorder, make_speech):
    async def run(seconds: float, seed: int):
        recorder = new_recorder()
        pcm = make_speech(seconds, seed=seed)
        async with sdk_session(recorder) as session:
            for i in range(0, len(pcm), CHUNK):
                await session.send_audio(pcm[i : i + CHUNK])
                await asyncio.sleep(0)  # interleave the two clients
            req_id = await session.send_audio(b"", end=True)
            await recorder.wait_end()
            return session.config, session._connection_id, req_id, len(pcm), recorder

    results = await asyncio.gather(run(1.0, 1), run(1.5, 2))
    for _, _, req_id, n_bytes, recorder in results:
        decoded = [decode_animation(d) for d, _ in recorder.envelopes]
        assert {r for r, _, _ in decoded} == {req_id}
        assert len(frames_of(recorder)) == math.ceil(n_bytes / 2 * 30 / 16000)
        assert not recorder.errors
    assert results[0][1] != results[1][1]
    assert server.stats.utterances == 2


async def test_interrupt_stops_animation_for_that_request(
    server, sdk_session, recorder, make_speech
):
    pcm = make_speech(3.0)
    async with sdk_session(recorder) as session:
        for i in range(0, len(pcm) // 3, CHUNK):
            first = await session.send_audio(pcm[i : i + CHUNK])
        await recorder.wait_for(lambda: len(recorder.envelopes) >= 3)
        assert await session.interrupt() == first
        # A new utterance after the interrupt: its end proves everything earlier was delivered.
        second = await session.send_audio(pcm[: CHUNK * 10])
        await session.send_audio(b"", end=True)
        await recorder.wait_end()
        await asyncio.sleep(0.2)  # a flush timer of the first request would have fired by now
    decoded = [decode_animation(d) for d, _ in recorder.envelopes]
    owners = [r for r, _, _ in decoded]
    assert set(owners) == {first, second}
    # Nothing for the interrupted request once the next one started, and it never "ended".
    assert max(i for i, r in enumerate(owners) if r == first) < owners.index(second)
    assert not any(end for r, _, end in decoded if r == first)
    first_frames = [f.index for r, fs, _ in decoded if r == first for f in fs]
    assert first_frames == list(range(len(first_frames)))


async def test_client_disconnect_mid_utterance(server, sdk_session, recorder, make_speech):
    pcm = make_speech(1.0)
    session = sdk_session(recorder)
    await session.init()
    await session.start()
    for i in range(0, len(pcm) // 2, CHUNK):
        await session.send_audio(pcm[i : i + CHUNK])
    await recorder.wait_for(lambda: recorder.envelopes)
    await session.close()
    await recorder.wait_for(lambda: server.active_sessions == 0)
    # The server is fine; the client reconnects with a fresh token (a token is single use).
    plant_token(server, session._session_token)  # the SDK's prewarm cache: same token again
    assert (await expect_start_error(sdk_session())).code is AvatarSDKErrorCode.sessionTokenInvalid
    clear_cached_session_tokens()
    again = sdk_session(recorder)  # init() fetches a fresh token from the Console API
    await again.init()
    await again.start()
    await again.send_audio(pcm[:CHUNK], end=True)
    await recorder.wait_end()
    await again.close()


async def test_wrong_api_key_is_refused(sdk_session):
    with pytest.raises(SessionTokenError) as info:
        await sdk_session(api_key="ak_wrong").init()
    assert info.value.code is AvatarSDKErrorCode.invalidRequest
    assert info.value.http_status == 403
    assert "invalid API key" in info.value.message


@pytest.mark.parametrize("expire_in", [timedelta(seconds=-5), timedelta(hours=25)])
async def test_token_expiry_out_of_range_is_refused(sdk_session, expire_in):
    with pytest.raises(SessionTokenError) as info:
        await sdk_session(expire_at=datetime.now(UTC) + expire_in).init()
    assert info.value.code is AvatarSDKErrorCode.invalidRequest
    assert info.value.http_status == 400
    assert "expireAt" in info.value.message


async def test_forged_token_is_refused(server, sdk_session):
    forged = jwt.encode(
        {"app": server.app_id, "exp": int(time.time()) + 600, "jti": "x", "scope": "motion:stream"},
        b"not the server key, but long enough for HS256",
        algorithm="HS256",
    )
    plant_token(server, forged)
    error = await expect_start_error(sdk_session())
    assert error.code is AvatarSDKErrorCode.sessionTokenInvalid
    assert error.http_status == 400


async def test_garbage_token_is_refused(server, sdk_session):
    plant_token(server, "not-a-jwt")
    assert (await expect_start_error(sdk_session())).code is AvatarSDKErrorCode.sessionTokenInvalid


async def test_expired_token_is_refused(server, sdk_session):
    plant_token(server, signed(server, exp=int(time.time()) - 5))
    error = await expect_start_error(sdk_session())
    assert error.code is AvatarSDKErrorCode.sessionTokenExpired
    assert error.http_status == 401


async def test_token_expiring_on_open_connection_closes_it_with_4010(server, sdk_session, recorder):
    plant_token(server, signed(server, exp=int(time.time()) + 2))
    async with sdk_session(recorder) as session:
        await recorder.wait_for(lambda: len(recorder.errors) >= 2, timeout=6)
        assert session._connection is None
    codes = [e.code for e in recorder.errors]
    assert codes[0] is AvatarSDKErrorCode.sessionTokenExpired
    assert codes[1] is AvatarSDKErrorCode.connectionClosed
    assert recorder.errors[1].close_code == 4010


async def test_token_of_another_app_is_an_app_id_mismatch(server, sdk_session):
    plant_token(server, signed(server, app="app_other"))
    assert (await expect_start_error(sdk_session())).code is AvatarSDKErrorCode.appIDMismatch


async def test_unknown_app_id_is_unrecognized(server, sdk_session):
    error = await expect_start_error(sdk_session(app_id="app_unknown"))
    assert error.code is AvatarSDKErrorCode.appIDUnrecognized


async def test_token_is_good_for_one_connection(server, sdk_session):
    plant_token(server, server.issue_token())
    async with sdk_session():
        error = await expect_start_error(sdk_session())  # while the first lives
    assert error.code is AvatarSDKErrorCode.sessionTokenInvalid
    assert "already used" in error.message
    await asyncio.sleep(0.05)
    error = await expect_start_error(sdk_session())  # and after it closed
    assert error.code is AvatarSDKErrorCode.sessionTokenInvalid


async def test_reusable_tokens_back_one_live_connection_at_a_time(make_server, sdk_session):
    server = make_server(single_use_tokens=False)
    plant_token(server, server.issue_token())
    async with sdk_session(target=server):
        error = await expect_start_error(sdk_session(target=server))
        assert error.code is AvatarSDKErrorCode.sessionTokenInvalid
        assert "already in use" in error.message
    deadline = time.monotonic() + 5
    while server.active_sessions and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    async with sdk_session(target=server):  # reconnect once the connection closed
        pass


async def test_unknown_avatar_is_not_found(make_server, sdk_session, tmp_path):
    import shutil

    from avatarkit.paths import AVATARS_DIR

    shutil.copy(AVATARS_DIR / "kai" / "kai.glb", tmp_path / "Demo.glb")
    server = make_server(avatars=tmp_path)
    error = await expect_start_error(sdk_session(target=server, avatar_id="nobody"))
    assert error.code is AvatarSDKErrorCode.avatarNotFound
    assert str(tmp_path) in error.message  # where it looked
    async with sdk_session(target=server, avatar_id="demo"):
        pass


async def test_unsupported_sample_rate(sdk_session):
    error = await expect_start_error(sdk_session(sample_rate=12345))
    assert error.code is AvatarSDKErrorCode.unsupportedSampleRate
    assert error.phase == "websocket_handshake"


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
async def test_supported_sample_rates(sdk_session, recorder, make_speech, rate):
    pcm = make_speech(0.5, sample_rate=rate)
    async with sdk_session(recorder, sample_rate=rate) as session:
        await session.send_audio(pcm, end=True)
        await recorder.wait_end()
    assert len(frames_of(recorder)) == math.ceil(len(pcm) / 2 * 30 / rate)


async def test_ogg_opus_utterance(sdk_session, recorder, make_speech, make_ogg_opus):
    pcm = make_speech(1.0)
    stream = make_ogg_opus(pcm)  # one continuous Ogg Opus stream per request, sent in pieces
    async with sdk_session(recorder, audio_format=AudioFormat.OGG_OPUS) as session:
        for i in range(0, len(stream), 700):
            await session.send_audio(stream[i : i + 700])
        await session.send_audio(b"", end=True)
        await recorder.wait_end()
    frames = frames_of(recorder)
    assert abs(len(frames) - 30) <= 1  # the stream's own length (plus codec padding) sets it
    assert [f.index for f in frames] == list(range(len(frames)))
    assert not recorder.errors


async def test_egress_is_refused_as_unavailable(sdk_session):
    egress = LiveKitEgressConfig(url="wss://example.invalid", api_token="t", room_name="r")
    error = await expect_start_error(sdk_session(livekit_egress=egress))
    assert error.code is AvatarSDKErrorCode.egressUnavailable


async def test_idle_timeout(make_server, sdk_session, recorder):
    server = make_server(idle_timeout_s=0.3)
    async with sdk_session(recorder, target=server):
        await recorder.wait_for(lambda: recorder.errors)
    assert recorder.errors[0].code is AvatarSDKErrorCode.idleTimeout


async def test_session_duration_limit(make_server, sdk_session, recorder, make_speech):
    server = make_server(max_session_s=0.4)
    async with sdk_session(recorder, target=server) as session:
        pcm = make_speech(1.0)
        with pytest.raises((AvatarSDKError, ValueError)):  # ValueError: the SDK's "not established"
            for i in range(0, len(pcm), CHUNK):  # keeps sending: the limit is not about idling
                await session.send_audio(pcm[i : i + CHUNK])
                await asyncio.sleep(0.02)
        await recorder.wait_for(lambda: recorder.errors)
    assert recorder.errors[0].code is AvatarSDKErrorCode.sessionDurationExceeded


async def test_graceful_shutdown_lets_utterance_finish_then_closes(
    make_server, sdk_session, recorder, make_speech
):
    server = make_server(shutdown_grace_s=2.0)
    pcm = make_speech(1.0)
    async with sdk_session(recorder, target=server) as session:
        await session.send_audio(pcm[: len(pcm) // 2])
        await recorder.wait_for(lambda: recorder.envelopes)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        await asyncio.sleep(0.2)
        await session.send_audio(pcm[len(pcm) // 2 :], end=True)
        await recorder.wait_end()
        await recorder.wait_for(lambda: session._connection is None)
        await asyncio.to_thread(stopper.join, 10)
    assert len(frames_of(recorder)) == 30
    assert [classify(e.server_code, e.server_detail) for e in recorder.errors] == [
        ErrorCode.SERVER_SHUTTING_DOWN
    ]


async def test_graceful_shutdown_reports_cut_utterance(
    make_server, sdk_session, recorder, make_speech
):
    server = make_server(shutdown_grace_s=0.3)
    async with sdk_session(recorder, target=server) as session:
        req_id = await session.send_audio(make_speech(0.3))
        await recorder.wait_for(lambda: recorder.envelopes)
        await asyncio.to_thread(server.stop)
        await recorder.wait_for(lambda: len(recorder.errors) >= 2)
    cut = recorder.errors[0]
    assert cut.code is AvatarSDKErrorCode.serverError and cut.req_id == req_id
    assert classify(cut.server_code, cut.server_detail) is ErrorCode.SERVER_SHUTTING_DOWN
