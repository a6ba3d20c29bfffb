"""The scenes' shared runtime: options, loading progress, readable errors, windowed run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avatarkit import AvatarKitError, ErrorCode
from scenes import _runtime as runtime
from scenes import kiosk

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


def test_options_default_to_headless_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    options = runtime.parse_options([], "p", "d", headless_seconds=4)
    assert options.headless and options.seconds == 4
    monkeypatch.setenv("DISPLAY", ":99")
    options = runtime.parse_options(["--size", "640x360"], "p", "d", headless_seconds=4)
    assert not options.headless and options.seconds is None and options.size == (640, 360)
    with pytest.raises(SystemExit):
        runtime.parse_options(["--size", "641x360"], "p", "d", headless_seconds=4)


def test_fullscreen_default_and_flags(monkeypatch):
    """The kiosk covers the screen unless --windowed; other scenes open a window unless
    --fullscreen; headless runs are never full screen."""
    monkeypatch.setenv("DISPLAY", ":99")
    parse = runtime.parse_options
    assert parse([], "p", "d", 4, fullscreen=True).fullscreen
    assert not parse(["--windowed"], "p", "d", 4, fullscreen=True).fullscreen
    assert not parse(["--headless"], "p", "d", 4, fullscreen=True).fullscreen
    assert not parse([], "p", "d", 4).fullscreen
    assert parse(["--fullscreen"], "p", "d", 4).fullscreen
    with pytest.raises(SystemExit):
        parse(["--fullscreen", "--windowed"], "p", "d", 4)
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not parse([], "p", "d", 4, fullscreen=True).fullscreen  # no display: headless


def test_loading_shows_progress_on_screen_and_in_the_terminal(make_stage, capsys):
    stage = make_stage()
    seen = []
    stage.app.add_frame_listener(
        lambda app, frame: seen.append((stage.loading.visible, stage.loading.progress))
    )
    avatars = stage.load_avatars(["ava", "kai"])
    assert [a.id for a in avatars] == ["ava", "kai"]
    progress = [p for visible, p in seen if visible]
    assert progress == sorted(progress) and progress[0] == 0 and progress[-1] == 1.0
    assert any(0 < p < 1 for p in progress)
    assert not stage.loading.visible  # gone once loaded
    err = capsys.readouterr().err
    assert "loading avatar kai" in err and "100%" in err


def test_unknown_avatar_is_a_clear_error(make_stage):
    stage = make_stage()
    with pytest.raises(AvatarKitError) as info:
        stage.load_avatars(["nobody"])
    assert info.value.code == ErrorCode.AVATAR_NOT_FOUND


def test_bad_speech_assets_are_clear_errors(tmp_path):
    with pytest.raises(AvatarKitError) as info:
        runtime.load_lines(tmp_path)
    assert info.value.code == ErrorCode.INVALID_REQUEST
    (tmp_path / "lines.json").write_text('{"lines": [{"id": "x", "text": "hi", "file": "x.wav"}]}')
    (tmp_path / "x.wav").write_bytes(b"RIFF junk")
    with pytest.raises(AvatarKitError) as info:
        runtime.load_lines(tmp_path)
    assert info.value.code == ErrorCode.INVALID_AUDIO


def test_scene_errors_print_one_readable_line(tmp_path, capsys):
    code = kiosk.main(["--headless", "--avatar", "nobody", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "error [avatarNotFound]" in err and "Traceback" not in err
    assert not (tmp_path / "kiosk.mp4").exists()


def test_bundled_lines_have_audio_and_word_timings():
    lines = runtime.load_lines()
    greeting = lines["greeting"]
    assert greeting.duration > 1 and greeting.words and greeting.words[0].text == "Hello"
    assert {line.group for line in lines.values()} >= {"kiosk", "conversation", "quiz"}


# Runs the kiosk's command line, noting how each App window opened.
KIOSK_IN_A_WINDOW = """
import json, sys
from engine import App
from scenes import kiosk
opened, window = [], App.window
def noting(*args, **kwargs):
    app = window(*args, **kwargs)
    opened.append([app.backend.mode, list(app.size)])
    apps.append(app)
    return app
apps = []
App.window = noting
code = kiosk.main(sys.argv[1:])
adapts = [[app.software, app.adaptive is not None, app.quality.name] for app in apps]
print(json.dumps({"code": code, "opened": opened, "adapts": adapts}))
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed")
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("flags", "mode", "size"),
    [
        ([], "fullscreen", [800, 600]),
        (["--windowed"], "window", [640, 360]),
        (["--windowed", "--quality", "medium"], "window", [640, 360]),
    ],
)
def test_kiosk_runs_in_a_real_window(flags, mode, size):
    """Display path: a pygame/OpenGL window on a virtual X display, real-time clock; the
    kiosk covers the screen by default, ``--windowed`` keeps to ``--size``. Its quality
    ``auto`` adapts to the frame rate on a software rasteriser; a named one does not."""
    env = {
        k: v for k, v in __import__("os").environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY")
    }
    result = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 800x600x24",
            sys.executable,
            "-c",
            KIOSK_IN_A_WINDOW,
            "--size",
            "640x360",
            "--seconds",
            "1.5",
            *flags,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "video:" not in result.stdout  # windowed: nothing recorded
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: report[k] for k in ("code", "opened")} == {"code": 0, "opened": [[mode, size]]}
    [(software, adapts, quality)] = report["adapts"]
    assert adapts == (software and "--quality" not in flags)
    adapted = ("low", "medium", "geometric", "high")  # the live ladder's rungs, or a GPU's
    assert quality in (("medium",) if "--quality" in flags else adapted)


def test_avatarkit_demo_dispatches_to_the_scenes_with_their_flags(tmp_path, capsys):
    from avatarkit.cli import main as cli

    assert (
        cli(
            [
                "demo",
                "game",
                "--headless",
                "--seconds",
                "0.5",
                "--size",
                "256x144",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "game.mp4").exists() and (tmp_path / "game.png").exists()
    assert cli(["demo", "no-such-scene"]) == 2
    err = capsys.readouterr().err
    assert "unknown scene" in err and "kiosk" in err and "multi" in err and "golden" in err


def test_unwritable_out_folder_is_one_readable_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = kiosk.main(["--headless", "--seconds", "0.2", "--out", str(blocker / "sub")])
    assert code == 2
    err = capsys.readouterr().err
    assert "error [invalidRequest]" in err and "kiosk.mp4" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "flags", [["--fps", "0"], ["--fps", "-5"], ["--seconds", "0"], ["--seconds", "nan"]]
)
def test_nonsense_numbers_are_usage_errors_not_tracebacks(flags, capsys):
    with pytest.raises(SystemExit) as info:
        runtime.parse_options(flags, "prog", "test", 1.0)
    assert info.value.code == 2 and "must be above zero" in capsys.readouterr().err


def test_render_test_scene_errors_are_one_readable_line(tmp_path, capsys):
    from scenes import render_test

    assert render_test.main(["--model", str(tmp_path / "missing.glb"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error [assetNotFound]" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        render_test.main(["--size", "12x7", "--out", str(tmp_path)])
    assert "even and at least 16" in capsys.readouterr().err
