"""engine.ui: text and progress bars composed with pygame.font and drawn over the 3D
frame by a screen-space quad (real EGL rendering, read back)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import App, ModelRenderer, load_gltf
from engine.ui import Overlay, ProgressBar, Text
from engine.ui.widgets import place

pytestmark = pytest.mark.timeout(60)
SHAPES = "assets/test/shapes.glb"


@pytest.fixture
def app():
    with App.headless((320, 180), samples=0) as app:
        yield app


def _region(pixels: np.ndarray, rect) -> np.ndarray:
    x, y, w, h = rect
    return pixels[y : y + h, x : x + w].astype(int)


def test_text_is_drawn_over_the_frame_where_its_rect_says(app):
    overlay = app.scene.create_entity("ui").add_component(Overlay())
    app.step()
    empty = app.read_pixels()
    label = overlay.add(Text("Hello overlay", anchor="top-left", offset=(10, 10), size=24))
    app.step()
    drawn = app.read_pixels()
    x, y, w, h = label.rect
    assert (x, y) == (10, 10) and w > 60 and h > 20
    assert np.abs(_region(drawn, label.rect) - _region(empty, label.rect)).mean() > 20
    outside = drawn[y + h + 5 :, :].astype(int) - empty[y + h + 5 :, :]
    assert np.abs(outside).max() == 0  # nothing drawn elsewhere
    assert label.contains((x + 1, y + 1)) and not label.contains((x + w + 1, y))


def test_overlay_draws_on_top_of_3d_content(app):
    asset = load_gltf(SHAPES)
    app.scene.create_entity("model").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
    overlay = app.scene.create_entity("ui").add_component(Overlay())
    panel = overlay.add(
        Text("X", anchor="center", offset=(0, 0), size=60, background=(255, 0, 0, 255), padding=20)
    )
    app.step()
    x, y, w, h = panel.rect
    corner = app.read_pixels()[y + 2, x + w // 2]  # inside the panel, above the glyph
    assert tuple(corner) == (255, 0, 0)  # opaque panel wins over the model behind it


def test_texture_is_redrawn_only_when_a_widget_changes(app):
    overlay = app.scene.create_entity("ui").add_component(Overlay())
    label = overlay.add(Text("a"))
    for _ in range(3):
        app.step()
    assert overlay.redraws == 1
    label.text = "b"
    app.step()
    app.step()
    assert overlay.redraws == 2
    label.visible = False
    app.step()
    assert overlay.pixels is not None  # hidden: the quad is skipped, no redraw needed
    assert overlay.redraws == 2


def test_word_wrap_and_caption_highlight(app):
    overlay = app.scene.create_entity("ui").add_component(Overlay())
    long = overlay.add(
        Text(
            "one two three four five six seven eight nine ten", max_width=120, size=20, highlight=3
        )
    )
    app.step()
    assert long.rect[2] <= 120 and long.rect[3] > 3 * 20  # wrapped onto several lines
    bright = app.read_pixels()
    long.highlight = 10
    app.step()
    assert app.read_pixels().astype(int).sum() > bright.astype(int).sum()  # more words lit


def test_progress_bar_fills_in_proportion(app):
    overlay = app.scene.create_entity("ui").add_component(Overlay())
    bar = overlay.add(ProgressBar(progress=0.25, width=200, height=12, color=(0, 255, 0, 255)))
    app.step()
    x, y, w, h = bar.rect
    row = app.read_pixels()[y + h - 6, x : x + w]
    green = (row[:, 1] > 200) & (row[:, 0] < 80)
    assert 40 <= green.sum() <= 60  # a quarter of 200 pixels


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        ("top-left", (5, 7)),
        ("bottom-right", (85, 83)),
        ("center", (50, 52)),
        ("top", (50, 7)),
        ("left", (5, 52)),
    ],
)
def test_anchors(anchor, expected):
    assert place(anchor, (5, 7), (10, 10), (100, 100)) == expected


def test_only_widget_rectangles_are_blended(app):
    """Pixels outside every widget stay exactly as the 3D pass left them."""
    asset = load_gltf(SHAPES)
    app.scene.create_entity("model").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
    app.step()
    plain = app.read_pixels()
    overlay = app.scene.create_entity("ui").add_component(Overlay())
    a = overlay.add(Text("top", anchor="top-left", size=18))
    b = overlay.add(Text("bottom", anchor="bottom-right", size=18))
    app.step()
    drawn = app.read_pixels()
    mask = np.ones(drawn.shape[:2], bool)
    for widget in (a, b):
        x, y, w, h = widget.rect
        mask[y : y + h, x : x + w] = False
    assert np.array_equal(drawn[mask], plain[mask])
    assert not np.array_equal(drawn[~mask], plain[~mask])


def test_overlapping_widgets_blend_once(app):
    """Two translucent panels overlapping: the overlap shows the composed texture exactly
    once (same as drawing the composition by hand), not a darker double blend."""
    overlay = app.scene.create_entity("ui").add_component(Overlay())
    overlay.add(Text("first panel", anchor="top-left", offset=(10, 10), size=24))
    overlay.add(Text("second", anchor="top-left", offset=(60, 20), size=24))
    app.step()
    overlay.enabled = False
    app.step()
    background = app.read_pixels().astype(float)
    overlay.enabled = True
    app.step()
    drawn = app.read_pixels().astype(float)
    rgba = overlay.pixels.astype(float)
    alpha = rgba[..., 3:] / 255
    expected = rgba[..., :3] * alpha + background * (1 - alpha)
    assert np.abs(drawn - expected).max() <= 2
