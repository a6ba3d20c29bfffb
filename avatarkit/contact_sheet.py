"""A contact sheet of an avatar: one picture per pose, to see at a glance what moves.

Six cells, left to right and top to bottom: neutral, jaw open / ``aa``, blink, smile,
funnel, head turned. Each is a real render (engine, headless) of the avatar's model
driven through its ``BlendshapeMap`` exactly as speech would drive it, framed by the
avatar's framing; the turn rotates the head and neck bones of a skinned avatar (as the
view does), else the model about its head centre. Runs on the calling
thread, which becomes the render thread of the ``App`` it makes and closes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES

if TYPE_CHECKING:
    from avatarkit.avatar import Avatar

POSES: tuple[tuple[str, dict[str, float]], ...] = (
    ("neutral", {}),
    ("jaw open / aa", {"jawOpen": 0.7}),
    ("blink", {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}),
    ("smile", {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}),
    ("funnel", {"mouthFunnel": 0.8, "mouthPucker": 0.4, "jawOpen": 0.15}),
    ("head turned", {}),
)
TURN_YAW = 0.45  # radians, the last cell's head turn
COLUMNS = 3


def render_poses(avatar: Avatar, cell: tuple[int, int] = (256, 256)) -> list[np.ndarray]:
    """One HxWx3 uint8 picture per entry of ``POSES``."""
    from avatarkit.bones import BoneRig, jaw_opens_by_bone
    from engine import App, ModelRenderer
    from engine.transform import quat_from_euler, quat_to_matrix

    head = np.array(avatar.framing.head_center, np.float32)
    distance = avatar.framing.camera_distance
    pictures = []
    with App.headless(size=cell, fps=30) as app:
        camera = app.scene.camera
        camera.look_at(head + [0.0, 0.0, distance], head)
        camera.near = max(camera.near, distance / 100)  # as AvatarView.frame does
        camera.far = max(camera.far, distance * 20)
        entity = app.scene.create_entity(avatar.id)
        model = entity.add_component(ModelRenderer(avatar.asset))
        rig = BoneRig.find(model.nodes, model.asset)
        jaw_by_bone = jaw_opens_by_bone(rig, avatar.available_channels)
        for label, channels in POSES:
            weights = np.zeros(NUM_BLENDSHAPES, np.float32)
            for name, value in channels.items():
                weights[ARKIT_INDEX[name]] = value
            avatar.show(model, weights)
            yaw = TURN_YAW if label == "head turned" else 0.0
            if rig is not None:
                jaw = float(weights[ARKIT_INDEX["jawOpen"]]) if jaw_by_bone else None
                rig.apply(model.nodes, np.array([0.0, yaw, 0.0]), np.zeros(2), jaw)
            else:  # rotate about the head centre: the face stays where the camera looks
                turn = quat_from_euler(0.0, yaw, 0.0)
                entity.transform.rotation[:] = turn
                entity.transform.translation[:] = head - quat_to_matrix(turn) @ head
            app.step()
            pictures.append(app.read_pixels()[:, :, :3])
    return pictures


def write_contact_sheet(
    avatar: Avatar, path: str | Path, cell: tuple[int, int] = (256, 256)
) -> Path:
    """Render ``POSES`` and save them as one PNG grid (``COLUMNS`` wide), labelled."""
    from PIL import Image, ImageDraw

    pictures = render_poses(avatar, cell)
    w, h = cell
    rows = -(-len(pictures) // COLUMNS)
    sheet = Image.new("RGB", (w * COLUMNS, h * rows))
    draw = ImageDraw.Draw(sheet)
    for i, (picture, (label, _)) in enumerate(zip(pictures, POSES, strict=True)):
        x, y = (i % COLUMNS) * w, (i // COLUMNS) * h
        sheet.paste(Image.fromarray(np.ascontiguousarray(picture)), (x, y))
        draw.text((x + 6, y + 4), label, fill=(255, 255, 255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
