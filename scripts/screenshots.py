"""Render the README's screenshots headless: ``docs/screenshots/{kiosk,multi,game,golden}.png``.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--size 1280x720]

Each scene runs on the virtual clock exactly as ``python -m scenes.<name> --headless``
does (same Motion Server, same motion, same captions), so the pictures are what users
get. The kiosk shot has its HUD switched on by a synthetic F1 key press.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from engine.events import KEY_DOWN, Event  # noqa: E402
from scenes import game, golden, kiosk, multi  # noqa: E402
from scenes._runtime import SceneOptions, Stage  # noqa: E402


def shoot_kiosk(options: SceneOptions) -> Path:
    with Stage(options, title="kiosk") as stage:
        kiosk.Kiosk(stage)
        stage.app.post_event(Event(KEY_DOWN, key="f1"))
        recording = stage.record("kiosk", png_at=kiosk.PNG_AT)
        stage.run(kiosk.PNG_AT + 0.1)
        recording.close()
    return recording.png


def shoot_scene(module, name: str, options: SceneOptions) -> Path:
    out = options.out
    code = module.main(
        [
            "--headless",
            "--seconds",
            f"{module.PNG_AT + 0.1:g}",
            "--size",
            "x".join(map(str, options.size)),
            "--out",
            str(out),
        ]
    )
    if code != 0:
        raise SystemExit(f"{name} failed ({code})")
    return out / f"{name}.png"


def shoot_golden(out: Path) -> Path:
    """The golden frames of every avatar, one row per pose, as one contact sheet."""
    from engine import save_png

    frames = golden.render_frames()
    rows = [np.hstack([frames[f"{a}_{p}"] for a in golden.bundled_avatars()]) for p in golden.POSES]
    return save_png(np.vstack(rows), out / "golden.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        options = SceneOptions(headless=True, out=Path(tmp), size=size)
        shots = {
            "kiosk": shoot_kiosk(options),
            "multi": shoot_scene(multi, "multi", options),
            "game": shoot_scene(game, "game", options),
            "golden": shoot_golden(Path(tmp)),
        }
        for name, path in shots.items():
            target = args.out / f"{name}.png"
            shutil.copyfile(path, target)
            print(f"{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
