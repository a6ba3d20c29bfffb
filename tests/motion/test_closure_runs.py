"""``train.py --closure-runs``: the p/b/m segments its per-segment loss is taken over."""

from __future__ import annotations

import numpy as np

from avatarkit.motion.training.train import closure_runs
from avatarkit.motion.visemes import VISEMES

PP, AA, SIL = VISEMES.index("PP"), VISEMES.index("AA"), VISEMES.index("sil")


def test_each_run_is_padded_within_its_clip_only():
    labels = np.array([SIL, PP, PP, AA, AA, PP, SIL, PP, PP])
    # Two clips: window centres jump between example 5 and 6.
    centres = np.array([10, 11, 12, 13, 14, 15, 30, 31, 32])
    runs = closure_runs(labels, centres)
    assert runs.tolist() == [[0, 1, 2, 3], [4, 5, -1, -1], [6, 7, 8, -1]]


def test_a_run_broken_by_a_clip_boundary_is_two_runs():
    labels = np.array([PP, PP, PP, PP])
    centres = np.array([5, 6, 20, 21])
    assert closure_runs(labels, centres, pad=0).tolist() == [[0, 1], [2, 3]]


def test_no_closures_no_runs():
    runs = closure_runs(np.array([AA, SIL]), np.array([0, 1]))
    assert runs.shape == (0, 0)
