"""``avatarkit motion A.wav [B.wav ...] -o OUT``: speech WAVs -> motion frames (.npz).

Runs the same streaming model the Motion Server runs, fed in small chunks. One input:
OUT is the .npz file; several: OUT is a directory receiving ``<stem>.npz`` each. Every
npz holds ``names`` (ARKit names), ``weights`` float32 [T, 52], ``fps``, ``head``
float32 [T, 3] (pitch/yaw/roll radians) and ``gaze`` float32 [T, 2] (yaw/pitch).
"""

from __future__ import annotations

import argparse

CHUNK_S = 0.02  # the CLI feeds the stream as a live client would


DESCRIPTION = """Speech WAV(s) -> ARKit motion frames (.npz), with the streaming model the Motion
Server runs. Each npz holds names (the 52 ARKit names), weights float32 [T, 52], fps,
head float32 [T, 3] (pitch/yaw/roll radians) and gaze float32 [T, 2] (yaw/pitch)."""

EXAMPLES = """examples:
  avatarkit motion assets/speech/greeting.wav -o out/greeting.npz
  avatarkit motion a.wav b.wav c.wav -o out/motion/       # one <stem>.npz each
  avatarkit motion speech.wav -o speech.npz --fps 60"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "motion",
        help="speech WAV(s) -> ARKit motion frames (.npz)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="WAV",
        help="speech WAVs: 8/16/24/32-bit integer or 32-bit float PCM, any channel count "
        "(downmixed)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help=".npz file (one input; .npz is added if missing) or directory (several)",
    )
    p.add_argument(
        "--fps", type=int, default=30, help="motion frame rate: 25, 30 or 60 (default 30)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from avatarkit.arkit import ARKIT_NAMES
    from avatarkit.cli.common import check_output, read_wav
    from avatarkit.errors import AvatarKitError, ErrorCode
    from avatarkit.motion.stream import check_fps, create_stream

    check_fps(args.fps, "--fps")
    inputs = [Path(p) for p in args.inputs]
    out = Path(args.output)
    if len(inputs) == 1 and out.is_dir():  # an existing folder: put <stem>.npz in it
        targets = [out / f"{inputs[0].stem}.npz"]
    elif len(inputs) == 1:
        targets = [out if out.suffix == ".npz" else out.with_name(out.name + ".npz")]
    else:
        stems = [p.stem for p in inputs]
        if len(set(stems)) != len(stems):
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, "several inputs share a file name; outputs would collide"
            )
        if out.exists() and not out.is_dir():
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, f"{out} exists and is not a directory")
        targets = [out / f"{stem}.npz" for stem in stems]
    audios = [read_wav(p) for p in inputs]  # every input is checked before anything is written
    for target in targets:
        check_output(target)
    for path, audio, target in zip(inputs, audios, targets, strict=True):
        stream = create_stream(audio.sample_rate, args.fps, model=args.model)
        chunk = max(1, int(CHUNK_S * audio.sample_rate))
        frames = []
        for start in range(0, len(audio.pcm), chunk):
            frames += stream.push(audio.pcm[start : start + chunk].tobytes())
        frames += stream.finish()
        np.savez_compressed(
            target,
            names=np.array(ARKIT_NAMES),
            weights=np.stack([f.weights for f in frames]).astype(np.float32),
            head=np.stack([f.head for f in frames]).astype(np.float32),
            gaze=np.stack([f.gaze for f in frames]).astype(np.float32),
            fps=np.int32(args.fps),
        )
        notes = f" ({'; '.join(audio.notes)})" if audio.notes else ""
        print(f"{path} -> {target}: {len(frames)} frames at {args.fps} fps{notes}")
    return 0
