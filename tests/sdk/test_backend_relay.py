"""Backend Mode end to end: Server SDK -> Motion Server, relayed over the example backend's
own websocket to a client controller fed through yield_audio_data / yield_frames_data."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
import wave

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.controller import AvatarController, ConversationState
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion import create_stream
from avatarkit.paths import REPO_ROOT, SPEECH_DIR
from avatarkit.server_sdk import new_avatar_session

pytestmark = pytest.mark.timeout(60)

SPEECH = SPEECH_DIR / "quiz_correct.wav"
JAW = ARKIT_NAMES.index("jawOpen")


@pytest.fixture(scope="module")
def relay_module():
    spec = importlib.util.spec_from_file_location(
        "backend_relay", REPO_ROOT / "examples" / "backend_relay.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def backend(server, relay_module):
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    relay = asyncio.run_coroutine_threadsafe(
        relay_module.RelayBackend(server, "ava").start(), loop
    ).result(10)
    yield relay
    asyncio.run_coroutine_threadsafe(relay.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)


def play_until_idle(rig, controller, timeout=20.0):
    """Steps until idle; returns (pose, block heard while it showed) for each frame with
    speech on the face."""
    deadline = time.monotonic() + timeout
    shown = []
    while not (
        controller.conversation_state == ConversationState.IDLE and controller._source.consumed
    ):
        assert time.monotonic() < deadline, "playback did not finish"
        pose = rig.step(controller)[0]
        if controller.face_time is not None:
            shown.append((pose, rig.heard.copy(), controller._speech_weight))
        time.sleep(0.002)
    return shown


def test_relayed_backend_mode_plays_in_sync(sdk, server, backend, relay_module, rig, output_check):
    sdk(driving_mode="backend", strict_sync=True)
    controller = AvatarController("ava", rig.mixer)
    client = relay_module.RelayClient(controller, backend.url)
    try:
        client.say(str(SPEECH))
        shown = play_until_idle(rig, controller)
    finally:
        client.close()
    with wave.open(str(SPEECH)) as wav:
        assert controller._source.consumed == wav.getnframes()  # every sample once
    # At the output: the face drawn against the model's frames at the sample heard.
    heard_position, expected_weights = output_check
    with wave.open(str(SPEECH)) as wav:
        pcm = wav.readframes(-1)
    stream = create_stream(16000, 30)
    frames = stream.push(pcm) + stream.finish()
    errors, last = [], 0
    for pose, heard, weight in shown:
        at = heard_position(heard, pcm, after=last)
        last = last if at is None else at
        if at is not None and weight == 1.0:
            errors.append(abs(float(pose.weights[JAW]) - expected_weights(frames, at / 16000)[JAW]))
    # 8-bit weights read back within 0.002 on average; a 15 ms lead or lag is 0.01 or more.
    assert len(errors) > 20 and np.mean(errors) < 0.005, (len(errors), np.mean(errors))
    jaw = [float(pose.weights[JAW]) for pose, *_ in shown]
    assert max(jaw) - min(jaw) > 0.1  # motion from the Motion Server drove the face
    controller.dispose()


def test_interrupt_through_the_relay(sdk, server, backend, relay_module, rig):
    sdk(driving_mode="backend")
    controller = AvatarController("ava", rig.mixer)
    client = relay_module.RelayClient(controller, backend.url)
    try:
        client.say(str(SPEECH_DIR / "greeting.wav"))
        deadline = time.monotonic() + 10
        while controller.conversation_state != ConversationState.PLAYING:
            assert time.monotonic() < deadline
            rig.step(controller)
            time.sleep(0.002)
        rig.step(controller, frames=10)
        client.interrupt()
        rig.step(controller, frames=3)
        played = controller._source.consumed
        time.sleep(0.3)  # late audio/motion of the interrupted utterance may still arrive
        rig.step(controller, frames=30)
        assert controller.conversation_state == ConversationState.IDLE
        assert controller._source.consumed == played  # nothing of it played after the interrupt
    finally:
        client.close()
    controller.dispose()


def test_server_sdk_refuses_bad_credentials_with_codes(server):
    async def attempt(**overrides):
        options = dict(
            avatar_id="ava",
            api_key=server.api_key,
            app_id=server.app_id,
            console_endpoint_url=server.console_url,
            ingress_endpoint_url=server.ingress_url,
        )
        options.update(overrides)
        session = new_avatar_session(**options)
        await session.init()
        await session.start()
        await session.close()

    cases = [
        ({"api_key": "wrong"}, None),
        ({"app_id": "other-app"}, ErrorCode.APP_ID_UNRECOGNIZED),
        ({"expire_at": time.time() - 10}, None),
    ]
    for overrides, code in cases:
        with pytest.raises(AvatarKitError) as err:
            asyncio.run(attempt(**overrides))
        if code is not None:
            assert err.value.code == code
        assert err.value.code != ErrorCode.UNKNOWN


def test_server_sdk_session_round_trip(server):
    received = []

    async def go():
        session = new_avatar_session(
            avatar_id="ava",
            api_key=server.api_key,
            app_id=server.app_id,
            console_endpoint_url=server.console_url,
            ingress_endpoint_url=server.ingress_url,
            transport_frames=lambda data, last: received.append(last),
        )
        async with session:
            with pytest.raises(AvatarKitError) as err:
                await session.send_audio(b"\x00")
            assert err.value.code == ErrorCode.INVALID_AUDIO
            with wave.open(str(SPEECH)) as wav:
                req_id = await session.send_audio(wav.readframes(-1), end=True)
            for _ in range(200):
                if received and received[-1]:
                    break
                await asyncio.sleep(0.02)
            assert await session.interrupt() == req_id
        assert received[-1] is True and len(received) > 1

    asyncio.run(go())
