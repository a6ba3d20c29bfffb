"""The streaming Ogg Opus decoder: any chunking, aligned with its input, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.protocol.ogg_opus import OggOpusDecoder


def decode(stream: bytes, rate: int, step: int) -> bytes:
    decoder = OggOpusDecoder(rate)
    return (
        b"".join(decoder.feed(stream[i : i + step]) for i in range(0, len(stream), step))
        + decoder.finish()
    )


@pytest.mark.parametrize("rate", [16000, 48000, 8000])
def test_decodes_in_any_chunking_and_stays_aligned(make_speech, make_ogg_opus, rate):
    pcm = make_speech(1.0, sample_rate=rate)
    stream = make_ogg_opus(pcm, rate)
    whole = decode(stream, rate, len(stream))
    assert decode(stream, rate, 1) == decode(stream, rate, 333) == whole
    source = np.frombuffer(pcm, "<i2").astype(np.float64)
    decoded = np.frombuffer(whole, "<i2").astype(np.float64)
    assert abs(len(decoded) - len(source)) <= 0.03 * rate  # codec padding only
    n = min(len(source), len(decoded))
    # No offset: the encoder's priming samples (pre-skip) are gone.
    assert np.corrcoef(source[:n], decoded[:n])[0, 1] > 0.9


@pytest.mark.parametrize(
    ("stream", "detail"),
    [
        (b"OggS" + b"\x01" * 40, "bad page header"),
        (b"not ogg at all, clearly" * 3, "bad page header"),
    ],
)
def test_garbage_is_invalid_audio(stream, detail):
    with pytest.raises(AvatarKitError) as info:
        OggOpusDecoder(16000).feed(stream)
    assert info.value.code is ErrorCode.INVALID_AUDIO and detail in info.value.message


def test_truncated_stream_is_invalid_audio(make_speech, make_ogg_opus):
    stream = make_ogg_opus(make_speech(0.5))
    decoder = OggOpusDecoder(16000)
    decoder.feed(stream[:-10])
    with pytest.raises(AvatarKitError) as info:
        decoder.finish()
    assert info.value.code is ErrorCode.INVALID_AUDIO


def test_decoded_length_is_bounded(make_speech, make_ogg_opus):
    stream = make_ogg_opus(make_speech(1.0))
    with pytest.raises(AvatarKitError) as info:
        OggOpusDecoder(16000, max_seconds=0.5).feed(stream)
    assert info.value.code is ErrorCode.INVALID_REQUEST and "0.5 s of audio" in info.value.message
