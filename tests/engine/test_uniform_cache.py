"""The renderer writes a uniform only when its bytes change and keeps what it works out
from lights, camera and node boxes (``engine.render.renderer``). Whatever is edited in
place between frames (a light's intensity or direction, the camera, the exposure, a node)
still shows in the next frame, and going back gives the first frame's pixels again.
Real EGL pixels."""

from __future__ import annotations

import numpy as np

from engine import App, ModelRenderer, load_gltf


def test_edits_between_frames_show_and_undo(egl, sphere_scene_path):
    asset = load_gltf(sphere_scene_path)
    with App.headless((160, 120), fps=30, samples=0, quality="medium") as app:
        app.scene.camera.look_at((0.0, 0.4, 6.0), (0.0, 0.4, 0.0))
        entity = app.scene.create_entity("sphere")
        entity.add_component(ModelRenderer(asset))
        lighting, camera = app.scene.lighting, app.scene.camera

        def frame() -> np.ndarray:
            app.step()
            return app.read_pixels().astype(int)

        first = frame()
        edits = [
            (lambda: setattr(lighting.key, "intensity", 0.2), "key light dimmer"),
            (lambda: setattr(lighting.fill, "direction", (0.9, -0.2, -0.3)), "fill moved"),
            (lambda: setattr(lighting, "exposure", 1.6), "exposure"),
            (lambda: setattr(lighting, "ambient", (0.3, 0.3, 0.3)), "ambient"),
            (lambda: camera.position.__setitem__(0, 1.5), "camera moved in place"),
            (lambda: entity.transform.translation.__setitem__(1, 0.3), "node moved in place"),
        ]
        before = first
        for edit, what in edits:
            edit()
            after = frame()
            assert np.abs(after - before).max() > 20, what
            before = after
        # Everything back: the first frame's pixels.
        app.scene.lighting = type(lighting)()
        camera.look_at((0.0, 0.4, 6.0), (0.0, 0.4, 0.0))
        entity.transform.translation[1] = 0.0
        assert np.abs(frame() - first).max() <= 1
