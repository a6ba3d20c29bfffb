"""Speech through a real sound server: PyAudio -> PortAudio -> ALSA -> PulseAudio null
sink, recorded from the sink's monitor and compared with the line that was sent.

Each scenario runs ``play.py`` in its own process (PortAudio reads the sound server
from the environment at start) while ``tools/pulse_sink.py`` records. The bar (issue 11):
the whole utterance comes out: active speech within 5% of the source's, envelope
correlation >= 0.9, no gap longer than the source's own pauses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from avatarkit.paths import SPEECH_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import pulse_sink  # noqa: E402

pytestmark = pytest.mark.timeout(240)

PLAY = Path(__file__).with_name("play.py")
GREETING = SPEECH_DIR / "greeting.wav"  # 5.9 s, 4.67 s of it active speech
SHORT = SPEECH_DIR / "quiz_q1.wav"  # 3.2 s
GAP_SLACK = 0.05  # s: envelope windows are 10 ms; a held face adds nothing audible


def source_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(-1), "<i2")


def play(pulse, wav: Path, channels: int = 1, **opts) -> tuple[dict, np.ndarray]:
    """Run one scenario; returns play.py's report and what reached the speaker. Run again
    once if the machine starved the audio thread (the device reported underruns), since a
    shared 2-core machine does that now and then; a defect that starves it every time
    (the GIL held through a frame) fails both runs."""
    report, samples = play_once(pulse, wav, channels, **opts)
    if report["underruns"]:
        report, samples = play_once(pulse, wav, channels, **opts)
    return report, samples


def play_once(pulse, wav: Path, channels: int, **opts) -> tuple[dict, np.ndarray]:
    with pulse.record(channels) as rec:
        run = subprocess.run(
            [sys.executable, str(PLAY), json.dumps({"wav": str(wav), **opts})],
            env=pulse.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1]), rec.samples


def assert_whole(
    recorded: np.ndarray,
    source: np.ndarray,
    *,
    tolerance: float = 0.05,
    min_r: float = 0.9,
    slack_s: float = 0.0,
) -> None:
    """Active speech within ``tolerance`` of the source's (up to ``slack_s`` seconds more
    where copies that started that far apart overlap), the same envelope, no gap longer
    than the source's own."""
    want, got = pulse_sink.active_seconds(source), pulse_sink.active_seconds(recorded)
    _, r = pulse_sink.align(recorded, source)
    gap, source_gap = pulse_sink.longest_gap(recorded), pulse_sink.longest_gap(source)
    summary = (
        f"active {got:.2f}/{want:.2f} s (slack {slack_s:.2f}), envelope r {r:.3f}, "
        f"gap {gap:.2f}/{source_gap:.2f} s"
    )
    assert -tolerance * want <= got - want <= tolerance * want + slack_s, summary
    assert r >= min_r, summary
    assert gap <= source_gap + GAP_SLACK, summary


@pytest.mark.parametrize("mode", ["direct", "backend"])
def test_one_avatar_plays_the_whole_line(pulse, mode):
    """The issue's reproduction: default headless App (1280x720, real-time clock)."""
    report, recorded = play(pulse, GREETING, mode=mode)
    assert_whole(recorded, source_pcm(GREETING))
    assert report["end_state"] == "idle"


@pytest.mark.parametrize("mode", ["direct", "backend"])
def test_four_avatars_each_play_their_whole_line(pulse, mode):
    """Four avatars speak at once; avatar 0 is alone on the left, three on the right."""
    report, recorded = play(pulse, GREETING, channels=2, mode=mode, avatars=4)
    source = source_pcm(GREETING)
    assert_whole(recorded[:, 0], source)
    # Three copies whose starts differ a little: the same speech, smeared by that spread
    # (a few frames; more on a loaded machine, where sessions start further apart).
    starts = report["starts"][1:]
    assert None not in starts, report["starts"]
    spread = max(starts) - min(starts)
    assert_whole(recorded[:, 1], source, tolerance=0.1, min_r=0.8, slack_s=spread)
    assert report["end_state"] == "idle"


@pytest.mark.parametrize(
    "rate, block",
    [(16000, 256), (44100, 1024), (48000, 256), (48000, 4096)],
)
def test_card_rates_and_blocks(pulse, rate, block):
    """Card rates other than the SDK's 16 kHz are converted in the engine; any block size
    a card uses works (short ones are raised to a safe multiple)."""
    report, recorded = play(pulse, SHORT, rate=rate, block=block, size=[640, 360])
    assert report["device_rate"] == rate
    assert report["block"] % block == 0 and report["block"] / rate >= 0.03
    assert_whole(recorded, source_pcm(SHORT))


def test_interrupt_stops_the_sound(pulse):
    """After interrupt() the speaker goes quiet within the device latency plus a frame,
    and what played is the line's beginning up to the audio clock's position."""
    report, recorded = play(pulse, GREETING, interrupt_at=2.0)
    source = source_pcm(GREETING)
    played_s = report["interrupt"][1]
    start, r = pulse_sink.align(recorded, source[: int(played_s * 16000)])
    assert r >= 0.9
    env = pulse_sink.envelope(recorded) > pulse_sink.ACTIVE_RMS
    last_sound = np.flatnonzero(env).max() * pulse_sink.WINDOW
    heard_until = start * pulse_sink.WINDOW + played_s  # where the clock said we were
    # The clock was read at the last tick; what the device held still plays out.
    allowed = report["since_tick"] + report["latency"] + report["block"] / report["device_rate"]
    assert last_sound <= heard_until + allowed + 0.05, (last_sound, heard_until, allowed)
    assert report["end_state"] == "idle"


def test_pause_freezes_and_resume_loses_nothing(pulse):
    """pause() silences the speaker and freezes the clock within one device buffer;
    resume() continues where it stopped: the whole line still comes out, once."""
    report, recorded = play(pulse, GREETING, pause_at=1.5, pause_for=1.0)
    paused_at, clock_at_pause = report["pause"][1], report["paused_clock"]
    # What the device already holds still plays out; the reading at pause() was a tick old.
    # PortAudio reports the stream's nominal output latency; PulseAudio's real one moves
    # around it: the run-on measured 7-25 ms under the allowance on a quiet machine, and
    # 2 ms and 5 ms over it in two CI runs on a loaded one: 15 ms of slack (half a frame).
    allowed = report["latency"] + report["block"] / report["device_rate"] + report["since_tick"]
    assert clock_at_pause - paused_at <= allowed + 0.015, (clock_at_pause - paused_at, allowed)
    assert abs(report["resume"][1] - clock_at_pause) < 1e-6  # frozen while paused
    source = source_pcm(GREETING)
    want = pulse_sink.active_seconds(source)
    assert abs(pulse_sink.active_seconds(recorded) - want) <= 0.05 * want
    assert pulse_sink.longest_gap(recorded) >= 0.9  # the pause itself is silent
