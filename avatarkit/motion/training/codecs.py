"""Low-bitrate codec round trips (Opus, MP3, AAC through PyAV) for training augmentation:
speech arrives from TTS services and calls compressed. The decoded audio is re-aligned to the
input (encoder delay differs per codec), so the phone timing stays exact.
"""

from __future__ import annotations

import random
from typing import cast

import av
import numpy as np
from av.audio.stream import AudioStream
from scipy import signal

# codec, container, rate it runs at, bitrates (bit/s)
CODECS = (
    ("libopus", "ogg", 48000, (12000, 16000, 24000, 32000)),
    ("libmp3lame", "mp3", 22050, (24000, 32000, 48000)),
    ("aac", "adts", 24000, (24000, 32000, 48000)),
)


def round_trip(x: np.ndarray, rate: int, rng: random.Random) -> np.ndarray:
    """``x`` (float, -1..1, at ``rate``) through one random codec and back, same length."""
    codec, container, codec_rate, bitrates = rng.choice(CODECS)
    g = np.gcd(codec_rate, rate)
    y = signal.resample_poly(x, codec_rate // g, rate // g).astype(np.float32)
    decoded, _ = decode_mono(_encode(y, codec, container, codec_rate, rng.choice(bitrates)))
    decoded = _aligned(decoded, y)
    out = signal.resample_poly(decoded, rate // g, codec_rate // g)
    return np.pad(out, (0, max(0, len(x) - len(out))))[: len(x)]


def _encode(y: np.ndarray, codec: str, container: str, rate: int, bitrate: int) -> bytes:
    import io

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = cast(AudioStream, out.add_stream(codec, rate=rate, layout="mono"))
        stream.bit_rate = bitrate
        frame_size = stream.codec_context.frame_size or 1024
        pcm = np.clip(y, -1, 1).astype(np.float32)
        fmt = stream.codec_context.format.name
        for start in range(0, len(pcm), frame_size):
            part = pcm[start : start + frame_size]
            if len(part) < frame_size:
                part = np.pad(part, (0, frame_size - len(part)))
            frame = av.AudioFrame.from_ndarray(_as_format(part, fmt), format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def _as_format(part: np.ndarray, fmt: str) -> np.ndarray:
    """Mono samples as the encoder wants them (packed and planar are one row for mono)."""
    if fmt.startswith("s16"):
        return (part * 32767).astype(np.int16)[None]
    if fmt.startswith("s32"):
        return (part * 2147483647).astype(np.int32)[None]
    return part[None]  # flt / fltp


def decode_mono(data: bytes) -> tuple[np.ndarray, int]:
    """Any audio file PyAV reads: float32 mono (channels averaged) and its sample rate."""
    import io

    chunks = []
    # Metadata is not ours to read, and tags need not be UTF-8 (a Latin-1 title in a WAV's
    # INFO list; a low-bitrate round trip once produced such bytes): PyAV's strict default
    # would refuse the audio over them.
    with av.open(io.BytesIO(data), "r", metadata_errors="replace") as src:
        rate = src.streams.audio[0].rate
        for frame in src.decode(audio=0):
            a = frame.to_ndarray()
            if a.dtype.kind == "i":
                a = a.astype(np.float32) / float(2 ** (8 * a.itemsize - 1))
            if frame.format.is_packed:  # one row of interleaved samples: [frames, channels]
                a = a.reshape(-1, len(frame.layout.channels)).T
            chunks.append(a.mean(axis=0))
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), int(rate)


def _aligned(decoded: np.ndarray, reference: np.ndarray, max_shift: int = 4096) -> np.ndarray:
    """``decoded`` shifted so it lines up with ``reference`` (the codec's delay removed)."""
    n = min(len(reference), len(decoded))
    if n < 256:
        return decoded
    corr = signal.correlate(decoded[: n + max_shift], reference[:n], mode="valid", method="fft")
    shift = int(np.argmax(corr[: max_shift + 1]))
    return decoded[shift:]
