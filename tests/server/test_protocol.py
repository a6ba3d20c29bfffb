"""The wire codec and error phrasebook, checked against the public SDK's own schema and rules."""

from __future__ import annotations

import time

import jwt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatius.avatar_session import AvatarSession
from spatius.proto.generated import message_pb2 as public

from avatarkit.arkit import NUM_BLENDSHAPES
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion import MotionFrame
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import (
    WIRE_ERRORS,
    animation_frames,
    classify,
    classify_close,
    decode_animation,
    decode_envelope,
    encode_animation,
    encode_audio,
    encode_configure,
    encode_error,
    encode_interrupt,
    wire_error,
)
from avatarkit.server.shared import LocalStore
from avatarkit.server.tokens import TokenSigner


def random_frames(first: int, n: int, seed: int = 0) -> list[MotionFrame]:
    rng = np.random.default_rng(seed)
    return [
        MotionFrame(
            first + i,
            30,
            rng.uniform(0, 1, NUM_BLENDSHAPES).astype(np.float32),
            rng.uniform(-1, 1, 3).astype(np.float32),
            rng.uniform(-0.5, 0.5, 2).astype(np.float32),
        )
        for i in range(n)
    ]


@settings(max_examples=40, deadline=None)
@given(
    first=st.integers(0, 10**6), n=st.integers(1, 30), seed=st.integers(0, 1000), end=st.booleans()
)
def test_motion_payload_round_trip(first, n, seed, end):
    frames = random_frames(first, n, seed)
    req_id, decoded, got_end = decode_animation(encode_animation("conn", "req", frames, end))
    assert (req_id, got_end, len(decoded)) == ("req", end, n)
    for a, b in zip(frames, decoded, strict=True):
        assert (b.index, b.fps) == (a.index, a.fps)
        np.testing.assert_allclose(b.weights, a.weights, atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(b.head, a.head, atol=0.5e-4 + 1e-6)
        np.testing.assert_allclose(b.gaze, a.gaze, atol=0.5e-4 + 1e-6)


def test_payload_is_compact_and_clamped():
    frame = MotionFrame(0, 30)
    frame.weights[:] = 2.0  # out of range: clamped, not wrapped
    frame.head[:] = [10.0, -10.0, 0.0]
    data = encode_animation("c", "r", [frame] * 1)
    _, (decoded,), _ = decode_animation(data)
    assert decoded.weights.min() == 1.0
    assert decoded.head[0] == pytest.approx(3.2767) and decoded.head[1] == pytest.approx(-3.2768)
    three = encode_animation("c" * 12, "r" * 28, random_frames(0, 3))
    assert len(three) < 3 * 62 + 80  # 62 bytes per frame plus the envelope


def test_public_sdk_reads_our_envelopes_and_we_read_its():
    data = encode_animation("conn", "req", random_frames(5, 2), end=True)
    theirs = public.Message()
    theirs.ParseFromString(data)
    assert theirs.type == public.MESSAGE_SERVER_RESPONSE_ANIMATION
    assert (theirs.server_response_animation.req_id, theirs.server_response_animation.end) == (
        "req",
        True,
    )
    # The SDK relays the raw bytes; our payload survives even a re-serialisation by it.
    assert [f.index for f in decode_animation(theirs.SerializeToString())[1]] == [5, 6]

    msg = public.Message(type=public.MESSAGE_CLIENT_AUDIO_INPUT)
    msg.client_audio_input.req_id, msg.client_audio_input.audio = "r", b"\x01\x02"
    assert decode_envelope(msg.SerializeToString()).client_audio_input.audio == b"\x01\x02"
    for ours, kind in [
        (
            encode_configure(24000, extra_params={"fps": "25"}),
            public.MESSAGE_CLIENT_CONFIGURE_SESSION,
        ),
        (encode_audio("r", b"ab", end=True), public.MESSAGE_CLIENT_AUDIO_INPUT),
        (encode_interrupt("r"), public.MESSAGE_CLIENT_INTERRUPT),
        (encode_error(400, "x", req_id="r"), public.MESSAGE_SERVER_ERROR),
    ]:
        theirs = public.Message()
        theirs.ParseFromString(ours)
        assert theirs.type == kind


def test_decoder_refuses_inconsistent_payloads():
    with pytest.raises(AvatarKitError) as info:
        decode_envelope(b"\xff\xff\xff")
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    envelope = decode_envelope(encode_animation("c", "r", random_frames(0, 2)))
    envelope.server_response_animation.weights = b"\0" * 10
    with pytest.raises(AvatarKitError) as info:
        animation_frames(envelope)
    assert info.value.code is ErrorCode.INVALID_ANIMATION_DATA
    with pytest.raises(AvatarKitError) as info:
        animation_frames(pb.Message(type=pb.MESSAGE_SERVER_ERROR))
    assert info.value.code is ErrorCode.PROTOCOL_ERROR
    with pytest.raises(ValueError):
        encode_animation("c", "r", [MotionFrame(0, 30), MotionFrame(2, 30)])


@pytest.mark.parametrize("code", list(WIRE_ERRORS))
def test_every_wire_error_classifies_back_to_its_code(code):
    wire_code, message = wire_error(code, "some detail")
    assert classify(wire_code, message) is code
    # ... and the public SDK files it under the same code wherever it has one.
    sdk = AvatarSession._classify_error_code(
        phase="websocket_runtime", server_code=str(wire_code), detail=message
    )
    fallback = {3: "invalidRequest", 429: "serverError", 503: "serverError", 500: "serverError"}
    assert sdk.value == (
        code.value if code.value in sdk.__class__.__members__ else fallback[wire_code]
    )


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [(401, "", ErrorCode.SESSION_TOKEN_EXPIRED), (400, "", ErrorCode.SESSION_TOKEN_INVALID),
     (404, "", ErrorCode.APP_ID_UNRECOGNIZED),
     (404, "avatar not found", ErrorCode.AVATAR_NOT_FOUND),
     (402, "", ErrorCode.BILLING_REQUIRED), (409, "", ErrorCode.INVALID_REQUEST),
     (502, "", ErrorCode.SERVER_ERROR)],
)  # fmt: skip
def test_refused_upgrade_classification_matches_the_sdk(status, text, expected):
    assert classify(None, text, http_status=status, upgrade=True) is expected
    sdk = AvatarSession._classify_error_code(
        phase="websocket_connect", http_status=status, detail=text
    )
    assert sdk.value == expected.value


