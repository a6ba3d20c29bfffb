"""One playback scenario through the real audio device, run in its own process (so
PortAudio sees the test's sound server): ``python play.py '<json options>'``.

Builds what an app builds (``AvatarSDK`` + ``AvatarView`` + ``AvatarController`` in a
headless App on the real-time clock, audio device ``pyaudio``) and prints one JSON line
with what happened (times on ``time.monotonic()``, shared with the recording process).

Options: ``mode`` (direct | backend), ``avatars`` (1..4), ``wav``, ``size``, ``rate`` /
``block`` (the card's), ``interrupt_at`` / ``pause_at`` + ``pause_for`` (seconds of
playback, avatar 0), ``stagger`` (s between avatars' sends).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import wave

from avatarkit import AvatarManager, AvatarSDK, AvatarView, Configuration
from avatarkit.controller import ConversationState
from avatarkit.motion import create_stream
from avatarkit.paths import AVATARS_DIR
from avatarkit.protocol import encode_animation
from avatarkit.server.embedded import EmbeddedServer
from engine import App, RealtimeClock

AVATAR_IDS = ("ava", "kai", "mei", "noor")
CHUNK = 640  # bytes: 20 ms of 16 kHz PCM, as a streaming TTS delivers it


def relay_messages(pcm: bytes) -> list[tuple[bytes, list, bool]]:
    """What a backend relays, made up front (its motion comes from the Motion Server,
    not from the app's process): 20 ms audio chunks, each with the frames it completes."""
    stream = create_stream(16000, 30)
    out = []
    for i in range(0, len(pcm), CHUNK):
        chunk, end = pcm[i : i + CHUNK], i + CHUNK >= len(pcm)
        out.append((chunk, stream.push(chunk) + (stream.finish() if end else []), end))
    return out


RELAY_SPEED = 2.0  # a streaming TTS runs ahead of speech; 1.0 leaves only the jitter buffer


def feed_backend(controller, messages: list[tuple[bytes, list, bool]]) -> None:
    """Backend Mode: relay on an absolute schedule at ``RELAY_SPEED`` times speaking pace,
    from the transport's own thread."""
    start = time.monotonic()
    for n, (chunk, frames, end) in enumerate(messages):
        cid = controller.yield_audio_data(chunk, end=end)  # the same conversation until end
        if frames or end:
            controller.yield_frames_data([encode_animation("c", cid, frames, end=end)], cid)
        time.sleep(max(0.0, start + (n + 1) * CHUNK / 32000 / RELAY_SPEED - time.monotonic()))


def main(opts: dict) -> dict:
    pcm = wave.open(opts["wav"]).readframes(-1)
    mode, count = opts.get("mode", "direct"), opts.get("avatars", 1)
    app = App.headless(size=tuple(opts.get("size", (1280, 720))), clock=RealtimeClock(30))
    out: dict = {"events": []}
    with EmbeddedServer() as server, app:
        AvatarSDK.initialize(
            server.app_id,
            Configuration(
                ingress_url=server.ingress_url,
                driving_mode=mode,
                audio_device="pyaudio",
                audio_device_rate=opts.get("rate"),
                audio_block=opts.get("block"),
            ),
        )
        views = []
        for k in range(count):
            avatar = AvatarManager(str(AVATARS_DIR)).load_blocking(AVATAR_IDS[k % 4])
            view = app.scene.create_entity(f"a{k}").add_component(AvatarView(avatar))
            if count > 1:  # avatar 0 alone on the left, the others share the right
                view.controller.set_pan(-1.0 if k == 0 else 1.0)
                view.controller.set_volume(1.0 if k == 0 else 1.0 / (count - 1))
            views.append(view)
        views[0].frame(app.scene.camera)
        device = AvatarSDK.audio_device()
        out.update(device_rate=device.rate, block=device.block, latency=device.latency)
        if mode == "direct":
            for view in views:
                AvatarSDK.set_session_token(server.issue_token())
                view.controller.start()
        first = views[0].controller
        out["starts"] = [None] * count  # per avatar: when its speech began (monotonic s)

        def watch(k: int, controller) -> None:
            def on_state(state, _reason) -> None:
                if k == 0:
                    out["events"].append([str(state), time.monotonic(), first.audio_time])
                if state == ConversationState.PLAYING and out["starts"][k] is None:
                    out["starts"][k] = time.monotonic()

            controller.on_conversation_state = on_state

        for k, view in enumerate(views):
            watch(k, view.controller)
        for _ in range(5):  # connected, device warm: the measured part starts here
            app.step()
        messages = relay_messages(pcm) if mode == "backend" else []
        out["send_at"] = time.monotonic()
        underruns_before = device.underruns  # a stream may flag its very first callback
        for k, view in enumerate(views):
            if mode == "direct":
                view.controller.send(pcm, end=True)
            else:
                threading.Thread(target=feed_backend, args=(view.controller, messages)).start()
            if opts.get("stagger") and k + 1 < count:
                app.run(seconds=opts["stagger"])
        run_scenario(app, first, opts, out)
        # Until every avatar has spoken and gone idle again (states update on the tick).
        deadline = time.monotonic() + len(pcm) / 32000 + 8
        spoke = set()
        while (
            time.monotonic() < deadline
            and len(spoke) < count
            or any(v.controller.conversation_state != ConversationState.IDLE for v in views)
        ):
            app.step()
            spoke |= {
                k
                for k, v in enumerate(views)
                if v.controller.conversation_state != ConversationState.IDLE
            }
            if time.monotonic() > deadline:
                break
        out["end_state"] = str(first.conversation_state)
        out["buffered_ms"] = first.buffered().audio_ms
        out["underruns"] = device.underruns - underruns_before
        for view in views:
            view.dispose()
    return out


def run_scenario(app: App, controller, opts: dict, out: dict) -> None:
    """Interrupt or pause/resume avatar 0 after ``*_at`` seconds of its playback."""
    at = opts.get("interrupt_at", opts.get("pause_at"))
    if at is None:
        return
    while controller.audio_time < at:
        stepped = time.monotonic()
        app.step()
    # audio_time is read at the tick: by now the sound has moved on by up to this much.
    out["since_tick"] = time.monotonic() - stepped
    if "interrupt_at" in opts:
        out["interrupt"] = [time.monotonic(), controller.audio_time]
        controller.interrupt()
        return
    out["pause"] = [time.monotonic(), controller.audio_time]
    controller.pause()
    app.run(seconds=0.3)  # what the device already held has played out
    out["paused_clock"] = controller.audio_time
    app.run(seconds=opts.get("pause_for", 1.0))
    out["resume"] = [time.monotonic(), controller.audio_time]
    controller.resume()


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
