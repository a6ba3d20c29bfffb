"""Where the runtime data is found, and the version's single source (issue 20)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

import avatarkit
from avatarkit import paths
from avatarkit.cli import main

pytestmark = pytest.mark.timeout(60)


@pytest.mark.skipif(
    bool(os.environ.get("AVATARKIT_ASSETS")), reason="AVATARKIT_ASSETS overrides the data"
)
def test_the_checkout_data_is_found_through_the_package():
    """The editable install maps avatarkit.data onto assets/: one lookup for both installs."""
    assert Path(str(files("avatarkit.data"))) == paths.REPO_ROOT / "assets"
    assert paths.ASSETS_DIR == paths.REPO_ROOT / "assets"
    assert (paths.MODELS_DIR / "motion_mlp.npz").is_file()
    assert (paths.AVATARS_DIR / "ava" / "manifest.json").is_file()
    assert (paths.SPEECH_DIR / "lines.json").is_file()


def test_avatarkit_assets_points_elsewhere(tmp_path):
    env = {**os.environ, "AVATARKIT_ASSETS": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import avatarkit.paths as p; print(p.AVATARS_DIR, p.MODELS_DIR)"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.stdout.split() == [str(tmp_path / "avatars"), str(tmp_path / "models")]


def test_version_has_one_source(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"avatarkit {avatarkit.__version__}"
    assert importlib.metadata.version("avatarkit") == avatarkit.__version__  # pyproject reads it


def test_golden_scene_outside_a_checkout_says_so(monkeypatch, tmp_path, capsys):
    """A wheel has no golden images (test data): one coded line, not 'every frame differs'."""
    from scenes import golden

    monkeypatch.setattr(golden, "GOLDEN_DIR", tmp_path / "missing")
    assert golden.main(["--out", str(tmp_path / "out"), "--no-video"]) == 2
    assert "error [invalidRequest]: no golden images at" in capsys.readouterr().err


def test_listing_avatars_without_the_data_is_an_error_not_an_empty_list(tmp_path):
    env = {**os.environ, "AVATARKIT_ASSETS": str(tmp_path / "nowhere")}
    result = subprocess.run(
        [sys.executable, "-m", "avatarkit", "avatars"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "error [avatarAssetsMissing]: no avatars folder at" in result.stderr
