"""A new user's first hour, scripted: the README's snippet against `avatarkit serve`,
both examples, every CLI command with good and bad input, and the no-display cases.

Each step runs as the user would type it (a subprocess, no display, no sound card), and
asserts the exit status, the one coded line of a failure, and that no output anywhere
holds a ``Traceback``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
import cli_wavs  # noqa: E402
import docs_blocks  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHORT = str(REPO / "assets" / "speech" / "quiz_timeout.wav")  # 1.9 s: short keeps CI short
pytestmark = pytest.mark.timeout(120)


def user_env(tmp: Path) -> dict[str, str]:
    """A fresh user's shell: no display, no sound card, an empty avatar cache."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER", "AVATARKIT_ASSET_URL")
    }
    env.update(
        AVATARKIT_CACHE_DIR=str(tmp / "cache"), SDL_AUDIODRIVER="dummy", PYTHONPATH=str(REPO)
    )
    return env


def run(tmp: Path, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess:
    cmd = (
        [sys.executable, *argv]
        if argv[0].endswith(".py")
        else [sys.executable, "-m", "avatarkit", *argv]
    )
    result = subprocess.run(
        cmd, cwd=tmp, env=user_env(tmp), capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in result.stdout + result.stderr, (
        f"{argv}:\n{result.stdout}{result.stderr}"
    )
    return result


def refused(result: subprocess.CompletedProcess, prefix: str, code: str) -> str:
    """Exit 2 and exactly one line on stderr: ``<prefix>: error [<code>]: ...``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"{prefix}: error [{code}]: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("newuser")


@pytest.fixture(scope="module")
def serve(tmp: Path) -> Iterator[dict[str, str]]:
    """`avatarkit serve --port 0` as the README says to run it, with the values it prints."""
    log = (tmp / "serve.log").open("w+")  # a file, not a pipe: its log must never block the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "avatarkit", "serve", "--port", "0"],
        cwd=tmp,
        env=user_env(tmp),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    printed: dict[str, str] = {}
    for line in proc.stdout:
        if match := re.match(r"\s+(\w+)\s+= (\S+)", line):
            printed[match.group(1)] = match.group(2)
        if line.startswith("Ctrl-C"):
            break
    deadline = time.monotonic() + 30
    while True:  # printed before it listens: wait for the health route
        try:
            urllib.request.urlopen(
                printed["assets"].replace("/v1/avatars", "/v1/health"), timeout=1
            ).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, (
                tmp / "serve.log"
            ).read_text()
            time.sleep(0.1)
    yield printed
    proc.terminate()
    proc.communicate(timeout=30)
    log.close()
    err = (tmp / "serve.log").read_text()
    assert "Traceback" not in err, err


# -- the README ----------------------------------------------------------------------------


def test_readme_snippet_verbatim_against_avatarkit_serve(tmp, serve):
    """The README's block unchanged; its placeholders are what `serve` printed and the token
    docs/sdk.md's backend call returns. No display here: the window is a headless app."""
    readme = next(b for b in docs_blocks.extract(REPO / "README.md") if b.runs)
    backend = next(
        b for b in docs_blocks.extract(REPO / "docs" / "sdk.md") if "new_session_token" in b.code
    )
    script = tmp / "readme_snippet.py"
    script.write_text(
        "import engine\n"
        # a small off-screen app for the window; 10 fps keeps the frames few
        "engine.App.window = staticmethod("
        "lambda **kw: engine.App.headless(size=(320, 240), fps=10))\n"
        f"api_key, app_id, server_ws_url = {serve['api_key']!r}, {serve['app_id']!r}, "
        f"{serve['ingress_endpoint_url']!r}\n"
        "from avatarkit.motion.wav import read_wav\npcm_s16le_16k = "
        f"read_wav({SHORT!r}).pcm.tobytes()\n"
        + backend.code.replace(
            "http://127.0.0.1:8765", serve["console_endpoint_url"].removesuffix("/v1/console")
        )
        + "token_from_your_backend = token\n"
        + readme.code
        + "print('state:', view.controller.connection_state, "
        "'| played', view.controller._source.consumed)\n"
    )
    result = run(tmp, str(script))
    assert result.returncode == 0, result.stderr
    assert "ava: completed 100%" in result.stdout  # on_progress=print: readable lines
    played = int(result.stdout.rsplit("played", 1)[1])
    assert played > 0


# -- examples/ -----------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["quickstart", "backend_relay"])
def test_example_without_a_display_says_so(tmp, example):
    result = run(tmp, str(REPO / "examples" / f"{example}.py"), SHORT)
    line = refused(result, example, "noDisplay")
    assert "--headless" in line and result.stdout == ""


def test_quickstart_headless_speaks_and_says_so(tmp):
    # (backend_relay's headless run is tests/sdk/test_backend_relay.py, in-process)
    half = cli_wavs.write(tmp / "half.wav", signal=0.3 * np.sin(np.arange(8000) / 7))  # 0.5 s
    result = run(tmp, str(REPO / "examples" / "quickstart.py"), str(half), "--headless")
    assert result.returncode == 0, result.stderr
    assert re.search(r"ava spoke 0\.5 s .*\d+ frames rendered", result.stdout), result.stdout


# -- the CLI: good input -------------------------------------------------------------------


def test_help(tmp):
    # every command's and flag's help text: tests/cli/test_cli_polish.py
    result = run(tmp, "demo", "--help")
    assert result.returncode == 0 and "usage: avatarkit demo" in result.stdout
    assert "render_test" in result.stdout  # demo --help lists the scenes


def test_avatars_list_info_load(tmp, serve):
    listed = run(tmp, "avatars")
    assert listed.returncode == 0 and "ava" in listed.stdout.split()
    assert "\t" not in listed.stdout  # ids, one per line, as the README says
    info = run(tmp, "avatars", "--info", "ava")
    assert info.returncode == 0 and "ARKit channels driven" in info.stdout
    load = run(tmp, "avatars", "--url", serve["assets"], "--load", "mei")
    assert load.returncode == 0, load.stderr
    assert load.stderr.splitlines() == ["mei: completed (100%)"]  # not a terminal: one line
    assert Path(load.stdout.strip(), "manifest.json").is_file()


def test_motion_and_render_take_any_pcm_wav(tmp):
    wav24 = cli_wavs.write(
        tmp / "stereo24.wav", "s24", channels=2, signal=0.4 * np.sin(np.arange(16000) / 9)
    )
    motion = run(tmp, "motion", str(cli_wavs.write(tmp / "float.wav", "f32")), "-o", "out/float")
    assert motion.returncode == 0, motion.stderr
    assert (tmp / "out" / "float.npz").is_file()
    render = run(tmp, "render", "--audio", str(wav24), "-o", "out/speech", "--size", "160x96")
    assert render.returncode == 0, render.stderr
    assert (tmp / "out" / "speech.mp4").stat().st_size > 1000  # ".mp4" added to a bare name


def test_demo_windowed_without_a_display_runs_headless(tmp):
    result = run(
        tmp, "demo", "game", "--windowed", "--seconds", "0.5", "--size", "320x180", "--out", "demo"
    )
    assert result.returncode == 0, result.stderr
    notice = [line for line in result.stderr.splitlines() if line.startswith("avatarkit demo:")]
    assert len(notice) == 1 and "no display" in notice[0] and "headless" in notice[0]
    assert (tmp / "demo" / "game.mp4").is_file()


# -- the CLI: bad input --------------------------------------------------------------------
# In-process (``main(argv)`` is what the entry point exits with): the same code path and
# stderr, without a second of interpreter start-up per case. One case runs as a process.

BAD = [
    (["render", "--audio", ".", "-o", "o.mp4"], "render", "invalidAudio"),
    (["render", "--audio", SHORT, "-o", "/proc/out.mp4"], "render", "invalidRequest"),
    (["render", "--audio", SHORT, "-o", "o.avi"], "render", "invalidRequest"),
    (["render", "--avatar", "ava2", "--audio", SHORT, "-o", "o.mp4"], "render", "avatarNotFound"),
    (["motion", "missing.wav", "-o", "o.npz"], "motion", "invalidAudio"),
    (["motion", "truncated.wav", "-o", "o.npz"], "motion", "invalidAudio"),
    (["motion", SHORT, "-o", "/proc/o.npz"], "motion", "invalidRequest"),
    (["avatars", "--info", "bob"], "avatars", "avatarNotFound"),
    (
        [
            "avatars",
            "--load",
            "noor",
            "--cache-dir",
            "empty",
            "--url",
            "http://127.0.0.1:9/v1/avatars",
        ],
        "avatars",
        "failedToFetchAvatarMetadata",
    ),
    (["demo", "kiosko"], "demo", "invalidRequest"),
]


@pytest.mark.parametrize(("argv", "command", "code"), BAD, ids=[" ".join(b[0][:3]) for b in BAD])
def test_bad_input_is_one_coded_line(tmp, monkeypatch, capsys, argv, command, code):
    from avatarkit.cli import main

    monkeypatch.chdir(tmp)
    cli_wavs.write(tmp / "truncated.wav", data_size=99999)
    status = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    refused(subprocess.CompletedProcess(argv, status, out, err), f"avatarkit {command}", code)
    assert not (tmp / "o.mp4").exists() and not (tmp / "o.npz").exists()


def test_a_truncated_wav_is_refused_by_the_real_entry_point(tmp):
    cli_wavs.write(tmp / "truncated.wav", data_size=99999)
    line = refused(
        run(tmp, "render", "--audio", "truncated.wav", "-o", "t.mp4"),
        "avatarkit render",
        "invalidAudio",
    )
    assert "truncated" in line


def test_a_second_serve_on_the_same_port(tmp, serve):
    port = serve["assets"].split(":")[2].split("/")[0]
    line = refused(run(tmp, "serve", "--port", port), "avatarkit serve", "addressInUse")
    assert "--port" in line


def test_usage_errors_are_argparse_lines_not_tracebacks(tmp):
    result = run(tmp, "render", "--audio", SHORT, "-o", "x.mp4", "--fps", "29")
    assert result.returncode == 2 and "invalid choice" in result.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_the_docs_curl_call_gives_a_token(tmp, serve):
    """docs/sdk.md's curl command as printed there (its address: this serve's)."""
    block = next(
        b
        for b in docs_blocks.extract(REPO / "docs" / "sdk.md")
        if b.lang == "bash" and "curl" in b.code
    )
    host = serve["console_endpoint_url"].removesuffix("/v1/console").removeprefix("http://")
    env = {**user_env(tmp), "AVATARKIT_API_KEY": serve["api_key"]}
    result = subprocess.run(
        ["bash", "-c", block.code.replace("127.0.0.1:8765", host)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["sessionToken"].count(".") == 2 and answer["expireAt"] > time.time()  # a JWT
