"""Visual check: a bundled avatar speaking a bundled line, key frames in one PNG.

    .venv/bin/python -m avatarkit.motion.training.render_frames [--line kiosk_cafe]
                                                                [--out docs/motion-frames.png]

Runs the line through ``create_stream`` (30 fps), then renders (headless EGL) the
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


def pick_frames(line: dict, samples: int, rate: int) -> list[tuple[int, str]]:
    """One frame per wanted viseme: the middle of its longest span, with a caption."""
    events = [(name, int(round(start * rate))) for name, start in line["phonemes"]]
    spans = segments(events, samples)
    words = line["words"]
    picked = []
    for vis, label in WANTED:
        cands = [(end - start, start, end) for v, start, end in spans if v == vis]
        if not cands:
            continue
        _, start, end = max(cands)
        t = (start + end) / 2 / rate
        word = next((w["text"] for w in words if w["start"] <= t < w["end"]), "")
        picked.append((int(round(t * FPS)), f"{label} - '{word}'"))
    return picked


def main() -> None:
    from engine import App, ModelRenderer, load_gltf, quat_from_euler

    parser = argparse.ArgumentParser()
    parser.add_argument("--line", default="kiosk_cafe")
    parser.add_argument("--avatar", default="ava")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "motion-frames.png")
    args = parser.parse_args()
    meta = json.loads((SPEECH_DIR / "lines.json").read_text())
    line = next(e for e in meta["lines"] if e["id"] == args.line)
    with wave.open(str(SPEECH_DIR / line["file"])) as wav:
        pcm, rate = wav.readframes(wav.getnframes()), wav.getframerate()
    stream = create_stream(rate, FPS)
    frames = []
    for start in range(0, len(pcm), 640):
        frames += stream.push(pcm[start : start + 640])
    frames += stream.finish()
    picked = pick_frames(line, len(pcm) // 2, rate)

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
            lo, hi, direction=(0.0, 0.05, 1.0), aspect=app.aspect, margin=1.0
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
    print(f"{args.out}: {len(tiles)} frames of '{line['text']}'")


if __name__ == "__main__":
    main()
