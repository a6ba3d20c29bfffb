"""Real lip behaviour on bundled speech, checked against its espeak phoneme alignment."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.arkit import ARKIT_INDEX as I
from avatarkit.motion.visemes import segments

pytestmark = pytest.mark.timeout(60)

LINES = (
    "greeting",
    "kiosk_welcome",
    "kiosk_exhibit",
    "kiosk_help",
    "conv_ben_2",
    "quiz_q1",
    "quiz_correct",
)
FPS = 60


@pytest.fixture(scope="module")
def midpoints(mt):
    """Per viseme: the ARKit weights at the midpoint of each of its spans, over all LINES."""
    found: dict[str, list[np.ndarray]] = {}
    for line_id in LINES:
        pcm, rate, line = mt.load_line(line_id)
        weights, _, _ = mt.stacked(mt.run_stream(pcm, rate, FPS))
        events = [(name, int(round(start * rate))) for name, start in line["phonemes"]]
        for vis, start, end in segments(events, len(pcm)):
            if end - start < rate * 0.03:  # too short to show reliably at any frame rate
                continue
            frame = min(len(weights) - 1, int(round((start + end) / 2 / rate * FPS)))
            found.setdefault(vis, []).append(weights[frame])
    return {vis: np.stack(ws) for vis, ws in found.items()}


def _closure(w: np.ndarray) -> np.ndarray:
    return w[:, I["mouthClose"]] + 0.5 * (w[:, I["mouthPressLeft"]] + w[:, I["mouthPressRight"]])


def test_lips_close_on_p_b_m(midpoints):
    pbm = midpoints["PP"]
    assert len(pbm) >= 15
    closed = (_closure(pbm) > 0.3) & (pbm[:, I["jawOpen"]] < 0.15)
    assert closed.mean() >= 0.75


def test_jaw_opens_on_open_vowels(midpoints):
    open_vowels = np.concatenate([midpoints["AA"], midpoints["OH"]])
    jaw = open_vowels[:, I["jawOpen"]]
    assert jaw.mean() > 0.25
    assert jaw.mean() > midpoints["PP"][:, I["jawOpen"]].mean() + 0.2
    assert _closure(open_vowels).mean() < 0.1


def test_rounding_on_o_u_w_and_spreading_on_i_e(midpoints):
    def rounding(w):
        return w[:, I["mouthFunnel"]] + w[:, I["mouthPucker"]]

    def spreading(w):
        return w[:, I["mouthStretchLeft"]] + w[:, I["mouthSmileLeft"]]

    rounded = np.concatenate([midpoints["UU"], midpoints["WW"], midpoints["OH"]])
    spread = np.concatenate([midpoints["IH"], midpoints["EE"]])
    assert rounding(rounded).mean() > rounding(spread).mean() + 0.2
    assert spreading(spread).mean() > spreading(rounded).mean() + 0.1


def test_teeth_on_lip_for_f_v(midpoints):
    roll = midpoints["FF"][:, I["mouthRollLower"]]
    others = np.concatenate([w for vis, w in midpoints.items() if vis != "FF"])[
        :, I["mouthRollLower"]
    ]
    assert roll.mean() > 0.25 and roll.mean() > others.mean() + 0.2


def test_head_moves_and_eyes_blink_while_speaking(mt):
    pcm, rate, _ = mt.load_line("greeting")
    long = np.concatenate([pcm, pcm])  # ~11 s
    weights, head, gaze = mt.stacked(mt.run_stream(long, rate, 30))
    assert np.ptp(head[:, 0]) > 0.02 and np.ptp(head[:, 1]) > 0.02  # nods and sways
    assert np.abs(head).max() < 0.3  # ... small ones
    blinks = np.diff((weights[:, I["eyeBlinkLeft"]] > 0.5).astype(int)) == 1
    assert 1 <= blinks.sum() <= 8
    assert np.ptp(gaze[:, 0]) > 0.01  # saccades
    assert weights[:, I["browInnerUp"]].max() > 0.05  # brows follow emphasis
