"""CLI output paths that cannot be written: one readable line and exit status 2, no traceback."""

from __future__ import annotations

import pytest

from avatarkit.cli import main
from avatarkit.paths import SPEECH_DIR

pytestmark = pytest.mark.timeout(60)

WAV = SPEECH_DIR / "quiz_wrong.wav"


@pytest.mark.parametrize("command", ["motion", "render"])
def test_output_under_a_file_is_a_clear_error(command, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / ("x.npz" if command == "motion" else "x.mp4")
    argv = (
        [command, str(WAV), "-o", str(out)]
        if command == "motion"
        else [command, "--audio", str(WAV), "-o", str(out)]
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"avatarkit {command}: error [invalidRequest]" in err and "a file is in the way" in err


def test_render_output_that_is_a_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["render", "--audio", str(WAV), "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
