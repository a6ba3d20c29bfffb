"""espeak voice split: training and held-out voices share no dialect and no variant."""

from __future__ import annotations

import random

TRAIN_DIALECTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan")
HELDOUT_DIALECTS = ("en-029", "en-us-nyc", "en-gb-x-gbcwmd")
TRAIN_VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt", "klatt2", "klatt3",
    "adam", "anika", "david", "ed", "linda", "max", "paul", "steph", "Alex", "Annie",
    "john", "robert", "shelby", "travis", "aunty", "edward", "iven", "norbert",
)  # fmt: skip
HELDOUT_VARIANTS = (
    "m6",
    "m7",
    "f4",
    "f5",
    "klatt4",
    "benjamin",
    "belinda",
    "caleb",
    "grandma",
    "victor",
    "zac",
    "quincy",
)


def random_voice(rng: random.Random, split: str) -> dict:
    """Voice name plus rate (words/min), pitch and pitch range for one utterance."""
    dialects = TRAIN_DIALECTS if split == "train" else HELDOUT_DIALECTS
    variants = TRAIN_VARIANTS if split == "train" else HELDOUT_VARIANTS
    variant = rng.choice(variants)
    voice = rng.choice(dialects) + (f"+{variant}" if variant else "")
    return {
        "voice": voice,
        "rate": rng.randint(120, 250),
        "pitch": rng.randint(20, 85),
        "pitch_range": rng.randint(15, 95),
    }
