"""One WAV reader for every command: each layout decodes to the same 16-bit mono speech,
and broken files are refused with a coded error instead of being played in part."""

from __future__ import annotations

import cli_wavs as wavs
import numpy as np
import pytest

from avatarkit.cli import main
from avatarkit.cli.common import read_wav
from avatarkit.errors import AvatarKitError

EXPECTED = np.round(wavs.SIGNAL * 32768).astype(np.int16)


@pytest.mark.parametrize("kind", ["u8", "s16", "s24", "s32", "f32"])
@pytest.mark.parametrize(("channels", "extensible"), [(1, False), (2, False), (6, True), (1, True)])
def test_every_layout_reads_as_the_same_speech(tmp_path, kind, channels, extensible):
    audio = read_wav(wavs.write(tmp_path / "x.wav", kind, channels, extensible))
    assert audio.sample_rate == wavs.RATE and audio.pcm.dtype == np.int16
    tolerance = 260 if kind == "u8" else 2  # 8-bit holds 256 levels
    assert np.abs(audio.pcm.astype(int) - EXPECTED).max() <= tolerance


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (
            lambda p: wavs.write(p, data_size=len(wavs.SIGNAL) * 2 + 4000),
            "invalidAudio",
            "truncated",
        ),
        (lambda p: wavs.write(p, "s16", 2, block_align=2), "invalidAudio", "inconsistent header"),
        (
            lambda p: wavs.write(p, "s24", 2, data_size=len(wavs.SIGNAL) * 6 - 7),
            "invalidAudio",
            "mid-frame",
        ),
        (lambda p: p.mkdir(), "invalidAudio", "is a directory"),
    ],
)
def test_broken_files_are_refused(tmp_path, make, code, words):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AvatarKitError) as info:
        read_wav(path)
    assert info.value.code == code and words in info.value.message


def test_a_data_chunk_ending_mid_frame_is_refused(tmp_path):
    path = wavs.write(tmp_path / "odd.wav", "s16", 2)
    data = path.read_bytes()
    path.write_bytes(data[:-2])  # the header still says the full size: truncated
    with pytest.raises(AvatarKitError, match="truncated"):
        read_wav(path)


def test_a_cut_off_tag_after_the_audio_costs_nothing(tmp_path):
    path = wavs.write(tmp_path / "tagged.wav")
    path.write_bytes(path.read_bytes() + b"LIST" + (400).to_bytes(4, "little") + b"INFOISFT")
    assert len(read_wav(path).pcm) == len(wavs.SIGNAL)


def test_streamed_wav_with_unknown_size_reads_to_the_end(tmp_path):
    audio = read_wav(wavs.write(tmp_path / "pipe.wav", data_size=0xFFFFFFFF))
    assert len(audio.pcm) == len(wavs.SIGNAL)


@pytest.mark.parametrize("command", ["render", "motion"])
@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: wavs.write(p, data_size=99999), "invalidAudio"),
        (lambda p: p.mkdir(), "invalidAudio"),
    ],
)
def test_render_and_motion_refuse_alike(tmp_path, capsys, command, make, code):
    """Both commands read through the same reader: same verdict, one coded line."""
    bad = tmp_path / "in.wav"
    make(bad)
    out = tmp_path / ("o.mp4" if command == "render" else "o.npz")
    argv = (
        ["render", "--audio", str(bad), "-o", str(out)]
        if command == "render"
        else ["motion", str(bad), "-o", str(out)]
    )
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"avatarkit {command}: error [{code}]")
    assert not out.exists()
