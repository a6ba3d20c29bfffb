"""A/V sync of the client SDK over one simulated hour (virtual clock, no rendering).

    python benchmarks/av_sync.py [--minutes 60] [--latency-ms 20]

A Backend Mode ``AvatarController`` plays utterance after utterance through the engine
mixer on a simulated sound card (20 ms pulls, continuous playback, an output latency),
ticked at about 30 fps on its own jittery schedule, not aligned with the device pulls.
Audio arrives in chunks faster than real time; motion envelopes (the real wire encoding)
arrive later with random network delay; there are pauses and interrupts along the way.

Ground truth does not come from the controller's bookkeeping: every utterance's audio
encodes its own sample index in its sample values, and the device physics (frame f is at
the speaker at f / rate + latency) says which output frame is heard at each tick, so the
sample value there tells exactly which audio time is being heard. The offset is the face's
motion timestamp (``face_time``, the interpolated index/fps of the frames shown) minus that
audio time.
Bar (design brief): mean within 5 ms, worst within half a motion frame, no drift.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatarkit.controller import AvatarController  # noqa: E402
from avatarkit.motion.frame import MotionFrame  # noqa: E402
from avatarkit.protocol import encode_animation  # noqa: E402
from avatarkit.sdk import AvatarSDK, Configuration  # noqa: E402
from engine.audio import Mixer, VirtualDevice  # noqa: E402

RATE = 16000
FPS = 30  # motion frames per second
RENDER_FPS = 30.0
PERIOD = 320  # device frames per pull (20 ms)
MODULO = 30000  # sample values encode (index mod MODULO) + 1; 0 stays silence
CHUNK_S = 0.2  # audio chunk length
TTS_SPEED = 4.0  # audio arrives this many times faster than real time
MOTION_BATCH = 3  # frames per animation envelope (as the Motion Server batches)


def utterance_pcm(samples: int) -> bytes:
    return (1 + np.arange(samples) % MODULO).astype("<i2").tobytes()


def motion_frames(samples: int) -> list[MotionFrame]:
    count = -(-samples * FPS // RATE)  # ceil: the frames cover the whole utterance
    frames = []
    for i in range(count):
        frame = MotionFrame(i, FPS)
        frame.weights[17] = 0.5 + 0.5 * np.sin(i * 0.7)  # jawOpen, any shape will do
        frames.append(frame)
    return frames


class Schedule:
    """Network events in simulated time (seconds): a heap of (time, seq, callable)."""

    def __init__(self) -> None:
        self._heap: list = []
        self._seq = itertools.count()

    def at(self, when: float, action) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action))

    def run_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            heapq.heappop(self._heap)[2]()


def plan(controller: AvatarController, schedule: Schedule, seconds: float, rng) -> int:
    """Schedule utterances (audio chunks + delayed motion), pauses and interrupts."""
    t, count = 0.5, 0
    while t < seconds - 10:
        duration = rng.uniform(1.0, 8.0)
        samples = int(duration * RATE)
        pcm = utterance_pcm(samples)
        frames = motion_frames(samples)
        cid_box: list[str] = []
        last_arrival = t
        step = int(CHUNK_S * RATE) * 2
        for i in range(0, len(pcm), step):
            chunk, end = pcm[i : i + step], i + step >= len(pcm)
            sent = t + (i / 2 / RATE) / TTS_SPEED

            def send(chunk=chunk, end=end, box=cid_box):
                box.append(controller.yield_audio_data(chunk, end=end))

            schedule.at(sent, send)
            # Motion for this chunk's frames comes back after inference + network delay.
            first = i // 2 * FPS // RATE
            last = min(len(frames), -(-(i // 2 + len(chunk) // 2) * FPS // RATE))
            # One websocket keeps order: a message never overtakes the one before it.
            arrive = last_arrival = max(last_arrival, sent + rng.uniform(0.02, 0.15))
            for j in range(first, last, MOTION_BATCH):
                batch = frames[j : min(j + MOTION_BATCH, last)]
                payload = encode_animation(
                    "conn", "req", batch, end=batch[-1].index == len(frames) - 1
                )

                def deliver(payload=payload, box=cid_box):
                    controller.yield_frames_data([payload], box[0])

                schedule.at(arrive, deliver)
        roll = rng.random()
        if roll < 0.05:  # pause for a moment mid-utterance
            schedule.at(t + duration / 2, controller.pause)
            schedule.at(t + duration / 2 + rng.uniform(0.5, 3.0), controller.resume)
            t += 3.0
        elif roll < 0.08:  # barge-in: interrupt, the rest of it never plays
            schedule.at(t + duration / 2, controller.interrupt)
        t += duration + rng.uniform(0.3, 3.0)
        count += 1
    return count


def run(minutes: float, latency_ms: float, interpolate: bool = True, seed: int = 1) -> dict:
    """One simulated session. ``interpolate=False`` is the ablation: a clock that only
    moves when the device pulls a period (what a naive "samples consumed" clock does)."""
    AvatarSDK.initialize("bench", Configuration(driving_mode="backend", audio_device="virtual"))
    now = 0.0
    mixer = Mixer(RATE)
    device = VirtualDevice(mixer).start()
    # A simulated sound card: pulls a 20 ms period at a time, plays continuously, and
    # frame f reaches the speaker at f / RATE + latency.
    mixer.realtime, mixer.clock = interpolate, lambda: now
    latency = latency_ms / 1000
    mixer.latency_frames = int(latency * RATE)
    controller = AvatarController("bench", mixer, idle=False)
    schedule = Schedule()
    rng = np.random.default_rng(seed)
    seconds = minutes * 60
    utterances = plan(controller, schedule, seconds, rng)

    history = np.zeros(RATE, np.float32)  # the last second of device output (left channel)
    offsets = []
    next_tick = rng.uniform(0, 1 / RENDER_FPS)  # render ticks are not aligned with pulls
    started = time.perf_counter()
    for block in range(int(seconds * RATE / PERIOD)):
        pull = block * PERIOD / RATE
        now = pull
        out = device.advance(PERIOD)[:, 0]
        history[(block * PERIOD + np.arange(PERIOD)) % RATE] = out
        end = (block + 1) * PERIOD / RATE
        while next_tick < end:  # render ticks between this pull and the next
            now = next_tick
            schedule.run_due(now)
            controller.tick(1 / RENDER_FPS)
            face = controller.face_time
            heard = int((now - latency) * RATE)  # frames at the speaker so far (physics)
            value = int(round(history[(heard - 1) % RATE] * 32768)) if heard > 0 else 0
            if face is not None and value > 0:
                # The sample just heard encodes its index mod MODULO: unwrap near the face.
                n = value - 1
                n += MODULO * round((face * RATE - n) / MODULO)
                offsets.append(face - (n + 1) / RATE)  # n + 1 samples of it heard so far
            next_tick += (1 + rng.uniform(-0.1, 0.1)) / RENDER_FPS  # a little frame jitter
    wall = time.perf_counter() - started
    offsets_ms = np.array(offsets) * 1000
    windows = np.array_split(offsets_ms, 6)
    window_means = [float(w.mean()) for w in windows if len(w)]
    health = controller.buffered()
    controller.dispose()
    AvatarSDK.cleanup()
    return {
        "simulated_s": seconds,
        "wall_s": wall,
        "utterances": utterances,
        "samples": len(offsets_ms),
        "mean_ms": float(offsets_ms.mean()),
        "mean_abs_ms": float(np.abs(offsets_ms).mean()),
        "worst_ms": float(np.abs(offsets_ms).max()),
        "drift_ms": float(window_means[-1] - window_means[0]),
        "window_means_ms": window_means,
        "underruns": health.underruns,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument(
        "--latency-ms", type=float, default=40.0, help="simulated device output latency"
    )
    args = parser.parse_args()
    half_frame = 1000 / FPS / 2
    r = run(args.minutes, args.latency_ms)
    naive = run(args.minutes, args.latency_ms, interpolate=False)
    print(
        f"A/V sync over {r['simulated_s'] / 60:.0f} simulated minutes "
        f"({r['utterances']} utterances, {r['samples']} measured frames, "
        f"device latency {args.latency_ms:g} ms) in {r['wall_s']:.1f} s wall"
    )
    for name, x in (("audio clock (ours)", r), ("ablation: pull-granular clock", naive)):
        print(
            f"  {name:30s} mean {x['mean_ms']:+.3f} ms, mean |offset| {x['mean_abs_ms']:.3f} ms, "
            f"worst {x['worst_ms']:.3f} ms, drift {x['drift_ms']:+.4f} ms, underruns "
            f"{x['underruns']}"
        )
    print(
        "  10-minute window means (ours): " + ", ".join(f"{m:+.4f}" for m in r["window_means_ms"])
    )
    print(f"  bar: |mean| <= 5 ms, worst <= {half_frame:.2f} ms (half a motion frame), no drift")
    ok = abs(r["mean_ms"]) <= 5 and r["worst_ms"] <= half_frame and abs(r["drift_ms"]) < 0.5
    print("  PASS" if ok else "  FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
