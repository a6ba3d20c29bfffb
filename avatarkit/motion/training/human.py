"""The real-human development set (``benchmarks/data/human``): recordings, words and their
PocketSphinx phone alignment. Reported on as its own row; never trained on.

    .venv/bin/python -m avatarkit.motion.training.human --align   # rebuild alignments.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from avatarkit.motion.training.align import align_phones, viseme_spans
from avatarkit.motion.training.corpus import Clip
from avatarkit.motion.wav import read_wav

HUMAN_DIR = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "human"


def _transcripts() -> dict[str, str]:
    return json.loads((HUMAN_DIR / "transcripts.json").read_text())["transcripts"]


def _load(name: str) -> tuple[np.ndarray, int]:
    wav = read_wav(HUMAN_DIR / name)
    return wav.pcm.astype(np.float32) / 32768.0, wav.sample_rate


def human_clips() -> list[Clip]:
    """Every recording with its aligned viseme spans."""
    return [human_clip(name) for name in _transcripts()]


def human_clip(name: str) -> Clip:
    """One recording (its file name) with its aligned viseme spans."""
    alignments = json.loads((HUMAN_DIR / "alignments.json").read_text())
    audio, rate = _load(name)
    spans = viseme_spans([tuple(p) for p in alignments[name]], rate, len(audio))
    return Clip(audio, rate, spans, _transcripts()[name], "human:" + Path(name).stem.split("_")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--align", action="store_true", help="rebuild alignments.json")
    args = parser.parse_args()
    if not args.align:
        parser.error("nothing to do (--align)")
    out = {}
    for name, text in _transcripts().items():
        audio, rate = _load(name)
        phones = align_phones(audio, rate, text)
        if not phones:
            raise SystemExit(f"{name}: PocketSphinx could not align {text!r}")
        out[name] = [[p, round(s, 3), round(e, 3)] for p, s, e in phones]
        print(f"{name}: {len(phones)} phones")
    lines = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in out.items())
    (HUMAN_DIR / "alignments.json").write_text("{\n" + lines + "\n}\n")


if __name__ == "__main__":
    main()