def test_close_codes():
    assert classify_close(1000) is None and classify_close(1001) is None
    assert classify_close(4010) is ErrorCode.SESSION_TOKEN_EXPIRED
    assert classify_close(4008) is ErrorCode.SLOW_CONSUMER
    assert classify_close(1009) is ErrorCode.MESSAGE_TOO_LARGE
    assert classify_close(1006) is ErrorCode.CONNECTION_CLOSED


def test_tokens_are_stateless_scoped_and_expiring():
    key = b"k" * 32
    now = time.time()
    token = TokenSigner(key, "app1").issue(now + 60)
    claims = TokenSigner(key, "app1").verify(token)  # another "worker" with the same key
    assert (
        claims.app_id == "app1" and claims.expire_at == int(now + 60) and len(claims.token_id) == 32
    )
    assert TokenSigner(key, "app1").issue(now + 60) != token  # unique ids
    cases = [
        (lambda: TokenSigner(b"x" * 32, "app1").verify(token), ErrorCode.SESSION_TOKEN_INVALID),
        (lambda: TokenSigner(key, "app1").verify(""), ErrorCode.SESSION_TOKEN_INVALID),
        (lambda: TokenSigner(key, "app1").verify(token[:-2]), ErrorCode.SESSION_TOKEN_INVALID),
        (lambda: TokenSigner(key, "a").issue(now - 1), ErrorCode.INVALID_REQUEST),
        (lambda: TokenSigner(key, "a").issue(now + 25 * 3600), ErrorCode.INVALID_REQUEST),
        (
            lambda: TokenSigner(key, "a").verify(
                jwt.encode(
                    {"app": "a", "exp": int(now) - 1, "jti": "j", "scope": "motion:stream"},
                    key,
                    "HS256",
                )
            ),
            ErrorCode.SESSION_TOKEN_EXPIRED,
        ),
        (
            lambda: TokenSigner(key, "a").verify(
                jwt.encode(
                    {"app": "a", "exp": int(now) + 60, "jti": "j", "scope": "admin"}, key, "HS256"
                )
            ),
            ErrorCode.SESSION_TOKEN_INVALID,
        ),
        (
            lambda: TokenSigner(key, "a").verify(
                jwt.encode({"app": "a", "exp": int(now) + 60}, key, "HS256")
            ),
            ErrorCode.SESSION_TOKEN_INVALID,
        ),
    ]
    for call, code in cases:
        with pytest.raises(AvatarKitError) as info:
            call()
        assert info.value.code is code


async def test_local_store_marks_a_token_used_until_it_expires():
    store = LocalStore()
    now = time.time()
    assert await store.acquire_token("j", now + 60) and not await store.acquire_token("j", now + 60)
    await store.release_token("j")  # reuse mode: its connection closed
    assert await store.acquire_token("j", now + 60)
    assert await store.acquire_token("old", now - 1)  # expired entries are forgotten on the way
    assert await store.acquire_token("k", now + 60) and "old" not in store._tokens
    assert await store.acquire_address("a", 1) and not await store.acquire_address("a", 1)
    await store.release_address("a")
    assert await store.address_sessions("a") == 0


def test_client_address_behind_trusted_proxies():
    from avatarkit.errors import AvatarKitError
    from avatarkit.server.config import ServerConfig

    config = ServerConfig(trusted_proxies=("10.0.0.1", "10.0.0.2", "0:0::1"))
    assert config.trusted_proxies == ("10.0.0.1", "10.0.0.2", "::1")
    cases = [
        ("192.0.2.9", "1.2.3.4", "192.0.2.9"),  # not a proxy of ours: its header is ignored
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client may prepend anything
        ("10.0.0.1", "1.2.3.4, 10.0.0.2", "1.2.3.4"),  # a chain of our proxies
        ("10.0.0.1", "garbage", "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4, garbage", "10.0.0.1"),
        ("::1", "2001:db8:0:0::1", "2001:db8::1"),
    ]
    for remote, forwarded, expected in cases:
        assert config.client_address(remote, forwarded) == expected, (remote, forwarded)
    with pytest.raises(AvatarKitError):
        ServerConfig(trusted_proxies=("nginx",))
