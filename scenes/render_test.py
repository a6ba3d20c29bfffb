"""Headless render test scene: ``python -m scenes.render_test [--out DIR]``.

Renders a lit, shaded 3D scene off-screen (EGL) to a PNG and a short MP4 with audio,
then prints where they went. It shows a bundled avatar (``avatarkit.paths.AVATARS_DIR``) if
there is one, else the engine's test asset. A synthetic "speech-like" tone drives the
mouth (``jawOpen`` when the model has it, else its first morph target) from the audio
envelope, frame-accurately, so the video doubles as an A/V sync check.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from avatarkit.cli import video_size
from avatarkit.paths import ASSETS_DIR, AVATARS_DIR
from engine import (
    App,
    Component,
    EngineError,
    ModelRenderer,
    VideoWriter,
    load_gltf,
    quat_from_euler,
)

FALLBACK_MODEL = ASSETS_DIR / "test" / "shapes.glb"
SAMPLE_RATE = 48000
PROG = "python -m scenes.render_test"
SYLLABLE_HZ = 3.5  # about the syllable rate of speech


def find_model() -> Path:
    avatars = sorted(AVATARS_DIR.glob("*/*.glb"))
    return avatars[0] if avatars else FALLBACK_MODEL


def speech_like_tone(seconds: float, rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """(int16 PCM, envelope 0..1 per sample): a voiced buzz gated into syllables."""
    t = np.arange(round(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * SYLLABLE_HZ * t), 0, None) ** 1.5
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (voice * envelope * 6000).astype(np.int16), envelope


class Performer(Component):
    """Moves the model: mouth from the audio envelope, slow head turn, a blink."""

    def __init__(self, model: ModelRenderer, envelope: np.ndarray, fps: float) -> None:
        self.model = model
        self.envelope = envelope
        self.fps = fps
        names = model.target_names
        self.mouth = "jawOpen" if "jawOpen" in names else (names[0] if names else None)
        self.blinks = [n for n in ("eyeBlinkLeft", "eyeBlinkRight") if n in names]
        self.smile = [n for n in ("mouthSmileLeft", "mouthSmileRight") if n in names]

    def update(self, dt: float) -> None:
        t = self.entity.scene.time
        self.entity.transform.rotation = quat_from_euler(
            yaw=0.35 * math.sin(t * 0.9), pitch=0.05 * math.sin(t * 1.3)
        )
        # Sample the envelope at the centre of this frame's audio.
        i = min(int((t - 0.5 / self.fps) * SAMPLE_RATE), len(self.envelope) - 1)
        if self.mouth:
            self.model.set_weight(self.mouth, 0.55 * float(self.envelope[max(i, 0)]))
        blink = max(0.0, 1 - abs((t % 2.2) - 1.1) / 0.08)
        for name in self.blinks:
            self.model.set_weight(name, blink)
        for name in self.smile:
            self.model.set_weight(name, 0.25)


def render(
    out_dir: Path,
    seconds: float = 3.0,
    size=(1280, 720),
    fps: int = 30,
    model_path: Path | None = None,
) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_path or find_model()
    pcm, envelope = speech_like_tone(seconds)
    per_frame = SAMPLE_RATE // fps
    with App.headless(size, fps=fps) as app:
        asset = load_gltf(model_path)
        entity = app.scene.create_entity(model_path.stem)
        model = entity.add_component(ModelRenderer(asset))
        entity.add_component(Performer(model, envelope, fps))
        lo, hi = asset.bounds()
        if "jawOpen" in model.target_names:  # a face rig: frame head and shoulders
            lo = lo.copy()
            lo[1] = hi[1] - 0.6 * (hi[1] - lo[1])
        app.scene.camera.fov_y = 25
        app.scene.camera.frame_bounds(
            lo, hi, direction=(0.0, 0.12, 1.0), aspect=app.aspect, margin=1.0
        )
        video_path = out_dir / "render_test.mp4"
        with VideoWriter(video_path, app.size, fps=fps, sample_rate=SAMPLE_RATE) as video:

            def record(app_: App, frame) -> None:
                video.write_frame(app_.read_pixels())
                start = frame.index * per_frame
                video.write_audio(pcm[start : start + per_frame])

            app.add_frame_listener(record)
            frames = app.run(seconds=seconds)
            app.remove_frame_listener(record)
        # The still: mid-syllable, mouth open.
        app.scene.time = 1.0 / SYLLABLE_HZ / 4 - 1.0 / fps
        app.step()
        png_path = app.save_png(out_dir / "render_test.png")
        info = {
            "model": model_path,
            "png": png_path,
            "mp4": video_path,
            "frames": frames,
            "triangles": model.triangle_count,
            "renderer": app.ctx.info["GL_RENDERER"],
        }
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="output folder (default: ./out)"
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", default="1280x720", type=video_size, help="WIDTHxHEIGHT")
    parser.add_argument(
        "--model", type=Path, default=None, help="a .glb/.gltf (default: first bundled avatar)"
    )
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error(f"--seconds must be above zero, got {args.seconds}")
    try:
        info = render(args.out, args.seconds, args.size, model_path=args.model)
    except EngineError as exc:  # one readable line and exit status 2, as in every scene
        print(f"{PROG}: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:  # --out under a file, or read-only
        print(
            f"{PROG}: error [invalidRequest]: cannot write in {args.out}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    print(f"rendered {info['model'].name} ({info['triangles']} triangles) on {info['renderer']}")
    print(f"image: {info['png'].resolve()}")
    print(f"video: {info['mp4'].resolve()} ({info['frames']} frames with audio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
