"""The motion model is chosen by name. Weights that are missing or unreadable are the
coded error ``motionModelUnavailable`` everywhere (API, CLI, server), never a silent switch
to the loudness envelope, which runs only when asked for by name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import websockets

from avatarkit.cli import main
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.envelope import EnvelopeStream
from avatarkit.motion.lipsync import LipSyncStream
from avatarkit.motion.stream import create_stream
from avatarkit.paths import MODELS_DIR, SPEECH_DIR

pytestmark = pytest.mark.timeout(60)

REAL_WEIGHTS = MODELS_DIR / "motion_mlp.npz"
WAV = SPEECH_DIR / "quiz_wrong.wav"


@pytest.fixture
def weights(monkeypatch, tmp_path) -> Path:
    """Where the model now looks (nothing there yet), with no net cached from before."""
    import avatarkit.motion.lipsync as lipsync
    import avatarkit.motion.model as model

    path = tmp_path / "motion_mlp.npz"
    monkeypatch.setattr(model, "MODEL_PATH", path)
    monkeypatch.setattr(lipsync, "_net", None)
    return path


def damaged(kind: str) -> bytes | dict[str, np.ndarray] | None:
    """The in-repo weights, damaged one way: bytes to write, arrays to save, or None."""
    if kind == "missing":
        return None
    raw = REAL_WEIGHTS.read_bytes()
    if kind == "garbage":
        return b"not a model at all"
    if kind == "truncated":
        return raw[: len(raw) // 2]
    with np.load(REAL_WEIGHTS) as data:
        arrays = dict(data)
    if kind == "missing_array":
        del arrays["w0"]
    elif kind == "layers_do_not_chain":  # the first hidden layer one unit short
        arrays["w0"], arrays["b0"] = arrays["w0"][:, :-1], arrays["b0"][:-1]
    elif kind == "too_few_visemes":
        last = int(arrays["num_layers"]) - 1
        arrays[f"w{last}"], arrays[f"b{last}"] = arrays[f"w{last}"][:, :-1], arrays[f"b{last}"][:-1]
    return arrays


@pytest.mark.parametrize(
    "kind",
    ["missing", "garbage", "truncated", "missing_array", "layers_do_not_chain", "too_few_visemes"],
)
def test_unusable_weights_are_a_coded_error_not_the_envelope(weights, kind):
    content = damaged(kind)
    if isinstance(content, bytes):
        weights.write_bytes(content)
    elif content is not None:
        np.savez(weights, **content)
    with pytest.raises(AvatarKitError) as info:
        create_stream(16000, 30)
    assert info.value.code == ErrorCode.MOTION_MODEL_UNAVAILABLE
    assert str(weights) in info.value.message
    assert isinstance(
        create_stream(16000, 30, model="envelope"), EnvelopeStream
    )  # by name: still there


def test_the_default_is_the_trained_model_and_the_envelope_needs_its_name():
    assert isinstance(create_stream(16000, 30), LipSyncStream)
    assert isinstance(create_stream(16000, 30, model="lipsync"), LipSyncStream)
    assert isinstance(create_stream(16000, 30, model="envelope"), EnvelopeStream)
    with pytest.raises(AvatarKitError) as info:
        create_stream(16000, 30, model="best")
    assert info.value.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("command", ["motion", "render", "serve"])
def test_commands_refuse_to_run_without_weights(weights, tmp_path, capsys, monkeypatch, command):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, "1"))  # serve sets them; keep this process's
    out = tmp_path / "out.npz"
    argv = {
        "motion": ["motion", str(WAV), "-o", str(out)],
        "render": ["render", "--audio", str(WAV), "-o", str(tmp_path / "out.mp4")],
        "serve": ["serve", "--port", "0"],
    }[command]
    assert main(argv) == 2
    assert "error [motionModelUnavailable]" in capsys.readouterr().err
    assert not any(tmp_path.glob("out.*"))


def test_motion_with_the_envelope_asked_by_name_moves_the_jaw_only(weights, tmp_path):
    out = tmp_path / "out.npz"
    assert main(["motion", str(WAV), "-o", str(out), "--model", "envelope"]) == 0
    moving = np.flatnonzero(np.load(out)["weights"].max(axis=0) > 0)
    assert len(moving) == 1  # jawOpen: the envelope, as asked


def test_an_install_without_weights_fails_through_the_entry_point(tmp_path):
    """A data folder with no models/ (``AVATARKIT_ASSETS``), as an incomplete install has."""
    env = {**os.environ, "AVATARKIT_ASSETS": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "avatarkit", "motion", str(WAV), "-o", str(tmp_path / "out.npz")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error [motionModelUnavailable]" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.npz").exists()


async def _utterance_error(server) -> ErrorCode:
    from avatarkit.proto import wire_pb2 as pb
    from avatarkit.protocol import classify, decode_envelope, encode_audio, encode_configure
    from avatarkit.testing import speech_like_pcm

    headers = {"X-App-ID": server.app_id, "X-Session-Key": server.issue_token()}
    url = f"ws://127.0.0.1:{server.port}/v2/driveningress/websocket?id=ava"
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(encode_configure(16000))
        assert (
            decode_envelope(await asyncio.wait_for(ws.recv(), 5)).type
            == pb.MESSAGE_SERVER_CONFIRM_SESSION
        )
        await ws.send(encode_audio("r1", speech_like_pcm(0.3), end=True))
        envelope = decode_envelope(await asyncio.wait_for(ws.recv(), 5))
        assert envelope.type == pb.MESSAGE_SERVER_ERROR  # no frames came first
        return classify(envelope.server_error.code, envelope.server_error.message)


def test_an_embedded_server_without_weights_does_not_start(weights, make_server):
    with pytest.raises(AvatarKitError) as info:
        make_server()
    assert info.value.code == ErrorCode.MOTION_MODEL_UNAVAILABLE
    assert make_server(motion_model="envelope").port  # the baseline, named, needs no weights


async def test_weights_lost_while_serving_are_answered_with_the_code(
    make_server, monkeypatch, tmp_path
):
    import avatarkit.motion.lipsync as lipsync
    import avatarkit.motion.model as model

    server = make_server()  # started with the weights; they go away (and the cached net)
    monkeypatch.setattr(model, "MODEL_PATH", tmp_path / "gone.npz")
    monkeypatch.setattr(lipsync, "_net", None)
    assert await _utterance_error(server) == ErrorCode.MOTION_MODEL_UNAVAILABLE
    assert server.stats.errors[ErrorCode.MOTION_MODEL_UNAVAILABLE] == 1
