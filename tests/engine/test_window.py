"""The pygame window backend, under Xvfb (skipped where xvfb-run is not installed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from engine import App, Event, ModelRenderer, RealtimeClock, load_gltf
    from engine import events as ev

    samples = None if sys.argv[2] == "auto" else int(sys.argv[2])
    app = App.window(size=(200, 150), title="engine test", fps=60, vsync=False, samples=samples)
    app.step()
    empty = app.read_pixels()
    asset = load_gltf(sys.argv[1])
    model = app.scene.create_entity("m").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
    keys = []
    app.add_event_handler(lambda e: keys.append(e.key) if e.type == ev.KEY_DOWN else None)
    app.post_event(Event(ev.KEY_DOWN, key="space"))
    frames = app.run(frames=5)
    pixels = app.read_pixels()
    # What the window shows: read the default framebuffer (the back buffer after swap is
    # undefined, so render and blit once more without flipping).
    app._render()
    app.ctx.copy_framebuffer(app.backend.screen, app.target.resolved)
    screen = np.frombuffer(app.backend.screen.read(components=3), np.uint8)
    screen = screen.reshape(150, 200, 3)[::-1]
    app.post_event(Event(ev.QUIT))
    after_quit = app.run(frames=100)
    print(json.dumps({
        "renderer": app.ctx.info["GL_RENDERER"],
        "clock": type(app.clock).__name__,
        "samples": app.target.samples,
        "frames": frames,
        "after_quit": after_quit,
        "keys": keys,
        "changed": float((np.abs(pixels.astype(int) - empty).sum(axis=2) > 24).mean()),
        "screen_matches": float(np.abs(screen.astype(int) - pixels).mean()),
    }))
    app.close()
    """
)


@pytest.mark.timeout(90)
@pytest.mark.skipif(
    shutil.which("xvfb-run") is None, reason="xvfb-run not installed (Debian package xvfb)"
)
@pytest.mark.parametrize("samples", ["auto", "4"])
def test_window_backend_under_xvfb(sphere_scene_path, samples):
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    env["SDL_VIDEODRIVER"] = "x11"
    proc = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 640x480x24",
            sys.executable,
            "-c",
            SCRIPT,
            str(sphere_scene_path),
            samples,
        ],
        capture_output=True,
        text=True,
        timeout=80,
        env=env,
    )
    if proc.returncode != 0 and "cannot open an OpenGL window" in proc.stderr:
        pytest.skip(f"no GLX under Xvfb here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["clock"] == "RealtimeClock"
    if samples == "4":
        assert result["samples"] == 4
    elif "llvmpipe" in result["renderer"]:
        assert result["samples"] == 0  # automatic: no MSAA on a software rasteriser
    assert result["frames"] == 5
    assert result["after_quit"] == 1
    assert result["keys"] == ["space"]
    assert result["changed"] > 0.1  # the model is drawn in the window's frames
    assert result["screen_matches"] < 1.0  # the window shows exactly the rendered frame
