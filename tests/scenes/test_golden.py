"""Golden-image render test: every bundled avatar's fixed frames match the committed
goldens under EGL, and the comparison really catches a changed face."""

from __future__ import annotations

import numpy as np
import pytest

from scenes import golden

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    return golden.render_frames()


def test_every_avatar_and_pose_has_a_golden(frames):
    expected = {f"{a}_{p}" for a in golden.bundled_avatars() for p in golden.POSES}
    assert set(frames) == expected
    assert {p.stem for p in golden.GOLDEN_DIR.glob("*.png")} >= expected


def test_frames_match_the_goldens(frames):
    for name, pixels in frames.items():
        result = golden.compare(pixels, golden.load_png(golden.GOLDEN_DIR / f"{name}.png"), name)
        assert result.ok, result


def test_a_changed_face_fails_the_comparison(frames):
    """Sensitivity: each pose differs from neutral by more than the tolerance allows."""
    for avatar_id in golden.bundled_avatars():
        neutral = frames[f"{avatar_id}_neutral"]
        for pose in ("speak", "smile"):
            assert not golden.compare(frames[f"{avatar_id}_{pose}"], neutral).ok, (avatar_id, pose)
    assert not golden.compare(neutral[:-2], neutral).ok  # another size never matches


def test_command_reports_and_exits_by_result(tmp_path, capsys):
    assert golden.main(["--no-video", "--out", str(tmp_path)]) == 0
    count = len(golden.bundled_avatars()) * len(golden.POSES)
    assert f"{count} frames match the goldens" in capsys.readouterr().out


def test_command_fails_and_writes_diffs_when_a_golden_differs(tmp_path, monkeypatch, capsys):
    goldens = tmp_path / "golden"
    goldens.mkdir()
    for path in golden.GOLDEN_DIR.glob("*.png"):
        (goldens / path.name).write_bytes(path.read_bytes())
    # Swap one golden for another pose: that frame must now fail.
    (goldens / "ava_neutral.png").write_bytes((golden.GOLDEN_DIR / "ava_speak.png").read_bytes())
    monkeypatch.setattr(golden, "GOLDEN_DIR", goldens)
    out_dir = tmp_path / "out"
    assert golden.main(["--no-video", "--out", str(out_dir)]) == 1
    assert "ava_neutral" in capsys.readouterr().out
    assert (out_dir / "ava_neutral.diff.png").exists() and (
        out_dir / "ava_neutral.actual.png"
    ).exists()
