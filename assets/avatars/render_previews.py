"""Render the preview PNGs in ``docs/avatars/`` from the bundled packages (engine, headless).

``python assets/avatars/render_previews.py`` writes, per avatar, ``<id>.png``: neutral,
jawOpen, eyeBlinkLeft+Right and mouthSmile side by side, plus ``lineup.png`` (all busts).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES  # noqa: E402
from avatarkit.avatar import Avatar  # noqa: E402
from avatarkit.package import list_packages  # noqa: E402
from avatarkit.paths import AVATARS_DIR  # noqa: E402

OUT = REPO / "docs" / "avatars"
TILE = 384
POSES = {
    "neutral": {},
    "jawOpen": {"jawOpen": 1.0},
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "smile": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0},
}


def arkit(channels: dict[str, float]) -> np.ndarray:
    w = np.zeros(NUM_BLENDSHAPES, np.float32)
    for name, value in channels.items():
        w[ARKIT_INDEX[name]] = value
    return w


def main() -> int:
    from engine import App, ModelRenderer

    OUT.mkdir(parents=True, exist_ok=True)
    avatars = [Avatar.from_package(AVATARS_DIR / m.id) for m in list_packages(AVATARS_DIR)]
    busts = []
    with App.headless(size=(TILE, TILE)) as app:
        for avatar in avatars:
            entity = app.scene.create_entity(avatar.id)
            model = entity.add_component(ModelRenderer(avatar.asset))
            names = model.asset.target_names
            head = np.array(avatar.framing.head_center)
            # A touch from the side and above: reads more like a person than a mugshot.
            app.scene.camera.look_at(
                head + [0.10, 0.02, avatar.framing.camera_distance], head + [0, -0.01, 0]
            )
            tiles = []
            for channels in POSES.values():
                model.set_weights(avatar.target_weights(arkit(channels), names))
                app.step()
                tiles.append(app.read_pixels())
            Image.fromarray(np.concatenate(tiles, axis=1)).save(
                OUT / f"{avatar.id}.png", optimize=True
            )
            bust_centre = np.array(avatar.framing.extra.get("bust_center", head))
            distance = float(
                avatar.framing.extra.get("bust_camera_distance", 2 * avatar.framing.camera_distance)
            )
            app.scene.camera.look_at(bust_centre + [0.15, 0.05, distance], bust_centre)
            model.set_weights(
                avatar.target_weights(arkit({"mouthSmileLeft": 0.4, "mouthSmileRight": 0.4}), names)
            )
            app.step()
            busts.append(app.read_pixels())
            entity.destroy()
            print(f"docs/avatars/{avatar.id}.png")
    Image.fromarray(np.concatenate(busts, axis=1)).save(OUT / "lineup.png", optimize=True)
    print("docs/avatars/lineup.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
