"""Full-screen windows under Xvfb: the desktop's size, a real FULLSCREEN window or, where
the platform refuses one, a borderless window over the desktop (skipped without xvfb-run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

SCREEN = (640, 480)
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import pygame
    from engine import App, ModelRenderer, load_gltf

    if sys.argv[2] == "refuse-fullscreen":  # a platform without full-screen GL windows
        set_mode = pygame.display.set_mode
        def refusing(size, flags=0, *args, **kwargs):
            if flags & pygame.FULLSCREEN:
                raise pygame.error("no full-screen mode here")
            return set_mode(size, flags, *args, **kwargs)
        pygame.display.set_mode = refusing
    app = App.window(
        size=(200, 150), title="fullscreen test", vsync=False, samples=0, fullscreen=True
    )
    flags = pygame.display.get_surface().get_flags()
    asset = load_gltf(sys.argv[1])
    app.scene.create_entity("m").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
    app.run(frames=3)
    pixels = app.read_pixels()
    app._render()  # what the screen shows (see test_window.py)
    app.ctx.copy_framebuffer(app.backend.screen, app.target.resolved)
    w, h = app.size
    screen = np.frombuffer(app.backend.screen.read(components=3), np.uint8).reshape(h, w, 3)[::-1]
    print(json.dumps({
        "mode": app.backend.mode,
        "size": list(app.size),
        "fullscreen_flag": bool(flags & pygame.FULLSCREEN),
        "noframe_flag": bool(flags & pygame.NOFRAME),
        "drawn": float((pixels.astype(int).sum(axis=2) != pixels[0, 0].astype(int).sum()).mean()),
        "screen_matches": float(np.abs(screen.astype(int) - pixels).mean()),
    }))
    app.close()
    """
)


def _run(sphere_scene_path, variant: str) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "SDL_VIDEO_WINDOW_POS")
    }
    env["SDL_VIDEODRIVER"] = "x11"
    proc = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24",
            sys.executable,
            "-c",
            SCRIPT,
            str(sphere_scene_path),
            variant,
        ],
        capture_output=True,
        text=True,
        timeout=80,
        env=env,
    )
    if proc.returncode != 0 and "cannot open an OpenGL window" in proc.stderr:
        pytest.skip(f"no GLX under Xvfb here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        shutil.which("xvfb-run") is None, reason="xvfb-run not installed (Debian package xvfb)"
    ),
]


def test_fullscreen_window_covers_the_desktop(sphere_scene_path):
    result = _run(sphere_scene_path, "plain")
    assert result["mode"] == "fullscreen" and result["fullscreen_flag"]
    assert result["size"] == list(SCREEN)  # the desktop's size, not the (200, 150) asked for
    assert result["drawn"] > 0.05  # the model is rendered at that size
    assert result["screen_matches"] < 1.0  # and shown exactly


def test_borderless_desktop_window_where_fullscreen_is_refused(sphere_scene_path):
    result = _run(sphere_scene_path, "refuse-fullscreen")
    assert (
        result["mode"] == "borderless" and result["noframe_flag"] and not result["fullscreen_flag"]
    )
    assert result["size"] == list(SCREEN)
    assert result["drawn"] > 0.05
    assert result["screen_matches"] < 1.0
