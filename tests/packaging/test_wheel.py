"""The package as a user gets it: an sdist and a wheel built from the checkout's files, the
wheel installed into a fresh venv outside the checkout and run from an empty folder.

The fresh venv gets its dependencies from this test's environment through a ``.pth`` line
(no network, no second download of numpy and friends); the package itself, its data and
its entry point come only from the wheel, which the first test asserts.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import pytest

import avatarkit
from avatarkit.cli import main
from avatarkit.package import list_packages
from avatarkit.paths import AVATARS_DIR, REPO_ROOT

pytestmark = pytest.mark.timeout(180)

SHORT_WAV = "quiz_timeout.wav"  # 1.9 s: the shortest bundled line


def checkout_files() -> list[str]:
    """What a clean checkout of the working tree holds: tracked and new files, not ignored ones."""
    if not (REPO_ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    return sorted(name for name in listed if name and (REPO_ROOT / name).is_file())


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """``{"sdist": ..., "wheel": ...}`` from ``python -m build`` on a copy of the checkout
    (nothing untracked leaks in, nothing is written into the checkout). Without build
    isolation: the test extra provides setuptools, so no network is needed."""
    src = tmp_path_factory.mktemp("src")
    for name in checkout_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv(dists, tmp_path_factory) -> Path:
    """A fresh venv (outside the checkout) with only the wheel installed into it."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60
    )
    python = root / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-index", str(dists["wheel"])],
        check=True, timeout=120,
    )  # fmt: skip
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # Dependencies only: a path line in a .pth is appended after the venv's own
    # site-packages, and the .pth files inside that folder (the editable install's
    # finder among them) are not run, so the checkout stays invisible.
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(purelib) / "_avatarkit_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    return root


