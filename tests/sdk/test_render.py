"""``avatarkit render`` end to end: decode the MP4 and check duration, audio, lip motion."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from avatarkit.cli import main
from avatarkit.paths import SPEECH_DIR

pytestmark = pytest.mark.timeout(120)

SPEECH = SPEECH_DIR / "conv_ben_1.wav"
MOUTH = (slice(225, 265), slice(280, 360))  # rows, cols of ava's mouth at 640x360


def decode(path):
    import av

    with av.open(str(path)) as container:
        streams = {s.type: s for s in container.streams}
        video = streams["video"]
        duration = float(video.duration * video.time_base)
        audio_codec = streams["audio"].codec_context.name if "audio" in streams else None
        frames = np.array(
            [f.to_ndarray(format="rgb24") for f in container.decode(video=0)], np.float32
        )
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return duration, audio_codec, frames, audio


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "ben.mp4"
    assert main(["render", "--audio", str(SPEECH), "-o", str(out), "--idle", "off"]) == 0
    return out


def test_video_lasts_as_long_as_the_audio_with_an_audio_stream(rendered):
    with wave.open(str(SPEECH)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    duration, codec, frames, audio = decode(rendered)
    assert codec == "aac"
    assert abs(duration - seconds) <= 1 / 30
    assert len(frames) == round(duration * 30) and frames.shape[1:] == (360, 640, 3)
    assert np.abs(audio).max() > 0.1  # the speech is in there, not silence


def test_lips_move_with_the_sound(rendered):
    _, _, frames, _ = decode(rendered)
    with wave.open(str(SPEECH)) as wav:
        pcm = np.frombuffer(wav.readframes(-1), "<i2") / 32768
    per_frame = 16000 // 30
    loudness = np.array(
        [
            np.sqrt(np.mean(pcm[k * per_frame : (k + 1) * per_frame] ** 2) + 1e-12)
            for k in range(len(frames))
        ]
    )
    mouth = frames[:, MOUTH[0], MOUTH[1]]
    openness = np.abs(mouth - mouth[0]).mean(axis=(1, 2, 3))  # frame 0: the still, closed face
    assert openness.max() > 20  # lips visibly move
    best = max(range(-2, 3), key=lambda lag: _corr(openness, loudness, lag))
    assert _corr(openness, loudness, best) > 0.4  # ... and with the speech


def test_each_frame_shows_the_motion_of_its_own_instant(rendered):
    """Against an independent timeline: the motion stream computed here from the WAV. The
    mouth's pixel change between video frames k-1 and k follows the stream's weight change
    between its frames k-1 and k, at lag 0 and not one frame either side (a face shown one
    frame early or late moves the peak; with the pose sampled one frame ahead r[0] is 0.11)."""
    from avatarkit.motion import create_stream

    _, _, frames, _ = decode(rendered)
    with wave.open(str(SPEECH)) as wav:
        stream = create_stream(wav.getframerate(), 30)
        motion = stream.push(wav.readframes(-1)) + stream.finish()
    weights = np.array([frame.weights for frame in motion])
    gray = frames[:, MOUTH[0], MOUTH[1]].mean(axis=3)
    n = min(len(gray), len(weights))
    pixels = np.abs(np.diff(gray[:n], axis=0)).mean(axis=(1, 2))
    motion_change = np.abs(np.diff(weights[:n], axis=0)).sum(axis=1)
    r = {lag: _corr(pixels, motion_change, lag) for lag in (-1, 0, 1)}
    assert r[0] > 0.6, r
    assert r[0] > max(r[-1], r[1]) + 0.3, r


def _corr(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    n = len(a)
    x, y = a[max(0, lag) : n + min(0, lag)], b[max(0, -lag) : n - max(0, lag)]
    return float(np.corrcoef(x, y)[0, 1])


def test_idle_off_keeps_the_face_still_without_speech(tmp_path):
    silent = tmp_path / "silence.wav"
    _silence(silent, 16000, 16000)
    out = tmp_path / "still.mp4"
    assert (
        main(
            ["render", "--audio", str(silent), "-o", str(out), "--idle", "off", "--size", "320x180"]
        )
        == 0
    )
    _, _, frames, _ = decode(out)
    assert len(frames) == 30
    # No idle motion: after the short blend into the (near-neutral) silent speech pose,
    # consecutive frames differ by codec noise only.
    assert np.abs(np.diff(frames[6:], axis=0)).max() <= 6
    assert np.abs(frames - frames[0]).mean() < 0.2


def test_bad_input_exits_with_a_stable_code(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    assert main(["render", "--audio", str(bad), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "invalidAudio" in capsys.readouterr().err
    odd = tmp_path / "odd.wav"
    _silence(odd, 100, 11025)
    assert main(["render", "--audio", str(odd), "-o", str(tmp_path / "y.mp4")]) == 2
    assert "unsupportedSampleRate" in capsys.readouterr().err


def test_a_render_slower_than_its_idle_timeout_ends_without_warnings(tmp_path, caplog, monkeypatch):
    """Issue 15: a long offline render printed idleTimeout and connectionClosed (and, with
    single-use tokens, refused reconnects) for a session that had ended normally."""
    import logging

    from avatarkit.cli.render import render_video
    from avatarkit.server import embedded

    make = embedded.EmbeddedServer.__init__

    def quick_idle(self, *args, **limits):  # the render outlasts the server's idle timeout
        make(self, *args, **{"idle_timeout_s": 0.3, "watchdog_interval_s": 0.05, **limits})

    monkeypatch.setattr(embedded.EmbeddedServer, "__init__", quick_idle)
    with caplog.at_level(logging.WARNING, logger="avatarkit"):
        result = render_video(
            "ava", SPEECH_DIR / "quiz_q1.wav", tmp_path / "out.mp4", size=(160, 90)
        )
    assert result.frames > 30
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_quality_and_samples_flags_reach_the_render(tmp_path, capsys):
    """``--quality`` / ``--samples`` pick the anti-aliasing; the result line names it, and
    the two frames differ only along edges (same scene, same timing)."""
    silent = tmp_path / "silence.wav"
    _silence(silent, 8000, 16000)
    frames = {}
    for flags in (["--quality", "low"], ["--quality", "medium", "--samples", "4"]):
        out = tmp_path / f"{flags[1]}.mp4"
        argv = ["render", "--audio", str(silent), "-o", str(out), "--idle", "off"]
        assert main([*argv, "--size", "320x180", *flags]) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert f"quality {flags[1]}" in line, line
        frames[flags[1]] = decode(out)[2][-1]
    assert "4x MSAA" in line
    diff = np.abs(frames["low"] - frames["medium"]).max(axis=2)
    assert 0 < (diff > 24).mean() < 0.05  # edges moved; the picture did not


def _silence(path, samples: int, rate: int) -> None:
    """A mono s16 WAV of ``samples`` zeros at ``rate``."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.zeros(samples, "<i2").tobytes())
