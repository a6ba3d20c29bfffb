"""WAV files in every layout the CLI reads, written byte by byte (no encoder in between)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

RATE = 16000
# 0.25 s of a 220 Hz tone at half scale, as float in -1..1
SIGNAL = 0.5 * np.sin(2 * np.pi * 220 * np.arange(RATE // 4) / RATE)
_EXT_GUID_TAIL = bytes.fromhex(
    "000000001000800000aa00389b71"
)  # KSDATAFORMAT_SUBTYPE_* after the tag


def encode(signal: np.ndarray, kind: str) -> tuple[bytes, int, int]:
    """-> (raw frames, format tag, bits). kind: u8, s16, s24, s32 or f32."""
    if kind == "u8":
        return np.round(signal * 127 + 128).astype(np.uint8).tobytes(), 1, 8
    if kind == "s16":
        return np.round(signal * 32767).astype("<i2").tobytes(), 1, 16
    if kind == "s24":
        v = np.round(signal * (2**23 - 1)).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        return v.tobytes(), 1, 24
    if kind == "s32":
        return np.round(signal * (2**31 - 1)).astype("<i4").tobytes(), 1, 32
    if kind == "f32":
        return signal.astype("<f4").tobytes(), 3, 32
    raise ValueError(kind)


def write(
    path: Path,
    kind: str = "s16",
    channels: int = 1,
    extensible: bool = False,
    rate: int = RATE,
    signal: np.ndarray = SIGNAL,
    data_size: int | None = None,
    block_align: int | None = None,
) -> Path:
    """``data_size``/``block_align`` override the header (to write broken files)."""
    frames = np.repeat(signal[:, None], channels, axis=1).reshape(-1)
    raw, tag, bits = encode(frames, kind)
    align = channels * bits // 8 if block_align is None else block_align
    if extensible:
        fmt = struct.pack(
            "<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits, 22, bits, 0
        )
        fmt += struct.pack("<H", tag) + _EXT_GUID_TAIL
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    size = len(raw) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", size)
        + raw
    )
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
