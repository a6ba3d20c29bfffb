"""Direct Mode end to end over real sockets against the embedded Motion Server."""

from __future__ import annotations

import time

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.controller import AvatarController, ConnectionState, ConversationState
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion import create_stream
from avatarkit.sdk import AvatarSDK

pytestmark = pytest.mark.timeout(30)

CHUNK = 3200  # bytes: 100 ms at 16 kHz
JAW = ARKIT_NAMES.index("jawOpen")


class Recorder:
    """Collects a controller's events."""

    def __init__(self, controller: AvatarController) -> None:
        self.connection, self.conversation, self.errors = [], [], []
        controller.on_connection_state = lambda s, r: self.connection.append(s)
        controller.on_conversation_state = lambda s, r: self.conversation.append(s)
        controller.on_error = lambda e: self.errors.append(e.code)


def run_until(rig, controllers, predicate, timeout: float = 10.0) -> None:
    """Tick and advance the virtual device (about 15x real time) until ``predicate()``."""
    deadline = time.monotonic() + timeout
    poses = [c.tick(0.0) for c in controllers]
    while not predicate(poses):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        poses = rig.step(*controllers)
        time.sleep(0.002)


def connect(sdk, server, rig, **config) -> tuple[AvatarController, Recorder]:
    sdk(server.app_id, ingress_url=server.ingress_url, console_url=server.console_url, **config)
    controller = AvatarController("avatar-1", rig.mixer)
    return controller, Recorder(controller)


def send_chunks(controller, pcm: bytes, end: bool = True) -> str:
    ids = {
        controller.send(pcm[i : i + CHUNK], end=end and i + CHUNK >= len(pcm))
        for i in range(0, len(pcm), CHUNK)
    }
    assert len(ids) == 1
    return ids.pop()


def test_direct_mode_end_to_end(sdk, server, rig, make_speech, output_check):
    heard_position, expected_weights = output_check
    controller, events = connect(sdk, server, rig, strict_sync=True)
    AvatarSDK.set_session_token(server.issue_token())
    controller.start()
    pcm = make_speech(1.5)
    cid = send_chunks(controller, pcm)  # sent while connecting: queued, not dropped
    stream = create_stream(16000, 30)  # what the Motion Server computes from this audio
    frames = stream.push(pcm) + stream.finish()
    jaw, errors, last = [], [], [0]

    def watch(poses):
        if controller.face_time is not None:
            jaw.append(poses[0].weights[JAW])
            # At the output: the face drawn against the model's frames at the sample heard.
            heard = heard_position(rig.heard, pcm, after=last[0])
            last[0] = last[0] if heard is None else heard
            if heard is not None and controller._speech_weight == 1.0:
                want = expected_weights(frames, heard / 16000)[JAW]
                errors.append(abs(float(poses[0].weights[JAW]) - want))
        return controller.conversation_state == ConversationState.IDLE and jaw

    run_until(rig, [controller], watch)
    assert cid and events.connection == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]
    assert (
        ConversationState.PLAYING in events.conversation
        and events.conversation[-1] == ConversationState.IDLE
    )
    assert controller._source.consumed == len(pcm) // 2  # all of it, exactly once
    # Weights travel as 8 bits (read back within 0.002, 0.01 at worst); a 15 ms lead or
    # lag misses by 0.013 on average and 0.02-0.03 at worst.
    summary = str([round(float(e), 4) for e in errors])
    assert len(errors) > 20 and np.mean(errors) < 0.005 and max(errors) < 0.015, summary
    assert max(jaw) - min(jaw) > 0.05  # lips move with the speech
    assert not events.errors
    controller.close()
    assert controller.connection_state == ConnectionState.DISCONNECTED


def test_invalid_token_fails_with_its_code(sdk, server, rig, make_speech):
    controller, events = connect(sdk, server, rig)
    AvatarSDK.set_session_token("not-a-token")
    controller.start()
    run_until(rig, [controller], lambda _: controller.connection_state == ConnectionState.FAILED)
    rig.step(controller)
    assert events.errors == [ErrorCode.SESSION_TOKEN_INVALID]
    assert events.connection[-1] == ConnectionState.FAILED
    with pytest.raises(AvatarKitError) as err:
        controller.send(make_speech(0.1))
    assert err.value.code == ErrorCode.CONNECTION_CLOSED
    controller.dispose()


def test_unknown_avatar_is_reported(sdk, server, rig):
    sdk(server.app_id, ingress_url=server.ingress_url)
    AvatarSDK.set_session_token(server.issue_token())
    controller = AvatarController("no such avatar!", rig.mixer)
    events = Recorder(controller)
    controller.start()
    run_until(rig, [controller], lambda _: controller.connection_state == ConnectionState.FAILED)
    rig.step(controller)
    assert events.errors == [ErrorCode.AVATAR_NOT_FOUND]
    controller.dispose()