@dataclass
class Runner:
    """Commands from the fresh venv, in an empty folder, with no hint of the checkout in
    their environment."""

    venv: Path
    cwd: Path
    env: dict[str, str]

    def __call__(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        exe = str(self.venv / "bin" / argv[0])
        return subprocess.run(
            [exe, *argv[1:]],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def run(venv: Path, tmp_path: Path) -> Runner:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AVATARKIT_", "PYTHON")) and k not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    env |= {
        "AVATARKIT_CACHE_DIR": str(tmp_path / "cache"),
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
    }
    return Runner(venv, cwd, env)


def installed_data(run: Runner) -> tuple[Path, Path]:
    """(the installed package's folder, its data folder) as the fresh venv sees them."""
    result = run(
        "python",
        "-c",
        "import avatarkit, avatarkit.paths as p; print(avatarkit.__file__); print(p.ASSETS_DIR)",
    )
    assert result.returncode == 0, result.stderr
    package, data = (Path(line) for line in result.stdout.split())
    return package.parent, data


def test_sdist_and_wheel_are_complete_and_index_ready(dists):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(dists["sdist"]),
            str(dists["wheel"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"-{avatarkit.__version__}-" in dists["wheel"].name  # the version has one source
    tracked = checkout_files()
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
    # The data is exactly the checkout's assets less the scripts that regenerate them.
    data = {n.removeprefix("avatarkit/data/") for n in names if n.startswith("avatarkit/data/")}
    expected = {
        n.removeprefix("assets/")
        for n in tracked
        if n.startswith("assets/") and not n.endswith(".py")
    }
    assert data == expected | {"__init__.py"}
    for manifest in list_packages(AVATARS_DIR):  # every file each bundled avatar lists
        assert {f"avatars/{manifest.id}/{f.name}" for f in manifest.files} <= data
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "tools/", "examples/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    with tarfile.open(dists["sdist"]) as sdist:
        top = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "setup.py", "README.md", "assets/models/motion_mlp.npz"} <= top


def test_the_installed_copy_uses_its_own_package_and_data(run, venv):
    package, data = installed_data(run)
    assert package.is_relative_to(venv) and data == package / "data"
    assert not data.is_relative_to(REPO_ROOT)
    result = run("avatarkit", "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"avatarkit {avatarkit.__version__}"


def test_avatars_lists_the_bundled_avatars(run):
    result = run("avatarkit", "avatars")
    assert result.returncode == 0, result.stderr
    ids = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert ids == [m.id for m in list_packages(AVATARS_DIR)] and len(ids) >= 4


def test_motion_matches_the_in_repo_model(run, tmp_path):
    _, data = installed_data(run)
    wav = data / "speech" / SHORT_WAV  # the installed copy of the speech, too
    result = run("avatarkit", "motion", str(wav), "-o", "out.npz")
    assert result.returncode == 0, result.stderr
    assert (
        main(
            [
                "motion",
                str(REPO_ROOT / "assets" / "speech" / SHORT_WAV),
                "-o",
                str(tmp_path / "ref.npz"),
            ]
        )
        == 0
    )
    got, ref = np.load(run.cwd / "out.npz"), np.load(tmp_path / "ref.npz")
    for key in ("weights", "head", "gaze"):
        np.testing.assert_allclose(got[key], ref[key], atol=1e-6)
    assert (got["weights"].max(axis=0) > 0.05).sum() > 10  # the trained model, not the envelope


def test_render_writes_a_playable_mp4(run):
    _, data = installed_data(run)
    result = run(
        "avatarkit",
        "render",
        "--audio",
        str(data / "speech" / SHORT_WAV),
        "-o",
        "out.mp4",
        "--size",
        "320x180",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    import av

    with av.open(str(run.cwd / "out.mp4")) as container:
        kinds = {s.type for s in container.streams}
        frames = sum(1 for _ in container.decode(video=0))
    assert kinds == {"video", "audio"}
    assert frames == 57  # ceil(1.898 s * 30 fps)


def test_serve_answers_the_console_api_and_streams_the_trained_model(run, venv):
    process = subprocess.Popen(
        [
            str(venv / "bin" / "avatarkit"),
            "serve",
            "--port",
            "0",
            "--api-key",
            "ak_wheel",
            "--app-id",
            "app_wheel",
        ],
        cwd=run.cwd,
        env=run.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = ""
        for line in process.stdout:
            banner += line
            if line.startswith("Ctrl-C"):
                break
        urls = dict(re.findall(r"(\w+_endpoint_url) = (\S+)", banner))
        assert len(urls) == 2, banner
        _, data = installed_data(run)
        with wave.open(str(data / "speech" / SHORT_WAV)) as wav:
            pcm = wav.readframes(wav.getnframes())
        token, frames = asyncio.run(asyncio.wait_for(console_then_utterance(urls, pcm), 30))
        assert token
        assert len(frames) == 57  # ceil(1.898 s * 30 fps)
        weights = np.stack([f.weights for f in frames])
        assert (weights.max(axis=0) > 0.05).sum() > 10  # the trained model, not the envelope
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        finally:
            if process.poll() is None:
                process.kill()


async def console_then_utterance(urls: dict[str, str], pcm: bytes) -> tuple[str, list]:
    """A session token from the Console API, then one utterance over the ingress websocket."""
    import websockets

    from avatarkit.proto import wire_pb2 as pb
    from avatarkit.protocol import animation_frames, decode_envelope, encode_audio, encode_configure

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            urls["console_endpoint_url"] + "/session-tokens",
            headers={"X-Api-Key": "ak_wheel"},
            json={"expireAt": int(time.time()) + 600},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        token = (await response.json())["sessionToken"]
    headers = {"X-App-ID": "app_wheel", "X-Session-Key": token}
    url = urls["ingress_endpoint_url"] + "/websocket?id=ava"
    frames: list = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(encode_configure(16000))
        assert decode_envelope(await ws.recv()).type == pb.MESSAGE_SERVER_CONFIRM_SESSION
        await ws.send(encode_audio("r1", pcm, end=True))
        while True:
            _, got, end = animation_frames(decode_envelope(await ws.recv()))
            frames += got
            if end:
                return token, frames


def test_quickstart_runs_headless(run):
    shutil.copy(REPO_ROOT / "examples" / "quickstart.py", run.cwd / "quickstart.py")
    _, data = installed_data(run)
    wav = data / "speech" / SHORT_WAV
    script = (
        "import wave, quickstart\n"
        f"view = quickstart.main({str(wav)!r}, headless=True)\n"
        "print(view._first_drawn, view.controller._source.consumed)\n"
    )
    result = run("python", "-c", script, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    with wave.open(str(wav)) as f:
        samples = f.getnframes()
    assert result.stdout.split()[-2:] == ["True", str(samples)]  # drawn, and every sample played


def test_the_readme_snippet_runs_headless(run, monkeypatch):
    """The README's API snippet, with the stand-ins the docs harness gives every docs block
    (tests/firsthour/docs_blocks.py: an embedded server's app id, URL, token and speech;
    App.window becomes headless without a display), run by the installed package."""
    spec = importlib.util.spec_from_file_location(
        "docs_blocks", REPO_ROOT / "tests" / "firsthour" / "docs_blocks.py"
    )
    docs_blocks = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "docs_blocks", docs_blocks)  # its dataclass looks itself up
    spec.loader.exec_module(docs_blocks)
    (block,) = [
        b
        for b in docs_blocks.extract(REPO_ROOT / "README.md")
        if b.runs and "load_blocking" in b.code
    ]
    shutil.copy(docs_blocks.HARNESS, run.cwd / "docs_harness.py")
    (run.cwd / "block.py").write_text(block.code, encoding="utf-8")
    result = run("python", "docs_harness.py", "block.py", block.id, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "ava" in result.stdout  # on_progress=print: the avatar came from the installed server
