"""Visual check: a bundled avatar speaking, key frames in one PNG.

    .venv/bin/python -m avatarkit.motion.training.render_frames [--line kiosk_cafe]
        [--piper "A sentence."] [--human NAME.wav] [--out docs/motion-frames.png]

Runs the speech (a bundled espeak-ng line, a Piper sentence or a real recording of the
human development set) through ``create_stream`` (30 fps), then renders (headless EGL) the
frames at the middle of chosen phonemes - an open vowel, a p/b/m closure, a rounded
vowel, a spread vowel, an f/v - and lays them out with their labels.
"""

from __future__ import annotations

import argparse
import json
import math
import wave
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.motion.stream import create_stream
from avatarkit.motion.visemes import segments
from avatarkit.paths import AVATARS_DIR, REPO_ROOT, SPEECH_DIR

FPS = 30
WANTED = (("AA", "open vowel"), ("PP", "p/b/m closed"), ("FF", "f/v teeth on lip"),
          ("UU", "rounded"), ("IH", "spread"), ("sil", "pause: rest"))  # fmt: skip


def pick_frames(
    spans: list[tuple[str, int, int]], rate: int, words: list[dict]
) -> list[tuple[int, str]]:
    """One frame per wanted viseme: the middle of its longest span, with a caption."""
    picked = []
    for vis, label in WANTED:
        cands = [(end - start, start, end) for v, start, end in spans if v == vis]
        if not cands:
            continue
        _, start, end = max(cands)
        t = (start + end) / 2 / rate
        word = next((w["text"] for w in words if w["start"] <= t < w["end"]), "")
        picked.append((int(round(t * FPS)), f"{label} - '{word}'" if word else label))
    return picked


def main() -> None:
    from engine import App, ModelRenderer, load_gltf, quat_from_euler

    parser = argparse.ArgumentParser()
    parser.add_argument("--line", default="kiosk_cafe", help="bundled line id")
    parser.add_argument("--piper", help="speak this sentence with Piper instead")
    parser.add_argument("--human", help="a recording of benchmarks/data/human instead")
    parser.add_argument("--avatar", default="ava")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "motion-frames.png")
    args = parser.parse_args()
    pcm, rate, spans, words, text = speech(args)
    stream = create_stream(rate, FPS)
    frames = []
    for start in range(0, len(pcm), 640):
        frames += stream.push(pcm[start : start + 640])
    frames += stream.finish()
    picked = pick_frames(spans, rate, words)

    tiles = []
    with App.headless((480, 480), fps=FPS) as app:
        model_path = next((AVATARS_DIR / args.avatar).glob("*.glb"))
        asset = load_gltf(model_path)
        entity = app.scene.create_entity(args.avatar)
        model = entity.add_component(ModelRenderer(asset))
        lo, hi = asset.bounds()
        lo = lo.copy()
        lo[1] = hi[1] - 0.3 * (hi[1] - lo[1])  # the face
        app.scene.camera.fov_y = 25
        app.scene.camera.frame_bounds(
            [float(v) for v in lo],
            [float(v) for v in hi],
            direction=(0.0, 0.05, 1.0),
            aspect=app.aspect,
            margin=1.0,
        )
        for index, caption in picked:
            frame = frames[min(index, len(frames) - 1)]
            model.set_weights(np.asarray(frame.weights), names=ARKIT_NAMES)
            pitch, yaw, roll = (float(v) for v in frame.head)
            entity.transform.rotation = quat_from_euler(pitch=pitch, yaw=yaw, roll=roll)
            app.step()
            tile = Image.fromarray(app.read_pixels())
            ImageDraw.Draw(tile).text(
                (10, 10), f"{caption}  (t={index / FPS:.2f}s)", fill=(255, 255, 255)
            )
            tiles.append(tile)
    cols = 3
    rows = math.ceil(len(tiles) / cols)
    sheet = Image.new("RGB", (480 * cols, 480 * rows))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * 480, (i // cols) * 480))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"{args.out}: {len(tiles)} frames of '{text}'")


def speech(args) -> tuple[bytes, int, list[tuple[str, int, int]], list[dict], str]:
    """PCM, rate, viseme spans, words (for captions) and text of the chosen speech."""
    if args.piper or args.human:
        if args.piper:
            from avatarkit.motion.training.piper import speak_piper

            clip = speak_piper(args.piper, lead_s=0.2, tail_s=0.3)
        else:
            from avatarkit.motion.training.human import human_clip

            clip = human_clip(args.human)
        pcm = (np.clip(clip.audio, -1, 1) * 32767).astype("<i2").tobytes()
        return pcm, clip.sample_rate, clip.spans, [], clip.text
    meta = json.loads((SPEECH_DIR / "lines.json").read_text())
    line = next(e for e in meta["lines"] if e["id"] == args.line)
    with wave.open(str(SPEECH_DIR / line["file"])) as wav:
        pcm, rate = wav.readframes(wav.getnframes()), wav.getframerate()
    events = [(name, int(round(start * rate))) for name, start in line["phonemes"]]
    return pcm, rate, segments(events, len(pcm) // 2), line["words"], line["text"]


if __name__ == "__main__":
    main()
