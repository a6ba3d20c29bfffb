"""A/V sync measured at the output: audio and motion that each encode their own timeline.

The audio is silence with a short tone burst every ``CLICK_PERIOD`` seconds (its onsets
are found in the sound server's recording, so the heard timeline is measured, not
modelled); the motion drives one channel (``tongueOut``, which idle and expressions never
touch) with a sawtooth of the motion time, so the pose actually drawn says which motion
instant is on screen. Run as a player in its own process (PortAudio reads the sound
server from the environment at start)::

    python tools/av_timeline.py '{"seconds": 20, "avatars": 2}'

Record in stereo when there are several avatars (avatar 0 is panned left, the others
right). It prints one JSON line: the device, and per drawn frame ``[present time, motion time]``
per avatar (``time.monotonic()``, the clock ``pulse_sink.Recording`` stamps samples with).
``offsets()`` then compares the two: motion time shown minus audio time heard at the
moment each frame was presented (positive: the face is ahead of the sound).

Options: ``seconds`` (speech length), ``avatars`` (1..4), ``size``, ``pause_at`` /
``pause_for`` and ``interrupt_at`` (seconds of playback, avatar 0).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from avatarkit.testing import TIMELINE_PERIOD, timeline_frames, timeline_time

RATE = 16000
FPS = 30
CLICK_PERIOD = 0.25  # s between tone bursts
CLICK_LEN = 0.015  # s
CLICK_START = 0.3  # s: the first burst (after the face has blended into speech)
SAW_PERIOD = TIMELINE_PERIOD / RATE  # s: the motion sawtooth's period (avatarkit.testing)


def make_audio(seconds: float) -> bytes:
    """16 kHz mono s16le: a 1 kHz cosine burst (full scale at its first sample) at
    ``CLICK_START + k * CLICK_PERIOD``."""
    pcm = np.zeros(int(seconds * RATE), np.float32)
    burst = 0.5 * np.cos(2 * np.pi * 1000 * np.arange(int(CLICK_LEN * RATE)) / RATE)
    for at in click_times(seconds):
        start = round(at * RATE)
        pcm[start : start + len(burst)] = burst[: len(pcm) - start]
    return (pcm * 32767).astype("<i2").tobytes()


def click_times(seconds: float) -> np.ndarray:
    return np.arange(CLICK_START, seconds - CLICK_PERIOD / 2, CLICK_PERIOD)


def shown_time(weights: np.ndarray) -> float | None:
    """Motion time (mod ``SAW_PERIOD``) a drawn pose shows; None near the wrap, where
    interpolation between the last and first tooth means nothing."""
    shown = timeline_time(weights, RATE)
    return shown if 0.05 * SAW_PERIOD <= shown <= 0.95 * SAW_PERIOD else None


def onsets(pcm: np.ndarray, threshold: int = 4000, quiet: float = 0.1) -> np.ndarray:
    """Sample indices where a burst starts: the first sample over ``threshold`` after
    ``quiet`` seconds under it."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    if len(loud) == 0:
        return loud
    keep = np.concatenate([[True], np.diff(loud) > quiet * RATE])
    return loud[keep]


