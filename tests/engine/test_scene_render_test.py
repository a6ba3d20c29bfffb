"""The headless render test scene and ``avatarkit demo`` produce real image and video files."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.timeout(90)
def test_render_test_scene_writes_png_and_mp4(egl, tmp_path, capsys):
    import av
    from PIL import Image

    from scenes import render_test

    assert render_test.main(["--out", str(tmp_path), "--seconds", "0.5", "--size", "320x180"]) == 0
    out = capsys.readouterr().out
    png, mp4 = tmp_path / "render_test.png", tmp_path / "render_test.mp4"
    assert str(png) in out and str(mp4) in out
    image = np.asarray(Image.open(png))
    assert image.shape == (180, 320, 3)
    centre, corner = image[60:120, 120:200].astype(float), image[:20, :20].astype(float)
    assert abs(centre.mean() - corner.mean()) > 10 and centre.std() > 10  # a model, shaded
    with av.open(str(mp4)) as container:
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 15


@pytest.mark.timeout(120)
def test_demo_command_runs_the_render_test(egl, tmp_path, capsys):
    from avatarkit.cli import main

    assert main(["demo", "render_test", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "render_test.png").stat().st_size > 10_000
    assert (tmp_path / "render_test.mp4").stat().st_size > 10_000
    assert main(["demo", "no_such_scene"]) == 2
    assert "invalidRequest" in capsys.readouterr().err
