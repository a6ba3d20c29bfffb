"""A live App prepares an asset's upload on the ``asset-prep`` thread
(``engine.render.upload_data``): the frame loop goes on while it is made, the model is
drawn from a later frame exactly as an offline App draws it on its first, a loop that
spins still lands it, and an error made there is raised on the render thread with its
code."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import engine.render.host_morph as host_morph
import engine.render.renderer as renderer_module
from avatarkit.paths import AVATARS_DIR
from engine import ModelRenderer, load_gltf
from engine.clock import RealtimeClock
from engine.errors import RENDER_NOT_SUPPORTED, EngineError
from tests.conftest import headless_app
from tests.engine.conftest import write_morph_cube

SIZE = (96, 72)


def _live():
    return headless_app(size=SIZE, samples=0, clock=RealtimeClock(30.0))


def _add(app, asset) -> ModelRenderer:
    model = app.scene.create_entity("model").add_component(ModelRenderer(asset))
    lo, hi = model.bounds()
    app.scene.camera.frame_bounds(lo, hi, aspect=app.aspect, margin=1.2)
    return model


@pytest.fixture
def made_on(monkeypatch) -> list[str]:
    """The thread each upload's host side was made on."""
    threads: list[str] = []
    real = renderer_module.upload_data

    def spy(asset, options):
        threads.append(threading.current_thread().name)
        return real(asset, options)

    monkeypatch.setattr(renderer_module, "upload_data", spy)
    return threads


def test_a_live_upload_is_made_aside_and_drawn_as_offline(egl, tmp_path, made_on):
    cube = write_morph_cube(tmp_path / "cube.glb")
    with _live() as app:
        model = _add(app, load_gltf(cube))
        app.step()
        assert not model.uploaded  # the frame went on without it
        for _ in range(200):
            if model.uploaded:
                break
            app.step()
        assert model.uploaded, "the upload never landed"
        app.step()  # a frame that draws it
        live = app.read_pixels()
    assert made_on and all(name.startswith("asset-prep") for name in made_on), made_on
    made_on.clear()
    with headless_app(size=SIZE, samples=0) as app:  # offline: made in place, drawn at once
        model = _add(app, load_gltf(cube))
        app.step()
        assert model.uploaded
        offline = app.read_pixels()
    assert made_on == [threading.main_thread().name]
    assert (offline != offline[0, 0]).any(axis=2).sum() > 100  # the cube is in the picture
    assert np.array_equal(live, offline)


def test_a_loop_that_spins_still_lands_the_upload(egl):
    """Frames with nothing to draw, back to back, hold the GIL all but its switch
    interval; each frame gives a pending upload a moment with it released. Without that
    a bundled avatar took over 10 s (17,000 frames) to land, and the sound starved."""
    with _live() as app:
        model = _add(app, load_gltf(AVATARS_DIR / "ava" / "ava.glb"))
        frames = 0
        while not model.uploaded and frames < 2000:
            app.step()
            frames += 1
    assert frames < 300, f"landed after {frames} frames"


def test_an_error_made_aside_is_raised_on_the_render_thread(egl, tmp_path, monkeypatch):
    monkeypatch.setattr(host_morph, "MAX_TARGET_BYTES", 16)  # any morph data too large
    with _live() as app:
        app.renderer.host_morphs = True  # (a software rasteriser's default)
        _add(app, load_gltf(write_morph_cube(tmp_path / "cube.glb")))
        with pytest.raises(EngineError) as raised:
            for _ in range(200):
                app.step()
    assert raised.value.code == RENDER_NOT_SUPPORTED
    assert "morph data too large" in raised.value.message


def test_a_model_gone_before_its_upload_landed_leaves_nothing_behind(egl, tmp_path):
    with _live() as app:
        model = _add(app, load_gltf(write_morph_cube(tmp_path / "cube.glb")))
        app.step()
        assert not model.uploaded and app.renderer._preparing
        model.entity.destroy()
        assert not app.renderer._preparing  # its prepared data is not kept for nobody
        for _ in range(5):
            app.step()
        assert not app.renderer._preparing
