"""``avatarkit motion`` contract: outputs, conversions and clear errors on bad WAVs."""

from __future__ import annotations

import struct
import subprocess
import sys
import wave

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_NAMES
from avatarkit.cli import main
from avatarkit.paths import SPEECH_DIR

pytestmark = pytest.mark.timeout(60)


def write_wav(path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    """``samples`` int [frames] or [frames, channels] at the given byte width."""
    frames = samples if samples.ndim == 2 else samples[:, None]
    if width == 3:
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in frames.reshape(-1))
    else:
        raw = frames.astype({1: "u1", 2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(frames.shape[1])
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(raw)


def test_single_input_writes_one_npz(tmp_path):
    src = SPEECH_DIR / "quiz_wrong.wav"
    out = tmp_path / "wrong.npz"
    assert main(["motion", str(src), "-o", str(out)]) == 0
    data = np.load(out)
    with wave.open(str(src)) as wav:
        frames, rate = wav.getnframes(), wav.getframerate()
    expected = -(-frames * 30 // rate)
    assert list(data["names"]) == list(ARKIT_NAMES)
    assert data["weights"].dtype == np.float32 and data["weights"].shape == (expected, 52)
    assert data["head"].dtype == np.float32 and data["head"].shape == (expected, 3)
    assert int(data["fps"]) == 30
    assert 0.0 <= data["weights"].min() and data["weights"].max() <= 1.0
    assert data["weights"][:, ARKIT_NAMES.index("jawOpen")].max() > 0.2


def test_several_inputs_fill_a_directory_through_the_entry_point(tmp_path):
    srcs = [SPEECH_DIR / "quiz_timeout.wav", SPEECH_DIR / "conv_ben_1.wav"]
    out = tmp_path / "motion"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "avatarkit",
            "motion",
            *map(str, srcs),
            "-o",
            str(out),
            "--fps",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for src in srcs:
        data = np.load(out / f"{src.stem}.npz")
        assert int(data["fps"]) == 60 and data["weights"].shape[1] == 52


def test_stereo_24_bit_is_downmixed_and_converted(tmp_path, capsys):
    rng = np.random.default_rng(0)
    mono = (rng.standard_normal(8000) * 1e5).astype(np.int64)
    write_wav(tmp_path / "st.wav", np.stack([mono, mono], axis=1), 16000, width=3)
    assert main(["motion", str(tmp_path / "st.wav"), "-o", str(tmp_path / "st.npz")]) == 0
    assert "downmixed 2 channels" in capsys.readouterr().out
    assert np.load(tmp_path / "st.npz")["weights"].shape == (15, 52)


def _float64_wav(path) -> None:  # 32-bit float is read; 64-bit is not
    data = np.zeros(1600, "<f8").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 128000, 8, 64)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: p.write_bytes(b"this is not audio at all"), "invalidAudio"),
        (lambda p: None, "invalidAudio"),  # missing file
        (_float64_wav, "unsupportedAudioFormat"),
        (lambda p: write_wav(p, np.zeros(1000, np.int16), 11025), "unsupportedSampleRate"),
        (lambda p: write_wav(p, np.zeros(0, np.int16), 16000), "noAudio"),
    ],
)
def test_bad_wavs_fail_clearly_and_write_nothing(tmp_path, capsys, make, code):
    bad = tmp_path / "bad.wav"
    make(bad)
    out = tmp_path / "out"
    good = SPEECH_DIR / "quiz_timeout.wav"
    assert main(["motion", str(good), str(bad), "-o", str(out)]) == 2
    assert f"[{code}]" in capsys.readouterr().err
    assert not out.exists()  # every input is checked before anything is written


def test_bad_fps_and_colliding_names(tmp_path, capsys):
    src = str(SPEECH_DIR / "quiz_timeout.wav")
    assert main(["motion", src, "-o", str(tmp_path / "a.npz"), "--fps", "24"]) == 2
    assert "[invalidRequest]" in capsys.readouterr().err
    assert main(["motion", src, src, "-o", str(tmp_path / "d")]) == 2
    assert "[invalidRequest]" in capsys.readouterr().err


def test_single_input_into_an_existing_folder(tmp_path):
    src = SPEECH_DIR / "quiz_timeout.wav"
    assert main(["motion", str(src), "-o", str(tmp_path)]) == 0
    assert np.load(tmp_path / "quiz_timeout.npz")["weights"].shape[1] == 52


def _extensible_wav(path, samples: np.ndarray, rate: int, channels: int) -> None:
    """WAVE_FORMAT_EXTENSIBLE with a PCM sub-format, as DAWs write multichannel files."""
    data = samples.astype("<i2").tobytes()
    guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = (
        struct.pack(
            "<HHIIHHHHI", 0xFFFE, channels, rate, rate * 2 * channels, 2 * channels, 16, 22, 16, 3
        )
        + guid
    )
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_extensible_and_8_bit_wavs_are_read(tmp_path, capsys):
    from avatarkit.motion.wav import read_wav

    tone = (np.sin(np.arange(4800) / 5) * 8000).astype(np.int16)
    _extensible_wav(tmp_path / "ext.wav", np.stack([tone, tone], axis=1).reshape(-1), 48000, 2)
    audio = read_wav(tmp_path / "ext.wav")
    assert audio.sample_rate == 48000 and np.array_equal(audio.pcm, tone)
    write_wav(tmp_path / "u8.wav", (tone // 256 + 128).astype(np.uint8), 8000, width=1)
    audio = read_wav(tmp_path / "u8.wav")
    assert audio.notes == ["converted 8-bit to 16-bit"]
    assert np.abs(audio.pcm.astype(int) - (tone // 256) * 256).max() <= 256
    assert main(["motion", str(tmp_path / "ext.wav"), "-o", str(tmp_path / "ext.npz")]) == 0
    assert np.load(tmp_path / "ext.npz")["weights"].shape == (3, 52)
