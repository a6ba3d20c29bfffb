"""How fast the rendered face starts with speech and comes to rest after it, on the MP4.

    .venv/bin/python benchmarks/settle.py [--line kiosk_cafe ...] [--size 640x360]

Renders 1 s of silence + a bundled line + 1 s of silence with ``avatarkit render --idle off``
(the whole product path: Motion Server, controller, renderer, encoder), then reads the
video back. A frame "moves" when its mean absolute difference from the previous frame is
above 5% of the median difference while the line is spoken (visible motion, not a pixel
of rounding) and above the encoder's noise (3x the largest difference in the silence
before the line, once the encoder's start-up has passed: its first P frames re-quantise
the whole picture and would hide a face still settling).
The audio's first and last sounds are the 10 ms frames within 40 dB of its peak level.
Bars, on every line: the face starts within 40 ms of the first sound and rests within
150 ms of the last.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import av
import numpy as np

from avatarkit.paths import SPEECH_DIR


def padded_line(line: str, folder: Path) -> tuple[Path, float, float]:
    """The line with a second of silence each side; (path, first sound s, last sound s)."""
    with wave.open(str(SPEECH_DIR / f"{line}.wav"), "rb") as src:
        rate = src.getframerate()
        pcm = np.frombuffer(src.readframes(src.getnframes()), "<i2")
    pcm = np.concatenate([np.zeros(rate, "<i2"), pcm, np.zeros(rate, "<i2")])
    hop = rate // 100
    frames = pcm[: len(pcm) // hop * hop].astype(np.float64).reshape(-1, hop) / 32768.0
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    sounding = np.flatnonzero(level > level.max() - 40)
    path = folder / "padded.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path, sounding[0] * 0.01, (sounding[-1] + 1) * 0.01


def motion(video: Path) -> tuple[np.ndarray, float]:
    """Per frame: mean absolute difference from the previous frame; and the frame rate."""
    with av.open(str(video)) as src:
        stream = src.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="gray").astype(np.float32) for f in src.decode(stream)]
    diffs = [0.0] + [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:], strict=False)]
    return np.array(diffs), fps


LINES = ("kiosk_cafe", "greeting", "kiosk_welcome", "kiosk_help", "quiz_intro", "conv_ben_1")
STARTUP_S = 0.3  # the encoder's start-up, left out of its noise


def settle(line: str, size: str) -> tuple[float, float]:
    """(start delay, rest after the last sound) in seconds for one bundled line."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wav, first, last = padded_line(line, folder)
        video = folder / "out.mp4"
        command = [sys.executable, "-m", "avatarkit", "render", "--audio", str(wav)]
        command += ["-o", str(video), "--idle", "off", "--size", size]
        subprocess.run(command, check=True, capture_output=True)
        diffs, fps = motion(video)
    speaking = diffs[int(first * fps) : int(last * fps)]
    lead = diffs[int(STARTUP_S * fps) : int((first - 0.1) * fps)]
    noise = max(3 * lead.max(), 0.05 * float(np.median(speaking)))
    moving = np.flatnonzero(diffs > noise)
    moving = moving[moving >= STARTUP_S * fps]
    # diffs[i] compares frame i with frame i-1: the first moving frame shows the motion,
    # and the last one is where the face arrives at rest.
    start, rest = moving[0] / fps, moving[-1] / fps
    print(
        f"{line:<14} sound {first:.2f}-{last:.2f} s, face moves {start:.3f}-{rest:.3f} s: "
        f"start {1000 * (start - first):+4.0f} ms, rest {1000 * (rest - last):+4.0f} ms"
    )
    return start - first, rest - last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--line", action="append", help=f"bundled speech line id (default: {', '.join(LINES)})"
    )
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    results = [settle(line, args.size) for line in args.line or LINES]
    start = max(results, key=lambda r: abs(r[0]))[0]
    rest = max(r[1] for r in results)
    print(f"worst start delay {1000 * start:+.0f} ms (bar |delay| <= 40 ms)")
    print(f"worst rest after last sound {1000 * rest:+.0f} ms (bar <= 150 ms)")


if __name__ == "__main__":
    main()
