"""Time to speech: from the first ``send()`` to the first sample audible, split into
where the time goes, with the embedded Motion Server and a 30 fps render loop running.

One process, as an app runs it: ``EmbeddedServer`` (the lip-sync model), an ``App`` with
an ``AvatarView`` rendered at ``--size`` every 1/30 s on the main thread, a real-time
null audio device (``--device null``; ``auto`` takes the sound card / PulseAudio when
there is one) and a driver thread that speaks ``--utterances`` utterances of bundled
speech per mode: ``paced`` (20 ms chunks in real time, as a TTS streams) and ``burst``
(the whole utterance in one ``send``). Per utterance, times after the first ``send``:

- server: the server hands its first motion frame to the socket (network in included)
- client: that frame is in the controller's inbox (network back)
- ready: audio and motion cover the start rule (``Playback.start_need``)
- playing: the render tick that starts it (``on_conversation_state``: playing)
- audible: the first sample leaves the device (the mixer's clock and device latency)

    .venv/bin/python benchmarks/time_to_speech.py [--utterances 50] [--modes paced,burst]
                                                  [--size 640x360] [--device null]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHUNK_S = 0.02
FPS = 30


def utterances(rate: int, seconds: float) -> list[bytes]:
    from avatarkit.cli.common import read_wav

    out = []
    for wav in sorted((ROOT / "assets" / "speech").glob("*.wav")):
        audio = read_wav(wav)
        if audio.sample_rate == rate:
            out.append(audio.pcm[: int(seconds * rate)].astype("<i2").tobytes())
    return out


class Probe:
    """Timestamps from hooks on the server's encoder, the controller's inbox, the audio
    source and the device clock; one record per utterance."""

    def __init__(self, controller, mixer) -> None:
        import avatarkit.server.session as session
        from avatarkit.controller.messages import Motion

        self.records: list[dict[str, float]] = []
        self.current: dict[str, float] = {}
        self.motion_s = 0.0  # motion covered, as the inbox received it
        self.audio_s = 0.0  # audio sent so far in this utterance
        self.plays: list[tuple[int, float]] = []
        self.rate = mixer.sample_rate
        self.playback = controller._playback
        encode = session.encode_animation

        def encode_hook(*args, **kwargs):
            self.current.setdefault("server", time.perf_counter())
            return encode(*args, **kwargs)

        session.encode_animation = encode_hook
        probe = self
        inbox = controller._inbox

        class Inbox:  # the controller's inbox, with a stopwatch on motion going in
            def put(self, message) -> None:
                if isinstance(message, Motion) and message.frames:
                    now = time.perf_counter()
                    probe.current.setdefault("client", now)
                    last = message.frames[-1]
                    end = message.offset + (last.index + 1) / last.fps
                    probe.motion_s = max(probe.motion_s, end)
                    probe._check_ready(now)
                inbox.put(message)

            def get_nowait(self):
                return inbox.get_nowait()

        controller._inbox = Inbox()
        source = controller._source
        take = source.take

        def take_hook(n, device_frame):
            out = take(n, device_frame)
            if len(out) and "audible_frame" not in self.current:
                self.current["audible_frame"] = device_frame
            return out

        source.take = take_hook
        mark = mixer.mark_playing

        def mark_hook(frame, at):
            self.plays.append((frame, at))
            del self.plays[:-64]
            mark(frame, at)

        mixer.mark_playing = mark_hook
        self.mixer = mixer

    def _check_ready(self, now: float) -> None:
        audio_need, motion_need = self.playback.start_need()
        audio_ok = self.audio_s >= min(audio_need, self.audio_total) - 1e-9
        if audio_ok and self.motion_s >= max(motion_need, 1e-6) - 1e-9:
            self.current.setdefault("ready", now)

    def begin(self, total_s: float) -> None:
        self.current = {"send": time.perf_counter()}
        self.motion_s = self.audio_s = 0.0
        self.audio_total = total_s

    def sent(self, seconds: float) -> None:
        self.audio_s += seconds
        self._check_ready(time.perf_counter())

    def playing(self) -> None:
        self.current.setdefault("playing", time.perf_counter())

    def finish(self) -> None:
        frame = self.current.get("audible_frame")
        if frame is not None and self.plays:
            # The device's own clock: the last mark at or before that frame, plus the
            # frames after it, plus the latency the device reports.
            at_frame, at = min(self.plays, key=lambda p: abs(p[0] - frame))
            self.current["audible"] = (
                at + (frame - at_frame) / self.rate + self.mixer.latency_frames / self.rate
            )
        self.records.append(self.current)


def drive(controller, probe: Probe, clips: list[bytes], mode: str, count: int, rate: int,
          stop: threading.Event) -> None:  # fmt: skip
    from avatarkit.controller import ConversationState

    step = int(CHUNK_S * rate) * 2
    for k in range(count):
        if stop.is_set():
            return
        pcm = clips[k % len(clips)]
        probe.begin(len(pcm) / 2 / rate)
        if mode == "burst":
            controller.send(pcm, end=True)
            probe.sent(len(pcm) / 2 / rate)
        else:
            start = time.perf_counter()
            for i in range(0, len(pcm), step):
                controller.send(pcm[i : i + step], end=i + step >= len(pcm))
                probe.sent(len(pcm[i : i + step]) / 2 / rate)
                wait = start + (i // step + 1) * CHUNK_S - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
        deadline = time.monotonic() + 10
        while "audible_frame" not in probe.current and time.monotonic() < deadline:
            time.sleep(0.005)  # the render tick has not taken it up yet
        while controller.conversation_state != ConversationState.IDLE:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        probe.finish()
        time.sleep(0.2)


def percentiles(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), float(np.percentile(values, 95))


def run(args) -> None:
    from avatarkit.cli.common import open_avatar
    from avatarkit.controller import ConversationState
    from avatarkit.sdk import AvatarSDK, Configuration
    from avatarkit.server.embedded import EmbeddedServer
    from avatarkit.view import AvatarView
    from engine import App

    avatar = open_avatar("ava")
    rate = 16000
    clips = utterances(rate, args.seconds)
    size = tuple(int(v) for v in args.size.split("x"))
    print(
        f"time to speech: ava, {args.seconds:g} s utterances, {args.utterances} per mode, "
        f"render {size[0]}x{size[1]} at {FPS} fps; load average {os.getloadavg()[0]:.2f}"
    )
    with EmbeddedServer(avatars=avatar.source_path) as server:
        AvatarSDK.initialize(
            server.app_id,
            Configuration(
                ingress_url=server.ingress_url,
                console_url=server.console_url,
                sample_rate=rate,
                audio_device=args.device,
                **({} if args.jitter_ms is None else {"jitter_buffer_ms": args.jitter_ms}),
            ),
        )
        try:
            AvatarSDK.set_session_token(server.issue_token())
            # As a kiosk window runs: auto, adapting (a headless App alone takes the
            # offline quality).
            with App.headless(size, fps=FPS, quality="auto", adaptive=True) as app:
                view = app.scene.create_entity("ava").add_component(AvatarView(avatar))
                view.frame(app.scene.camera)
                controller = view.controller
                mixer = AvatarSDK.audio_mixer()
                probe = Probe(controller, mixer)

                def on_state(state, reason):
                    if state == ConversationState.PLAYING:
                        probe.playing()

                controller.on_conversation_state = on_state
                controller.start()
                deadline = time.monotonic() + 10
                while controller.connection_state != "connected" and time.monotonic() < deadline:
                    app.step()
                    time.sleep(1 / FPS)
                print(f"device: {mixer.device.__class__.__name__}, latency "
                      f"{mixer.latency * 1000:.0f} ms")  # fmt: skip
                for mode in args.modes.split(","):
                    probe.records = []
                    before = controller.buffered()
                    stop = threading.Event()
                    driver = threading.Thread(
                        target=drive,
                        args=(controller, probe, clips, mode, args.utterances, rate, stop),
                        daemon=True,
                    )
                    driver.start()
                    next_tick = time.perf_counter()
                    while driver.is_alive():
                        app.step()
                        next_tick += 1 / FPS
                        time.sleep(max(0.0, next_tick - time.perf_counter()))
                    report(mode, probe.records)
                    after = controller.buffered()
                    print(
                        f"underruns: audio {after.audio_underruns - before.audio_underruns}, "
                        f"motion {after.motion_underruns - before.motion_underruns} "
                        f"(start rule: audio, motion ms "
                        f"{tuple(round(v * 1000) for v in controller._playback.start_need())})"
                    )
                view.dispose()
        finally:
            AvatarSDK.cleanup()
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores shared)")


def report(mode: str, records: list[dict[str, float]]) -> None:
    keys = ("server", "client", "ready", "playing", "audible")
    done = [r for r in records if all(k in r for k in keys)]
    print(f"\n{mode}: {len(done)} of {len(records)} utterances measured; ms after first send()")
    missing = sorted({k for r in records for k in keys if k not in r})
    if missing:
        print(f"  (some utterances lack: {', '.join(missing)})")
    if not done:
        return
    print(f"{'step':<34} {'p50':>6} {'p95':>6}")
    rows = [
        ("server first frame (network in)", "send", "server"),
        ("network back to the controller", "server", "client"),
        ("start rule (batching, buffer)", "client", "ready"),
        ("render tick", "ready", "playing"),
        ("device (mixer period + latency)", "playing", "audible"),
    ]
    for label, a, b in rows:
        p50, p95 = percentiles([(r[b] - r[a]) * 1000 for r in done])
        print(f"{label:<34} {p50:>6.1f} {p95:>6.1f}")
    p50, p95 = percentiles([(r["audible"] - r["send"]) * 1000 for r in done])
    print(f"{'TOTAL: first send() to audible':<34} {p50:>6.1f} {p95:>6.1f}")
    p50, p95 = percentiles([(r["playing"] - r["send"]) * 1000 for r in done])
    print(f"{'(first send() to playing)':<34} {p50:>6.1f} {p95:>6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=50)
    parser.add_argument("--modes", default="paced,burst")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each utterance")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--device", default="null", help="audio device: null, auto, pyaudio")
    parser.add_argument(
        "--jitter-ms", type=float, default=None, help="Configuration.jitter_buffer_ms"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
