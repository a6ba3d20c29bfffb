"""Each bundled avatar rendered headless (engine, EGL) with blendshapes set: pixels change where
they should."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_INDEX, NUM_BLENDSHAPES
from avatarkit.avatar import Avatar
from avatarkit.package import list_packages
from avatarkit.paths import AVATARS_DIR

pytestmark = pytest.mark.timeout(120)

SIZE = 256
# Where the bundled faces have their features, relative to the framing's head centre (m).
LEFT_EYE = (0.032, 0.012, 0.08)  # the subject's left: +X, on the right of the picture
RIGHT_EYE = (-0.032, 0.012, 0.08)
MOUTH = (0.0, -0.047, 0.09)


@pytest.fixture(scope="module")
def app(make_headless_app):
    app = make_headless_app(size=(SIZE, SIZE), samples=0)
    yield app
    app.close()


def project(app, point) -> tuple[int, int]:
    camera = app.scene.camera
    clip = camera.projection_matrix(1.0) @ camera.view_matrix() @ np.array([*point, 1.0])
    ndc = clip[:3] / clip[3]
    return int((ndc[0] + 1) / 2 * SIZE), int((1 - ndc[1]) / 2 * SIZE)


def box(image, centre, half_w, half_h):
    x, y = centre
    return image[max(y - half_h, 0) : y + half_h, max(x - half_w, 0) : x + half_w].astype(np.int16)


def changed(a, b) -> float:
    """Fraction of pixels whose colour moved by more than a little."""
    return float((np.abs(a - b).max(axis=-1) > 24).mean())


@pytest.mark.parametrize("avatar_id", [m.id for m in list_packages(AVATARS_DIR)])
def test_blendshapes_change_the_right_pixels(app, avatar_id):
    from engine import ModelRenderer

    avatar = Avatar.from_package(AVATARS_DIR / avatar_id)
    head = np.array(avatar.framing.head_center)
    entity = app.scene.create_entity(avatar_id)
    model = entity.add_component(ModelRenderer(avatar.asset))
    app.scene.camera.look_at(head + [0, 0, avatar.framing.camera_distance], head)
    names = model.asset.target_names

    def render(**channels):
        w = np.zeros(NUM_BLENDSHAPES, np.float32)
        for name, value in channels.items():
            w[ARKIT_INDEX[name]] = value
        model.set_weights(avatar.target_weights(w, names))
        app.step()
        return app.read_pixels()

    try:
        neutral = render()
        jaw, blink, smile = (
            render(jawOpen=1.0),
            render(eyeBlinkLeft=1.0),
            render(mouthSmileLeft=1.0, mouthSmileRight=1.0),
        )
    finally:
        entity.destroy()

    eye_l, eye_r, mouth = (project(app, head + p) for p in (LEFT_EYE, RIGHT_EYE, MOUTH))
    assert eye_l[0] > eye_r[0]  # the subject's left eye is on the picture's right
    e, m = SIZE // 28, SIZE // 12  # box half-sizes: an eye, the mouth
    face = box(neutral, mouth, m, m)
    assert face.std() > 5 and not np.allclose(
        face.mean(axis=(0, 1)), neutral[0, 0]
    )  # a face, not background

    # jawOpen: the mouth changes and darkens (the cavity shows); the eyes do not move.
    assert changed(box(jaw, mouth, m, m), box(neutral, mouth, m, m)) > 0.15
    threshold = 0.4 * np.median(
        box(neutral, mouth, m, m).mean(axis=-1)
    )  # far darker than this skin
    dark = [
        float((box(img, mouth, m, m).mean(axis=-1) < threshold).mean()) for img in (neutral, jaw)
    ]
    assert dark[1] > dark[0] + 0.05, dark
    assert changed(box(jaw, eye_l, e, e), box(neutral, eye_l, e, e)) < 0.02

    # eyeBlinkLeft: the left eye closes (its iris and white are covered by skin), the right stays
    # open.
    assert changed(box(blink, eye_l, e, e), box(neutral, eye_l, e, e)) > 0.25
    assert changed(box(blink, eye_r, e, e), box(neutral, eye_r, e, e)) < 0.02
    assert changed(box(blink, mouth, m, m), box(neutral, mouth, m, m)) < 0.02

    # Smile: the mouth corners move; the eyes stay.
    assert changed(box(smile, mouth, m, m), box(neutral, mouth, m, m)) > 0.05
    assert changed(box(smile, eye_r, e, e), box(neutral, eye_r, e, e)) < 0.05
