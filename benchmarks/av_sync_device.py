"""A/V sync through a real sound server, measured at its output.

    python benchmarks/av_sync_device.py [--minutes 10] [--size 640x360] [--quality auto]

A private PulseAudio daemon with a null sink (``tools/pulse_sink.py``; Debian
``pulseaudio pulseaudio-utils libasound2-plugins``) takes what PyAudio/PortAudio play,
exactly as on a kiosk; its monitor is recorded. ``tools/av_timeline.py`` plays scenarios
back to back until the time is up: 1-4 avatars, with and without a pause or an
interrupt. The audio is tone bursts (heard times measured in the recording), the face
draws a sawtooth of the motion time (shown times read from the drawn pose at each
present): offset = motion time shown - audio time heard at that moment. The heard times
come from the sink's own clock, measured in each recording (``pulse_sink.sink_clock``):
the null sink runs about 60 ppm fast, and a nominal-rate stamp would show the player's
correct tracking of it as a drift of 3.6 ms per minute.

Prints, per scenario and overall: frames measured, mean, p95 |offset|, worst, the frame
interval achieved, and the drift (slope of the offset over the scenario, ms per minute).
Bar (issue 15): mean within 10 ms, worst within one frame, no drift.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import av_timeline  # noqa: E402
import pulse_sink  # noqa: E402

SCENARIO_KEYS = ("avatars", "seconds", "pause_at", "pause_for", "interrupt_at")
SCENARIOS = [
    {"avatars": 1, "seconds": 20},
    {"avatars": 2, "seconds": 20, "pause_at": 6.0, "pause_for": 1.5},
    {"avatars": 4, "seconds": 20},
    {"avatars": 1, "seconds": 20, "interrupt_at": 12.0},
]


def run(pulse: pulse_sink.PulseNullSink, opts: dict) -> tuple[dict, pulse_sink.Recording]:
    with pulse.record(2 if opts["avatars"] > 1 else 1) as rec:
        player = subprocess.run(
            [sys.executable, av_timeline.__file__, json.dumps(opts)],
            env=pulse.env(),
            capture_output=True,
            text=True,
            timeout=opts["seconds"] + 120,
        )
    if player.returncode:
        raise SystemExit(f"player exited {player.returncode}: {player.stderr[-3000:]}")
    return json.loads(player.stdout.strip().splitlines()[-1]), rec


def summarise(name: str, offsets: np.ndarray, times: np.ndarray | None, interval: float) -> str:
    drift = (
        np.polyfit(times, offsets, 1)[0] * 60 if times is not None and len(offsets) > 10 else np.nan
    )
    return (
        f"{name:<34} {len(offsets):>6} {1000 * offsets.mean():>+8.1f} "
        f"{1000 * np.percentile(np.abs(offsets), 95):>8.1f} {1000 * np.abs(offsets).max():>8.1f} "
        f"{1000 * interval:>8.0f} {1000 * drift:>+9.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument(
        "--long",
        type=float,
        metavar="SECONDS",
        help="instead: one avatar speaking for SECONDS without a break (drift over time)",
    )
    parser.add_argument("--size", default="640x360")
    parser.add_argument(
        "--quality", default="auto", help="render quality (default auto: what a kiosk window uses)"
    )
    args = parser.parse_args()
    reason = pulse_sink.missing()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    size = [int(v) for v in args.size.split("x")]
    print(
        f"{'scenario':<34} {'frames':>6} {'mean ms':>8} {'p95 ms':>8} {'worst ms':>8} "
        f"{'frame ms':>8} {'drift/min':>9}"
    )
    everything, sink_ppm, deadline = [], [], time.monotonic() + args.minutes * 60
    with pulse_sink.PulseNullSink() as pulse:
        n = 0
        while time.monotonic() < deadline:
            scenario = (
                {"avatars": 1, "seconds": args.long} if args.long else SCENARIOS[n % len(SCENARIOS)]
            )
            opts = {**scenario, "size": size, "quality": args.quality}
            report, rec = run(pulse, opts)
            sink_ppm.append((rec.rate / pulse_sink.RECORD_RATE - 1) * 1e6)
            for k in range(opts["avatars"]):
                times, offsets = av_timeline.timed_offsets(report, rec, opts["seconds"], k)
                rows = report["frames"][k]
                interval = float(np.median(np.diff([row[0] for row in rows])))
                label = ", ".join(
                    f"{key}={value}" for key, value in opts.items() if key in SCENARIO_KEYS
                )
                print(
                    summarise(
                        f"#{n} avatar {k} ({label})"[:34], offsets, times - times[0], interval
                    ),
                    flush=True,
                )
                everything.append(offsets)
                if args.long:  # the offset over time, 20 s at a time
                    t = times - times[0]
                    bins = [offsets[(t >= a) & (t < a + 20)] for a in range(0, int(t[-1]) + 1, 20)]
                    print("  mean per 20 s: " + " ".join(f"{1000 * b.mean():+.1f}" for b in bins))
            n += 1
            if args.long:
                break
    total = np.concatenate(everything)
    print(summarise(f"all ({n} scenarios)", total, None, np.nan))
    print(
        f"sink clock {min(sink_ppm):+.1f} to {max(sink_ppm):+.1f} ppm against time.monotonic() "
        "(measured in each recording, which is stamped with it)"
    )


if __name__ == "__main__":
    main()
