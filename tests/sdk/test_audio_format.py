"""Audio formats and regions: Ogg Opus in Direct Mode (sent as Ogg, as the public protocol
allows) and Backend Mode (decoded for playback), with PCM's sync guarantees, over real
sockets; set_audio_format's interrupt, reconnect and state events; named regions."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.controller import AvatarController, ConnectionState, ConversationState
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion import create_stream
from avatarkit.protocol.ogg_opus import OggOpusDecoder
from avatarkit.sdk import AudioFormat, AvatarSDK, Configuration

pytestmark = pytest.mark.timeout(40)

JAW = ARKIT_NAMES.index("jawOpen")


def ogg_opus(pcm: bytes, rate: int = 16000) -> bytes:
    """Mono PCM as one Ogg Opus stream (libopus through PyAV), as a streaming TTS sends it:
    a page per 20 ms packet."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="ogg", options={"page_duration": "20000"}) as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, "<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def decoded(ogg: bytes, rate: int = 16000) -> bytes:
    decoder = OggOpusDecoder(rate)
    return decoder.feed(ogg) + decoder.finish()


def chunks(data: bytes, size: int = 997) -> list[tuple[bytes, bool]]:
    """Split anywhere (not at page boundaries), the last one marked end."""
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return [(part, i == len(parts) - 1) for i, part in enumerate(parts)]


class Events:
    def __init__(self, controller: AvatarController) -> None:
        self.connection: list[ConnectionState] = []
        self.conversation: list[tuple[ConversationState, str]] = []
        self.errors: list[str] = []
        controller.on_connection_state = lambda s, r: self.connection.append(s)
        controller.on_conversation_state = lambda s, r: self.conversation.append((s, r))
        controller.on_error = lambda e: self.errors.append(e.code)