def test_token_expiry_mid_session_then_app_recovers(sdk, server, rig, make_speech):
    controller, events = connect(sdk, server, rig, strict_sync=False)
    AvatarSDK.set_session_token(server.issue_token(ttl_s=1.0))
    controller.start()
    first = make_speech(0.5)
    send_chunks(controller, first)
    run_until(rig, [controller], lambda _: controller.connection_state == ConnectionState.FAILED)
    run_until(rig, [controller], lambda _: controller.conversation_state == ConversationState.IDLE)
    assert ErrorCode.SESSION_TOKEN_EXPIRED in events.errors
    assert events.connection[-1] == ConnectionState.FAILED
    # The app fetches a fresh token from its backend and starts again.
    AvatarSDK.set_session_token(server.issue_token())
    controller.start()
    second = make_speech(0.7, seed=1)
    cid = send_chunks(controller, second)
    run_until(rig, [controller], lambda _: controller.face_time is not None)
    run_until(rig, [controller], lambda _: controller.conversation_state == ConversationState.IDLE)
    assert cid and events.connection[-1] == ConnectionState.CONNECTED
    assert controller._source.consumed == (len(first) + len(second)) // 2  # nothing twice
    controller.dispose()


def test_token_provider_refreshes_and_reconnects_by_itself(sdk, server, rig, make_speech):
    issued = []

    def provider() -> str:
        issued.append(server.issue_token())
        return issued[-1]

    controller, events = connect(
        sdk, server, rig, token_provider=provider, reconnect_backoff_s=0.05
    )
    AvatarSDK.set_session_token(server.issue_token(ttl_s=1.0))
    controller.start()
    run_until(rig, [controller], lambda _: ConnectionState.RECONNECTING in events.connection)
    run_until(rig, [controller], lambda _: controller.connection_state == ConnectionState.CONNECTED)
    assert issued and AvatarSDK.session_token() == issued[-1]
    assert ErrorCode.SESSION_TOKEN_EXPIRED in events.errors
    pcm = make_speech(0.6)
    send_chunks(controller, pcm)
    run_until(rig, [controller], lambda _: controller.face_time is not None)
    run_until(rig, [controller], lambda _: controller.conversation_state == ConversationState.IDLE)
    assert controller._source.consumed == len(pcm) // 2
    controller.dispose()


def test_dropped_connection_reconnects_without_replaying_audio(
    sdk, server, proxy, rig, make_speech
):
    # Strict sync: the test plays audio 15x faster than real time, so let motion keep up.
    ingress = f"ws://127.0.0.1:{proxy.port}/v2/driveningress"
    # Tokens are one per connection: the reconnect takes a fresh one from the provider.
    provider = server.issue_token
    sdk(
        server.app_id,
        ingress_url=ingress,
        reconnect_backoff_s=0.05,
        strict_sync=True,
        token_provider=provider,
    )
    controller = AvatarController("avatar-1", rig.mixer)
    events = Recorder(controller)
    AvatarSDK.set_session_token(server.issue_token())
    controller.start()
    pcm = make_speech(2.0)
    half = len(pcm) // 2
    cid = send_chunks(controller, pcm[:half], end=False)
    run_until(rig, [controller], lambda _: controller.face_time is not None)
    proxy.cut()
    run_until(rig, [controller], lambda _: ConnectionState.RECONNECTING in events.connection)
    run_until(rig, [controller], lambda _: controller.connection_state == ConnectionState.CONNECTED)
    assert send_chunks(controller, pcm[half:]) == cid  # the same conversation goes on
    late_motion = []
    run_until(
        rig,
        [controller],
        lambda _: (
            late_motion.append(controller.face_time or 0)
            or controller.conversation_state == ConversationState.IDLE
        ),
    )
    assert events.connection.count(ConnectionState.CONNECTED) == 2
    assert ErrorCode.CONNECTION_CLOSED in events.errors
    assert controller._source.consumed == len(pcm) // 2  # every sample once: none replayed
    assert max(late_motion) > 1.5  # motion for the second half arrived on the new connection
    controller.dispose()


def test_four_controllers_share_one_device(sdk, server, rig, make_speech):
    sdk(server.app_id, ingress_url=server.ingress_url, strict_sync=True)
    controllers = []
    for _ in range(4):
        AvatarSDK.set_session_token(server.issue_token())  # one token per connection
        controllers.append(AvatarController("avatar-1", rig.mixer))
        controllers[-1].start()
        run_until(
            rig,
            controllers[-1:],
            lambda _: controllers[-1].connection_state == ConnectionState.CONNECTED,
        )
    clips = [make_speech(0.8 + 0.1 * i, seed=i) for i in range(4)]
    for controller, clip in zip(controllers, clips, strict=True):
        send_chunks(controller, clip)
    run_until(rig, controllers, lambda _: all(c.face_time is not None for c in controllers))
    run_until(
        rig,
        controllers,
        lambda _: all(c.conversation_state == ConversationState.IDLE for c in controllers),
    )
    assert [c._source.consumed for c in controllers] == [len(c) // 2 for c in clips]
    assert len(rig.mixer.sources) == 4
    for controller in controllers:
        controller.dispose()
    assert not rig.mixer.sources
