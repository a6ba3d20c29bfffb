"""Golden-image render test (CI): fixed frames of every bundled avatar under EGL,
compared with committed goldens within a tolerance, plus a short MP4 of the full path.

    python -m scenes.golden [--out DIR] [--update]

Exit status 0 when every frame matches, 1 when any differs (diff images go to ``--out``),
2 on an error. ``--update`` re-renders the goldens (review them before committing).
Each frame is a fixed ARKit pose (no clocks, no idle, no network), so it only changes
when the avatar, its blendshape map or the renderer does.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatarkit import AvatarManager
from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.paths import AVATARS_DIR, REPO_ROOT
from engine import App, ModelRenderer
from scenes._runtime import SceneOptions, Stage, load_lines, report_outputs, run_main

PROG = "python -m scenes.golden"
GOLDEN_DIR = REPO_ROOT / "tests" / "scenes" / "golden"
SIZE = (256, 256)
# Poses: ARKit weights; each exercises different morph targets of the blendshape map.
POSES: dict[str, dict[str, float]] = {
    "neutral": {},
    "speak": {"jawOpen": 0.45, "mouthFunnel": 0.25, "browInnerUp": 0.4, "eyeLookOutLeft": 0.5,
              "eyeLookInRight": 0.5},
    "smile": {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "cheekSquintLeft": 0.5,
              "cheekSquintRight": 0.5, "eyeBlinkLeft": 1.0},
}  # fmt: skip
# Tolerance: software rasterisers differ in the last bit across versions; a real change
# (a pose, a material, the camera) moves thousands of pixels by far more than this.
MAX_MEAN_DIFF = 0.5  # mean absolute difference per channel, 0..255
MAX_BAD_FRACTION = 0.005  # share of pixels with a channel off by more than BAD_LEVEL
BAD_LEVEL = 24
VIDEO_SECONDS = 2.0


@dataclass(frozen=True)
class Comparison:
    name: str
    mean_diff: float
    bad_fraction: float

    @property
    def ok(self) -> bool:
        return self.mean_diff <= MAX_MEAN_DIFF and self.bad_fraction <= MAX_BAD_FRACTION


def bundled_avatars() -> list[str]:
    return sorted(p.parent.name for p in AVATARS_DIR.glob("*/manifest.json"))


def pose_weights(pose: dict[str, float]) -> np.ndarray:
    weights = np.zeros(NUM_BLENDSHAPES, np.float32)
    for name, value in pose.items():
        weights[ARKIT_INDEX[name]] = value
    return weights


def render_frames(
    avatar_ids: list[str] | None = None, size: tuple[int, int] = SIZE
) -> dict[str, np.ndarray]:
    """``{"<avatar>_<pose>": HxWx3 uint8}`` for every avatar and pose (no MSAA: exact)."""
    manager = AvatarManager(str(AVATARS_DIR))
    frames = {}
    with App.headless(size, samples=0) as app:
        for avatar_id in avatar_ids or bundled_avatars():
            avatar = manager.load_blocking(avatar_id)
            entity = app.scene.create_entity(avatar_id)
            model = entity.add_component(ModelRenderer(avatar.asset))
            head = np.array(avatar.framing.head_center, np.float32)
            app.scene.camera.look_at(
                head + [0.0, 0.0, avatar.framing.camera_distance * 0.8], head
            )  # the face fills it
            for pose_name, pose in POSES.items():
                avatar.show(model, pose_weights(pose))
                app.step()
                frames[f"{avatar_id}_{pose_name}"] = app.read_pixels()
            entity.destroy()
    return frames


def compare(pixels: np.ndarray, golden: np.ndarray, name: str = "") -> Comparison:
    if pixels.shape != golden.shape:
        return Comparison(name, 255.0, 1.0)
    diff = np.abs(pixels.astype(np.int16) - golden.astype(np.int16))
    return Comparison(name, float(diff.mean()), float((diff.max(axis=2) > BAD_LEVEL).mean()))


def load_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def check(out: Path, update: bool = False) -> list[Comparison]:
    """Render, then compare with (or with ``update``, rewrite) the goldens."""
    from engine import save_png

    results = []
    for name, pixels in render_frames().items():
        golden_path = GOLDEN_DIR / f"{name}.png"
        if update:
            save_png(pixels, golden_path)
            continue
        if not golden_path.exists():
            results.append(Comparison(name, 255.0, 1.0))
            save_png(pixels, out / f"{name}.actual.png")
            continue
        golden = load_png(golden_path)
        result = compare(pixels, golden, name)
        results.append(result)
        if not result.ok:
            diff = (
                np.abs(pixels.astype(np.int16) - golden.astype(np.int16))
                .clip(0, 255)
                .astype(np.uint8)
            )
            save_png(pixels, out / f"{name}.actual.png")
            save_png(np.minimum(diff * 4, 255).astype(np.uint8), out / f"{name}.diff.png")
    return results


def record_clip(out: Path, avatar_id: str) -> object:
    """The whole product path for a CI artefact: server, protocol, motion, view, MP4."""
    options = SceneOptions(headless=True, seconds=VIDEO_SECONDS, out=out, size=(640, 360))
    with Stage(options) as stage:
        (avatar,) = stage.load_avatars([avatar_id])
        view = stage.add_view(avatar)
        stage.frame_portrait(view)
        stage.speak(view, load_lines()["greeting"])
        recording = stage.record("golden", png_at=1.0)
        stage.run(VIDEO_SECONDS)
        recording.close()
    return recording


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="diff images and the MP4 (default ./out)"
    )
    parser.add_argument("--update", action="store_true", help="rewrite the golden images")
    parser.add_argument("--no-video", action="store_true", help="skip the MP4")
    # Accepted for symmetry with the other scenes (this one is always headless).
    parser.add_argument("--headless", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def body() -> int:
        if not args.update and not GOLDEN_DIR.is_dir():  # the goldens are test data: not in a wheel
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST,
                f"no golden images at {GOLDEN_DIR}; this scene runs from a checkout",
            )
        args.out.mkdir(parents=True, exist_ok=True)
        results = check(args.out, args.update)
        if args.update:
            print(f"{PROG}: goldens rewritten in {GOLDEN_DIR}")
            return 0
        for r in results:
            print(
                f"{'ok  ' if r.ok else 'FAIL'} {r.name:<16} mean diff {r.mean_diff:6.3f}  off "
                f"pixels {r.bad_fraction:7.3%}"
            )
        if not args.no_video:
            report_outputs(PROG, record_clip(args.out, bundled_avatars()[0]))
        failed = [r.name for r in results if not r.ok]
        if failed:
            print(
                f"{PROG}: {len(failed)} of {len(results)} frames differ from the goldens: "
                f"{', '.join(failed)} (see {args.out.resolve()})"
            )
            return 1
        print(f"{PROG}: {len(results)} frames match the goldens")
        return 0

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