def heard_bursts(recording, seconds: float, avatar: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(audio times, sink times)`` of the bursts heard, in order (burst ``k`` is the
    ``k``-th onset: the engine may delay audio but never drops or reorders it). In a
    stereo recording avatar 0 is alone on the left, the others together on the right."""
    pcm = recording.samples
    if pcm.ndim == 2:
        pcm = pcm[:, 0 if avatar == 0 else 1]
    found = onsets(pcm)
    want = click_times(seconds)[: len(found)]
    return want, np.array([recording.sample_time(n) for n in found[: len(want)]])


def offsets(
    report: dict, recording, seconds: float, avatar: int = 0, at: str = "present"
) -> np.ndarray:
    """Per frame drawn while sound plays: shown motion time minus heard audio time (s;
    positive: the face is ahead of the sound). ``at="posed"`` measures at the moment the
    pose was made instead of when its frame was presented."""
    return timed_offsets(report, recording, seconds, avatar, at)[1]


def timed_offsets(
    report: dict, recording, seconds: float, avatar: int = 0, at: str = "present"
) -> tuple[np.ndarray, np.ndarray]:
    """``(times, offsets)``: ``offsets()`` with the ``time.monotonic()`` of each.

    The heard audio time at a frame's present comes from the last burst that passed the
    sink before it (``audio time of burst + time since``); frames more than one burst
    period after it (the sound stalled: paused, interrupted, an underrun) are left out,
    and so are frames past the motion's last frame (``seconds - 1 / FPS``): the face holds
    that pose while the last frame's audio plays out and after the sound has ended, when
    "time since the last burst" no longer says what is heard.
    """
    audio, sink = heard_bursts(recording, seconds, avatar)
    times, out = [], []
    for row in report["frames"][avatar]:
        present, shown = row[0] if at == "present" else row[2], row[1]
        k = np.searchsorted(sink, present) - 1
        if shown is None or k < 0 or present - sink[k] > CLICK_PERIOD:
            continue
        heard = audio[k] + (present - sink[k])
        if heard > seconds - 1 / FPS:
            continue  # the speech (and its motion) is over
        if not 2 / FPS < heard % SAW_PERIOD < SAW_PERIOD - 3 / FPS:
            continue  # near the wrap the face blends the last tooth into the first
        # Unwrap the sawtooth around the heard time (a sync error is far below half a period).
        cycles = np.round((heard - shown) / SAW_PERIOD)
        times.append(present)
        out.append(shown + cycles * SAW_PERIOD - heard)
    return np.asarray(times), np.asarray(out)


def stalls(recording, seconds: float, avatar: int = 0) -> list[float]:
    """Seconds of silence inserted between consecutive bursts (0 when none)."""
    _, sink = heard_bursts(recording, seconds, avatar)
    return [float(gap) for gap in np.diff(sink) - CLICK_PERIOD if gap > 0.005]


def main(opts: dict) -> dict:
    from avatarkit import AvatarManager, AvatarSDK, AvatarView, Configuration
    from avatarkit.controller import ConversationState
    from avatarkit.paths import AVATARS_DIR
    from avatarkit.protocol import encode_animation
    from engine import App

    seconds, count = float(opts.get("seconds", 10)), int(opts.get("avatars", 1))
    pcm, frames = make_audio(seconds), timeline_frames(seconds, FPS, RATE)
    # The default clock, and the kiosk's quality (``App.window``'s "auto": FXAA without
    # MSAA on a software rasteriser, adapting; a headless App's own "auto" is the
    # offline quality) unless the scenario names one.
    size = tuple(opts.get("size", (640, 360)))
    quality = opts.get("quality", "auto")
    app = App.headless(size=size, fps=FPS, quality=quality, adaptive=quality == "auto")
    AvatarSDK.initialize(
        "av-timeline", Configuration(driving_mode="backend", audio_device="pyaudio")
    )
    out: dict = {"frames": [[] for _ in range(count)]}
    with app:
        views = []
        for k in range(count):
            avatar = AvatarManager(str(AVATARS_DIR)).load_blocking(
                ("ava", "kai", "mei", "noor")[k % 4]
            )
            view = app.scene.create_entity(f"a{k}").add_component(AvatarView(avatar))
            if count > 1:  # avatar 0 alone on the left; the others, in unison, on the right
                view.controller.set_pan(-1.0 if k == 0 else 1.0)
                view.controller.set_volume(1.0 if k == 0 else 1.0 / (count - 1))
            views.append(view)
        views[0].frame(app.scene.camera)
        device = AvatarSDK.audio_device()
        out.update(device_rate=device.rate, block=device.block, latency=device.latency)

        posed_at: dict[int, float] = {}
        for k, view in enumerate(views):  # note when each pose is made (in the update)

            def timed_update(dt, k=k, update=view.update):
                posed_at[k] = time.monotonic()
                update(dt)

            view.update = timed_update

        def shown(app_, _frame) -> None:
            now = time.monotonic()  # the frame is complete (present waited for the GPU)
            for k, view in enumerate(views):
                if view.controller.conversation_state == ConversationState.PLAYING:
                    value = shown_time(view.pose.weights)
                    out["frames"][k].append([now, value, posed_at.get(k, now)])

        app.add_frame_listener(shown)
        for _ in range(5):
            app.step()
        underruns_before = device.underruns  # a stream may flag its very first callback
        for view in views:
            cid = view.controller.yield_audio_data(pcm, end=True)
            view.controller.yield_frames_data([encode_animation("c", cid, frames, end=True)], cid)
        first = views[0].controller
        while first.conversation_state == ConversationState.IDLE:  # taken in on the tick
            app.step()
        at = opts.get("interrupt_at", opts.get("pause_at"))
        if at is not None:
            while first.audio_time < at:
                app.step()
            key = "interrupt" if "interrupt_at" in opts else "pause"
            out[key] = [time.monotonic(), first.audio_time]
            if key == "interrupt":
                first.interrupt()
            else:
                first.pause()
                app.run(seconds=opts.get("pause_for", 1.0))
                out["resume"] = [time.monotonic(), first.audio_time]
                first.resume()
        deadline = time.monotonic() + seconds + 5
        while time.monotonic() < deadline and any(
            v.controller.conversation_state != ConversationState.IDLE for v in views
        ):
            app.step()
        out["underruns"] = device.underruns - underruns_before
        for view in views:
            view.dispose()
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
