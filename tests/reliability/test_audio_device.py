"""The audio device disappears mid-playback: playback falls back to the null device, the
app is told (audioDeviceLost), and rendering and lip-sync carry on (real EGL frames)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from reliability_helpers import speech_pcm

from avatarkit.arkit import ARKIT_INDEX
from avatarkit.controller import ConversationState
from engine.audio import Mixer, NullDevice

pytestmark = pytest.mark.timeout(60)


class UnpluggedDevice(NullDevice):
    """Plays like a sound card until ``unplug()``, which reports it lost from another thread
    (as PortAudio's stream watchdog does)."""

    lost_at: float | None = None

    def unplug_after(self, seconds: float) -> None:
        def unplug() -> None:
            self.lost_at = time.monotonic()
            self.report_lost(OSError("device unplugged"))

        threading.Timer(seconds, unplug).start()


def test_device_lost_mid_playback_falls_back_and_keeps_rendering(make_headless_app):
    from avatarkit.manager import AvatarManager
    from avatarkit.paths import AVATARS_DIR
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.view import AvatarView

    app = make_headless_app(size=(96, 96), samples=0)
    AvatarSDK.initialize("app-test", Configuration(driving_mode="backend", audio_device="virtual"))
    mixer = Mixer(16000)
    device = UnpluggedDevice(mixer).start()
    lost: list = []
    mixer.on_device_lost.append(lost.append)
    try:
        avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
        view = app.scene.create_entity("ava").add_component(
            AvatarView(avatar, mixer=mixer, idle=False)
        )
        view.frame(app.scene.camera)
        controller = view.controller
        from avatarkit.motion import create_stream
        from avatarkit.protocol import encode_animation

        pcm = speech_pcm(1.5)
        stream = create_stream(16000, 30)
        frames = stream.push(pcm) + stream.finish()
        cid = controller.yield_audio_data(pcm, end=True)
        controller.yield_frames_data([encode_animation("c", "r", frames, end=True)], cid)
        device.unplug_after(0.4)
        jaw_after, images_after, steps_after = [], [], 0
        played = []
        controller.on_conversation_state = lambda state, _reason: played.append(state)
        deadline = time.monotonic() + 10
        while ConversationState.IDLE not in played or device.lost_at is None:
            assert time.monotonic() < deadline, "playback did not finish"
            app.step()
            if device.lost_at is not None:
                steps_after += 1
                jaw_after.append(view.pose.weights[ARKIT_INDEX["jawOpen"]])
                if steps_after % 5 == 1:
                    images_after.append(app.read_pixels().astype(np.int16))
            time.sleep(1 / 60)
        assert len(lost) == 1 and lost[0].code == "audioDeviceLost"
        assert isinstance(mixer.device, NullDevice) and mixer.device is not device
        assert controller._source.consumed == len(pcm) // 2  # the rest played on the fallback
        assert steps_after >= 10  # the frame loop went on
        assert max(jaw_after) - min(jaw_after) > 0.05  # and the lips kept moving with the audio
        assert (
            max(np.abs(a - b).max() for a, b in zip(images_after, images_after[1:], strict=False))
            > 0
        )
        view.dispose()
    finally:
        mixer.device.stop()
        app.close()
        AvatarSDK.cleanup()


def test_a_device_left_playing_is_stopped_at_interpreter_exit(tmp_path):
    """An app that exits without ``stop()`` / ``AvatarSDK.cleanup()``: the device is stopped
    by the engine's ``atexit`` hook, while Python is whole (a PortAudio callback thread
    running into the interpreter's teardown crashed the real-audio player now and then)."""
    import subprocess
    import sys

    script = tmp_path / "leave_it_playing.py"
    script.write_text(
        "from engine.audio import Mixer, NullDevice\n"
        "class Marked(NullDevice):\n"
        "    def _release(self):\n"
        "        super()._release()\n"
        "        print('released', flush=True)\n"
        "Marked(Mixer(16000)).start()\n"
        "print('exiting', flush=True)\n"
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["exiting", "released"]
