"""A/V sync measured at the output of a real sound server (issue 15, item 5).

``tools/av_timeline.py`` plays tone bursts while the face's ``tongueOut`` channel draws a
sawtooth of the motion time; the bursts' onsets are found in the PulseAudio sink's
recording and the drawn channel is read at each frame's present. Nothing here comes from
the controller's own clock arithmetic: a lead or lag anywhere between the mixer and the
speaker, or between the pose and the screen, shows up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import av_timeline  # noqa: E402

pytestmark = pytest.mark.timeout(240)

SECONDS = 8.0
FRAME = 1 / av_timeline.FPS


def run(pulse, **opts):
    """One scenario; run again once if the machine starved the audio thread (the device
    reported underruns), since a shared 2-core machine does that now and then. A defect
    that starves it (the GIL held through a frame) fails both runs."""
    report, rec = run_once(pulse, **opts)
    if report["underruns"]:
        report, rec = run_once(pulse, **opts)
    return report, rec


def run_once(pulse, **opts):
    with pulse.record(2 if opts.get("avatars", 1) > 1 else 1) as rec:
        player = subprocess.run(
            [sys.executable, av_timeline.__file__, json.dumps({"seconds": SECONDS, **opts})],
            env=pulse.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert player.returncode == 0 and "Traceback" not in player.stderr, player.stderr[-3000:]
    return json.loads(player.stdout.strip().splitlines()[-1]), rec


def test_the_face_matches_the_sound_that_comes_out(pulse):
    report, rec = run(pulse, avatars=2)
    for channel in (0, 1):
        heard = av_timeline.onsets(rec.samples[:, channel])
        assert len(heard) == len(av_timeline.click_times(SECONDS)), f"channel {channel}"
    for avatar in (0, 1):
        offsets = av_timeline.offsets(report, rec, SECONDS, avatar)
        assert len(offsets) >= 40, f"only {len(offsets)} frames measured"
        mean, p90 = offsets.mean(), np.percentile(np.abs(offsets), 90)
        # A frame lands wherever its predicted present time was wrong by the frame time's
        # jitter: on a loaded 2-core machine frames take 30-150 ms, so the spread is bounded
        # by the frame interval actually achieved, never by less than a frame.
        interval = np.median(np.diff([row[0] for row in report["frames"][avatar]]))
        summary = (
            f"avatar {avatar}: mean {1000 * mean:+.1f} ms, p90 |offset| {1000 * p90:.1f} ms,"
            f" frame interval {1000 * interval:.0f} ms"
        )
        # The bar. The rig reads -3 to -9 ms from run to run, so a 15 ms lead fails
        # only on some runs (an 8 ms bar caught it but flaked); the deterministic check of
        # a lead is in tests/sdk (test_playback, test_direct, test_backend_relay).
        assert abs(mean) <= 0.010, summary
        assert p90 <= max(FRAME, interval), summary
