"""The public ``spatius`` SDK's own end-to-end suite, run against ``avatarkit serve``.

``scripts/setup.sh`` downloads the sdist of the ``spatius`` version pinned in
``pyproject.toml`` into ``.cache/sdist``; its ``tests/test_e2e_request.py`` and
``tests/test_e2e_errors.py`` (written by the vendor, against the vendor's server) run here
unmodified against our server on a free loopback port, with the environment variables they
read. Raising the pin re-runs this check against the new version's suite.
"""

from __future__ import annotations

import ctypes.util
import importlib.metadata
import importlib.util
import itertools
import os
import subprocess
import sys
import tarfile
import time
import unittest
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from avatarkit.server.workers import pick_free_port
from avatarkit.testing import speech_like_pcm

ROOT = Path(__file__).resolve().parents[2]
SDIST_DIR = ROOT / ".cache" / "sdist"
API_KEY = "ak_vendor_e2e_key"
APP_ID = "app_vendor_e2e"
AVATAR_ID = "ava"  # a bundled avatar: the server's default catalog
_module_names = itertools.count()

LIVEKIT_REASON = (
    "this server has no LiveKit egress: it refuses any egress with egressUnavailable "
    "('egress client is not configured on server'), the honest answer while egress does not "
    "exist; the vendor's test expects its LiveKit to reject a bad token (invalidEgressConfig)"
)


@pytest.fixture(scope="module")
def vendor_tests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked ``tests/`` of the pinned spatius sdist (the installed SDK's version)."""
    version = importlib.metadata.version("spatius")
    sdist = SDIST_DIR / f"spatius-{version}.tar.gz"
    if not sdist.exists():
        pytest.skip(f"{sdist.relative_to(ROOT)} absent (scripts/setup.sh downloads it; offline?)")
    target = tmp_path_factory.mktemp("spatius-sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(target, filter="data")
    tests = target / f"spatius-{version}" / "tests"
    assert (tests / "test_e2e_request.py").exists() and (tests / "test_e2e_errors.py").exists()
    return tests


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``avatarkit serve`` on a free loopback port, as an operator would run it."""
    port = pick_free_port("127.0.0.1")
    log = tmp_path_factory.mktemp("serve") / "serve.log"  # a file: a full pipe would block it
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "avatarkit",
                "serve",
                "--port",
                str(port),
                "--api-key",
                API_KEY,
                "--app-id",
                APP_ID,
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/v1/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"avatarkit serve did not start: {log.read_text()[-2000:]}"
                    ) from exc
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run_vendor_test(tests: Path, module_file: str, test_name: str) -> None:
    """Load the vendor module (its skip decorators read the env at import) and run one test."""
    spec = importlib.util.spec_from_file_location(
        f"spatius_e2e_{next(_module_names)}", tests / module_file
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    suite = unittest.defaultTestLoader.loadTestsFromName(test_name, module)
    result = unittest.TestResult()
    suite.run(result)
    problems = [f"{test}: {trace}" for test, trace in result.failures + result.errors]
    problems += [f"{test} skipped: {why}" for test, why in result.skipped]
    assert result.testsRun == 1 and not problems, "\n".join(problems)


@pytest.fixture
def vendor_env(monkeypatch: pytest.MonkeyPatch, serve_url: str) -> Callable[..., None]:
    def set_env(**extra: str) -> None:
        ws_url = serve_url.replace("http://", "ws://")
        env = {
            "SPATIUS_RUN_E2E": "1",
            "SPATIUS_E2E_API_KEY": API_KEY,
            "SPATIUS_E2E_APP_ID": APP_ID,
            "SPATIUS_E2E_AVATAR_ID": AVATAR_ID,
            "SPATIUS_E2E_REGION": "us-west",  # unused: both endpoints are given
            "SPATIUS_E2E_CONSOLE_ENDPOINT": serve_url + "/v1/console",
            "SPATIUS_E2E_INGRESS_ENDPOINT": ws_url + "/v2/driveningress",
            "SPATIUS_E2E_TIMEOUT_SECONDS": "20",
            **extra,
        }
        for name in [n for n in os.environ if n.startswith("SPATIUS_E2E_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return set_env


@pytest.mark.parametrize(
    "audio_format, rate, internal_encoder",
    [
        ("pcm_s16le", 16000, False),
        ("pcm_s16le", 24000, False),
        ("ogg_opus", 16000, False),  # an Ogg Opus file, sent in 4 KiB chunks
        ("ogg_opus", 24000, False),
        ("ogg_opus", 16000, True),  # PCM encoded by the SDK's own encoder (spatius[opus])
        ("ogg_opus", 24000, True),
    ],
    ids=[
        "pcm-16k",
        "pcm-24k",
        "ogg-file-16k",
        "ogg-file-24k",
        "ogg-sdk-encoder-16k",
        "ogg-sdk-encoder-24k",
    ],
)
def test_vendor_request(
    vendor_tests: Path,
    vendor_env: Callable[..., None],
    make_ogg_opus: Callable[..., bytes],
    tmp_path: Path,
    audio_format: str,
    rate: int,
    internal_encoder: bool,
) -> None:
    if internal_encoder and ctypes.util.find_library("opus") is None:
        pytest.skip(
            "libopus is not installed (Debian libopus0, scripts/setup.sh OPTIONAL_DEBS): "
            "the SDK's own Ogg Opus encoder loads it"
        )
    pcm = speech_like_pcm(1.5, rate)
    if audio_format == "ogg_opus" and not internal_encoder:
        audio = tmp_path / "speech.ogg"
        audio.write_bytes(make_ogg_opus(pcm, rate))
    else:
        audio = tmp_path / f"speech_{rate}.pcm"
        audio.write_bytes(pcm)
    vendor_env(
        SPATIUS_E2E_AUDIO_FORMAT=audio_format,
        SPATIUS_E2E_SAMPLE_RATE=str(rate),
        SPATIUS_E2E_AUDIO_PATH=str(audio),
        SPATIUS_E2E_USE_INTERNAL_OGG_OPUS_ENCODER="1" if internal_encoder else "",
    )
    _run_vendor_test(
        vendor_tests,
        "test_e2e_request.py",
        "TestE2ERequest.test_send_audio_receives_animation_frames",
    )


@pytest.mark.parametrize(
    "test_name",
    [
        "test_start_with_bogus_credentials_surfaces_structured_error",
        "test_start_with_missing_avatar_surfaces_avatar_not_found",
        pytest.param(
            "test_start_with_invalid_livekit_token_surfaces_invalid_egress_config",
            marks=pytest.mark.skip(reason=LIVEKIT_REASON),
        ),
    ],
)
def test_vendor_errors(vendor_tests: Path, vendor_env: Callable[..., None], test_name: str) -> None:
    vendor_env()
    _run_vendor_test(vendor_tests, "test_e2e_errors.py", f"TestE2EErrors.{test_name}")
