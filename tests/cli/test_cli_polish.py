"""What a new user meets at the command line: help, bad paths, a busy port, typos,
progress. Every failure is one coded line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from avatarkit.cli import build_parser, main
from avatarkit.cli.common import output_with_suffix
from avatarkit.cli.demo import available_scenes
from avatarkit.cli.progress import Progress
from avatarkit.errors import AvatarKitError
from avatarkit.paths import SPEECH_DIR

pytestmark = pytest.mark.timeout(60)
WAV = str(SPEECH_DIR / "quiz_wrong.wav")


def _one_coded_line(err: str, command: str, code: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"avatarkit {command}: error [{code}]: "), err


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    return build_parser()._subparsers._group_actions[0].choices


@pytest.mark.parametrize("command", ["serve", "avatars", "inspect", "motion", "render", "demo"])
def test_every_command_and_flag_is_explained(command):
    parser = _subparsers()[command]
    assert parser.description and "examples:" in (parser.epilog or ""), command
    for action in parser._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
    text = parser.format_help()
    assert f"avatarkit {command}" in text


def test_top_level_help_points_at_the_commands():
    text = build_parser().format_help()
    assert "examples" in text and "avatarkit COMMAND --help" in text
    for command in ("serve", "avatars", "inspect", "motion", "render", "demo"):
        assert f"avatarkit {command}" in text


def test_demo_help_lists_every_scene():
    text = _subparsers()["demo"].format_help()
    assert "render_test" in available_scenes()
    for scene in available_scenes():
        assert f"\n  {scene} " in text, scene


@pytest.mark.parametrize(
    ("argv", "command", "code", "hint"),
    [
        (
            ["render", "--avatar", "ava2", "--audio", WAV, "-o", "{tmp}/o.mp4"],
            "render",
            "avatarNotFound",
            "did you mean 'ava'?",
        ),
        (
            ["avatars", "--info", "bob"],
            "avatars",
            "avatarNotFound",
            "`avatarkit avatars` lists them",
        ),
        (["avatars", "--info", "mie"], "avatars", "avatarNotFound", "did you mean 'mei'?"),
        (["demo", "kiosko"], "demo", "invalidRequest", "did you mean 'kiosk'?"),
        (
            ["avatars", "--url", "127.0.0.1:8765/v1/avatars"],
            "avatars",
            "invalidRequest",
            "neither an http(s) URL",
        ),
    ],
)
def test_unknown_names_suggest_the_closest(tmp_path, capsys, argv, command, code, hint):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    _one_coded_line(err, command, code)
    assert hint in err


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("/proc/out.mp4", "cannot write /proc/out.mp4"),
        ("{tmp}/clip.avi", "writes .mp4 files"),
    ],
)
def test_unwritable_or_misnamed_render_output(tmp_path, capsys, output, words):
    assert main(["render", "--audio", WAV, "-o", output.replace("{tmp}", str(tmp_path))]) == 2
    err = capsys.readouterr().err
    _one_coded_line(err, "render", "invalidRequest")
    assert words in err


def test_motion_output_in_proc_is_one_line(capsys):
    assert main(["motion", WAV, "-o", "/proc/out.npz"]) == 2
    _one_coded_line(capsys.readouterr().err, "motion", "invalidRequest")


def test_an_output_without_extension_gets_one(tmp_path):
    assert output_with_suffix(tmp_path / "out", ".mp4") == tmp_path / "out.mp4"
    assert output_with_suffix(tmp_path / "a.MP4", ".mp4") == tmp_path / "a.MP4"
    with pytest.raises(AvatarKitError, match="is a directory"):
        output_with_suffix(tmp_path, ".mp4")


def test_a_busy_port_is_one_coded_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "avatarkit", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    _one_coded_line(result.stderr, "serve", "addressInUse")
    assert "--port" in result.stderr and result.stdout == ""  # nothing claims it is serving


def test_avatars_lists_ids_as_the_readme_says(capsys):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "avatarkit avatars                  # bundled avatar ids, one per line" in readme
    assert main(["avatars"]) == 0
    ids = capsys.readouterr().out.split("\n")[:-1]
    assert ids and all(i and "\t" not in i and " " not in i for i in ids)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_one_line_otherwise():
    log = io.StringIO()
    bar = Progress("ava", log)
    for k in range(1, 101):
        bar.update(k / 100)
    bar.finish("completed")
    assert log.getvalue() == "ava: completed (100%)\n"

    tty = _Tty()
    bar = Progress("ava", tty)
    for k in range(1, 11):
        bar.update(k / 10)
    bar.finish("completed")
    assert "100%|" in tty.getvalue() and "\r" in tty.getvalue()  # tqdm redrew one line
    assert tty.getvalue().endswith("ava: completed (100%)\n")


def test_a_failed_download_prints_no_progress_line():
    log = io.StringIO()
    bar = Progress("ava", log)
    bar.update(0.3)
    bar.finish("failed")
    assert log.getvalue() == ""  # the coded error line is the only report


def test_an_engine_error_is_one_coded_line_too(monkeypatch, capsys):
    """e.g. no EGL on the machine: `renderNotSupported`, not a traceback."""
    from engine import App, EngineError

    def no_gl(*args, **kwargs):
        raise EngineError("renderNotSupported", "no EGL display")

    monkeypatch.setattr(App, "headless", no_gl)
    assert main(["render", "--audio", WAV, "-o", "/tmp/never-written.mp4"]) == 2
    _one_coded_line(capsys.readouterr().err, "render", "renderNotSupported")


def test_render_reports_progress_per_frame(tmp_path):
    from avatarkit.cli.render import render_video

    seen: list[float] = []
    result = render_video("ava", Path(WAV), tmp_path / "p.mp4", (64, 48), 25, progress=seen.append)
    assert len(seen) == result.frames and seen[-1] == 1.0 and seen == sorted(seen)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["demo", "--seconds", "1"], ["demo", "kiosk", "--seconds", "1"]),
        (
            ["-v", "demo", "--out", "d", "--headless"],
            ["-v", "demo", "--out", "d", "kiosk", "--headless"],
        ),
        (["demo", "game", "--windowed"], ["demo", "game", "--windowed"]),
        (["demo", "--help"], ["demo", "--help"]),
        (["motion", "demo", "-o", "x.npz"], ["motion", "demo", "-o", "x.npz"]),
    ],
)
def test_demo_flags_without_a_scene_go_to_the_kiosk(argv, expected):
    """`bash scripts/demo.sh --seconds 5` passes scene flags with no scene name."""
    from avatarkit.cli.demo import with_default_scene

    assert with_default_scene(argv) == expected
    if "kiosk" in expected:
        args = build_parser().parse_args(expected)
        assert args.scene == "kiosk" and args.scene_args[-1] in ("1", "--headless")


def _drain(fd: int, quiet_s: float = 0.3) -> bytes:
    """Everything written to a pty so far: Linux hands a pty's output to its reader from a
    work queue, so one read right after the write can return only the start of it."""
    import os
    import select

    out = b""
    while select.select([fd], [], [], quiet_s)[0]:
        out += os.read(fd, 65536)
    return out


def test_the_bar_shows_on_a_terminal_that_reports_no_size(monkeypatch):
    """A fresh pty (e.g. `script`, some CI runners) reports 0x0; tqdm then draws nothing."""
    import os

    master, slave = os.openpty()  # a new pty has no size set: 0 columns, 0 rows
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    try:
        with os.fdopen(slave, "w", closefd=False) as stream:
            monkeypatch.setattr(sys, "stderr", stream)  # tqdm sizes itself only on stderr/stdout
            bar = Progress("ava")
            bar.update(0.5)
            bar.finish("completed")
            stream.flush()
        shown = _drain(master).decode(errors="replace")
    finally:
        os.close(slave)
        os.close(master)
    assert " 50%|" in shown, repr(shown)