def run_until(rig, controller, predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    pose = controller.tick(0.0)
    while not predicate(pose):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        (pose,) = rig.step(controller)
        time.sleep(0.002)


def test_direct_mode_sends_ogg_opus_and_keeps_sync(sdk, server, rig, make_speech, output_check):
    heard_position, expected_weights = output_check
    sdk(
        server.app_id,
        ingress_url=server.ingress_url,
        console_url=server.console_url,
        audio_format="ogg_opus",
        strict_sync=True,
    )
    controller = AvatarController("avatar-1", rig.mixer)
    events = Events(controller)
    AvatarSDK.set_session_token(server.issue_token())
    controller.start()
    ogg = ogg_opus(make_speech(1.5))
    pcm = decoded(ogg)  # what both ends play and animate: the same decoder
    ids = {controller.send(part, end=end) for part, end in chunks(ogg)}
    assert len(ids) == 1
    stream = create_stream(16000, 30)
    frames = stream.push(pcm) + stream.finish()
    errors, jaw, last = [], [], [0]

    def watch(pose) -> bool:
        if controller.face_time is not None:
            jaw.append(pose.weights[JAW])
            heard = heard_position(rig.heard, pcm, after=last[0])
            last[0] = last[0] if heard is None else heard
            if heard is not None and controller._speech_weight == 1.0:
                want = expected_weights(frames, heard / 16000)[JAW]
                errors.append(abs(float(pose.weights[JAW]) - want))
        return controller.conversation_state == ConversationState.IDLE and bool(jaw)

    run_until(rig, controller, watch)
    assert controller._source.consumed == len(pcm) // 2  # the decoded stream, exactly once
    summary = str([round(float(e), 4) for e in errors])
    assert len(errors) > 20 and np.mean(errors) < 0.005 and max(errors) < 0.015, summary
    assert max(jaw) - min(jaw) > 0.05
    assert not events.errors
    controller.close()


def test_backend_mode_decodes_encoded_payloads(sdk, rig, make_speech, motion_payloads):
    sdk(driving_mode="backend", audio_format=AudioFormat.OGG_OPUS)
    controller = AvatarController("avatar-1", rig.mixer)
    ogg = ogg_opus(make_speech(1.0))
    pcm = decoded(ogg)
    ids = {controller.yield_audio_data(part, end=end) for part, end in chunks(ogg, 301)}
    (cid,) = ids
    controller.yield_frames_data(motion_payloads(pcm), cid)
    heard = []

    def watch(pose) -> bool:
        heard.append(rig.heard.copy())
        return controller.conversation_state == ConversationState.IDLE and len(heard) > 5

    run_until(rig, controller, watch)
    played = np.concatenate(heard)
    levels = np.round(played * 32768).astype(np.int32)
    source = np.frombuffer(pcm, "<i2").astype(np.int32)
    start = int(np.flatnonzero(levels)[0])
    first = int(np.flatnonzero(source)[0])
    # Bit-exact at the output: the decoded stream, in order, nothing lost or doubled.
    np.testing.assert_array_equal(levels[start : start + len(source) - first], source[first:])
    # Not Ogg: refused before anything is applied.
    with pytest.raises(AvatarKitError) as info:
        controller.yield_audio_data(b"\x00\x01" * 100, end=True)
    assert info.value.code == ErrorCode.INVALID_AUDIO


def test_set_audio_format_interrupts_and_reconnects_with_the_new_format(
    sdk, server, rig, make_speech
):
    sdk(
        server.app_id,
        ingress_url=server.ingress_url,
        console_url=server.console_url,
        token_provider=server.issue_token,
    )
    controller = AvatarController("avatar-1", rig.mixer)
    events = Events(controller)
    AvatarSDK.set_session_token(server.issue_token())
    controller.start()
    run_until(rig, controller, lambda _: controller.connection_state == ConnectionState.CONNECTED)
    controller.send(make_speech(3.0), end=True)
    run_until(rig, controller, lambda _: controller.conversation_state == ConversationState.PLAYING)
    events.connection.clear()
    events.conversation.clear()

    controller.set_audio_format("ogg_opus")
    assert controller.audio_format is AudioFormat.OGG_OPUS
    assert controller.conversation_state == ConversationState.IDLE  # reads back at once
    run_until(rig, controller, lambda _: events.connection[-1:] == [ConnectionState.CONNECTED])
    assert events.conversation[0] == (ConversationState.IDLE, "userAction")
    assert events.connection == [
        ConnectionState.DISCONNECTED,
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
    ]
    # The new connection takes Ogg Opus: motion comes back for it.
    ogg = ogg_opus(make_speech(1.0, seed=3))
    speak_until_played(rig, controller, ogg)
    assert not events.errors
    with pytest.raises(AvatarKitError) as info:
        controller.set_audio_format("mp3")
    assert info.value.code == ErrorCode.UNSUPPORTED_AUDIO_FORMAT
    controller.close()


def test_regions_name_endpoint_sets(sdk, server, rig, tmp_path, monkeypatch):
    assert Configuration(region="local").ingress_url == "ws://127.0.0.1:8765/v2/driveningress"
    with pytest.raises(AvatarKitError) as info:
        Configuration(region="mars")
    assert info.value.code == ErrorCode.INVALID_REQUEST and "local" in info.value.message
    regions = tmp_path / "regions.toml"
    regions.write_text(
        f'[regions.here]\nconsole_url = "{server.console_url}"\n'
        f'ingress_url = "{server.ingress_url}"\n'
    )
    monkeypatch.setenv("AVATARKIT_REGIONS_FILE", str(regions))
    config = Configuration(region="here")
    assert (config.console_url, config.ingress_url) == (server.console_url, server.ingress_url)
    assert Configuration(region="here", ingress_url="ws://x:1/v2").ingress_url == "ws://x:1/v2"
    # Connects through the region's endpoints over a real socket.
    sdk(server.app_id, region="here")
    controller = AvatarController("avatar-1", rig.mixer)
    AvatarSDK.set_session_token(server.issue_token())
    controller.start()
    run_until(rig, controller, lambda _: controller.connection_state == ConnectionState.CONNECTED)
    controller.close()
    regions.write_text('[regions.bad]\nconsole_url = "ftp://x"\ningress_url = "ws://x"\n')
    with pytest.raises(AvatarKitError) as info:
        Configuration(region="bad")
    assert info.value.code == ErrorCode.INVALID_CONFIG and "console_url" in info.value.message


def test_an_ogg_conversation_cut_by_a_drop_plays_on_without_motion(
    sdk, server, proxy, rig, make_speech
):
    """The rest of an Ogg stream has no headers to open a new request with: it is not
    sent (the server would refuse it as invalid audio); the audio plays whole, the next
    conversation animates again on the new connection."""
    sdk(
        server.app_id,
        ingress_url=f"ws://127.0.0.1:{proxy.port}/v2/driveningress",
        reconnect_backoff_s=0.05,
        token_provider=server.issue_token,
        audio_format="ogg_opus",
    )
    controller = AvatarController("avatar-1", rig.mixer)
    events = Events(controller)
    AvatarSDK.set_session_token(server.issue_token())
    controller.start()
    ogg = ogg_opus(make_speech(2.0))
    parts = chunks(ogg, 500)
    half = len(parts) // 2
    cid = {controller.send(part, end=end) for part, end in parts[:half]}
    run_until(rig, controller, lambda _: controller.face_time is not None)
    proxy.cut()
    run_until(rig, controller, lambda _: events.connection[-1:] == [ConnectionState.CONNECTED])
    assert {controller.send(part, end=end) for part, end in parts[half:]} == cid
    run_until(rig, controller, lambda _: controller.conversation_state == ConversationState.IDLE)
    assert controller._source.consumed == len(decoded(ogg)) // 2  # all of it played, once
    assert ErrorCode.INVALID_AUDIO not in events.errors  # nothing headerless was sent
    speak_until_played(rig, controller, ogg_opus(make_speech(0.6, seed=5)))
    controller.close()


def speak_until_played(rig, controller, ogg: bytes) -> None:
    """Send ``ogg`` in chunks and run until the face has moved and playback is idle again."""
    for part, end in chunks(ogg):
        controller.send(part, end=end)
    moved = []
    run_until(
        rig,
        controller,
        lambda _: (
            moved.append(controller.face_time is not None) is None
            and any(moved)
            and controller.conversation_state == ConversationState.IDLE
        ),
    )
