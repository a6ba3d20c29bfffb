"""SVOX Pico speech (Debian non-free ``libttspico-utils``: ``pico2wave``): a fourth
synthesizer family, HMM-based statistical parametric synthesis like the HTS voices outside
evaluations use. The shipped weights never trained on it, so the benchmark's ``pico`` row
says how the model does on a family it has never heard.

Two English voices: ``en-GB`` held out (the benchmark row: held-out sentences and words),
``en-US`` for training experiments (``train.py --pico N``, off by default); each utterance
at a random speed and pitch (Pico's ``<speed>`` / ``<pitch>`` markup). Pico gives no
timings: the phones come from PocketSphinx's forced alignment (:mod:`.align`); utterances
it cannot align are dropped.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from avatarkit.motion.training.align import aligned_clip
from avatarkit.motion.training.corpus import Clip, on_every_core
from avatarkit.motion.wav import read_wav

TRAIN_VOICES = ("en-US",)
HELDOUT_VOICES = ("en-GB",)


def available() -> bool:
    return shutil.which("pico2wave") is not None


def _require() -> None:
    if not available():
        raise ImportError("apt-get install libttspico-utils (Debian non-free)", name="pico2wave")


def speak_pico(
    text: str,
    voice: str,
    speed: int = 100,
    pitch: int = 100,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Clip | None:
    """``text`` in a Pico voice at ``speed`` / ``pitch`` percent, ``lead_s`` / ``tail_s`` of
    silence around it, with PocketSphinx-aligned viseme spans (``None`` when the alignment
    fails)."""
    _require()
    marked = f"<speed level='{speed}'><pitch level='{pitch}'>{text}</pitch></speed>"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pico.wav"
        subprocess.run(
            ["pico2wave", "-l", voice, "-w", str(path), marked], check=True, capture_output=True
        )
        wav = read_wav(path)
    return aligned_clip(wav.pcm / 32768.0, wav.sample_rate, text, "pico:" + voice, lead_s, tail_s)


def _speak_job(job: tuple) -> Clip | None:
    return speak_pico(*job)


def plan(count: int, split: str, seed: int) -> list[tuple]:
    """Per utterance: (text, voice, speed %, pitch %, lead s, tail s), the split's sentences
    and dictionary phrases by the split's voices."""
    from avatarkit.motion.training.corpus import mixed_texts

    rng = random.Random(f"pico:{split}:{seed}")
    voices = TRAIN_VOICES if split == "train" else HELDOUT_VOICES
    return [
        (
            text,
            rng.choice(voices),
            rng.randint(80, 125),
            rng.randint(85, 115),
            rng.uniform(0.05, 0.5),
            rng.uniform(0.1, 0.5),
        )
        for text in mixed_texts(count, split, seed)
    ]


def pico_clips(count: int, split: str, seed: int) -> list[Clip]:
    """``count`` utterances of ``plan`` (fewer where alignment fails), on every core."""
    _require()
    return on_every_core(_speak_job, plan(count, split, seed), chunksize=8)
