"""The ``avatarkit`` entry point: subcommands register, errors are one coded line."""

from __future__ import annotations

import subprocess
import sys

from avatarkit.cli import build_parser


def test_every_subcommand_is_registered():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(choices) == {"serve", "keys", "avatars", "inspect", "motion", "render", "demo"}


def test_a_reader_that_leaves_early_is_not_a_traceback():
    """`avatarkit avatars --info ava | head -1`: the closed pipe is no error report."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "avatarkit", "avatars", "--info", "ava"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert proc.returncode == 141


def test_errors_are_one_line_with_a_stable_code(tmp_path):
    bad = tmp_path / "not.wav"
    bad.write_bytes(b"hello")
    result = subprocess.run(
        [sys.executable, "-m", "avatarkit", "motion", str(bad), "-o", str(tmp_path / "o.npz")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith("avatarkit motion: error [invalidAudio]")
    )
    assert "Traceback" not in result.stderr
