"""``train.py --freq-mask``: SpecAugment's frequency masks on the training windows."""

from __future__ import annotations

import pytest

from avatarkit.motion.features import NUM_MELS
from avatarkit.motion.training.train import frequency_masked


def test_masks_blank_whole_bands_across_the_window_and_nothing_else():
    torch = pytest.importorskip("torch")  # training only (docs/motion-model.md)
    torch.manual_seed(0)
    frames = 13
    x = torch.randn(2000, frames * NUM_MELS) + 3.0  # nothing near 0 before masking
    masked = frequency_masked(x, 2, 8).view(len(x), frames, NUM_MELS)
    blank = masked == 0
    # A channel is blanked in every frame of its window or in none.
    assert torch.equal(blank.all(dim=1), blank.any(dim=1))
    per_window = blank[:, 0].sum(dim=1)
    assert per_window.max() <= 16  # two bands of at most eight channels
    assert 0 < per_window.float().mean() < 8
    # Every channel can be masked (band starts span the spectrum), the rest is untouched.
    assert blank[:, 0].any(dim=0).all()
    kept = ~blank
    assert torch.equal(masked[kept], x.view(len(x), frames, NUM_MELS)[kept])
    assert torch.equal(frequency_masked(x, 0, 8), x)
