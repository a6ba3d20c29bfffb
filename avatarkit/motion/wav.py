"""Reading speech WAVs: mono s16le at a supported rate, or a clear error.

The one reader every CLI command uses (``motion``, ``render``), so a file one accepts
the other accepts too."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion.stream import check_sample_rate


@dataclass(slots=True)
class SpeechAudio:
    pcm: np.ndarray  # int16 mono
    sample_rate: int
    notes: list[str]  # conversions applied ("downmixed 2 channels", "24-bit -> 16-bit")


_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_UNKNOWN_SIZE = 0xFFFFFFFF  # what streaming writers put in a size they cannot know


def read_wav(path: str | Path) -> SpeechAudio:
    """PCM WAV -> int16 mono: 8/16/24/32-bit integer or 32-bit float, any channel count,
    plain or WAVE_FORMAT_EXTENSIBLE.

    Multichannel audio is downmixed (channel mean); other sample formats are converted
    to 16-bit. Compressed WAVs, unsupported rates, and truncated or self-contradicting
    files are refused (``AvatarKitError``), never played as whatever bytes are there.
    """
    path = Path(path)
    if path.is_dir():
        raise AvatarKitError(ErrorCode.INVALID_AUDIO, f"{path} is a directory; name a .wav file")
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise AvatarKitError(ErrorCode.INVALID_AUDIO, f"{path}: no such file") from exc
    except OSError as exc:
        raise AvatarKitError(
            ErrorCode.INVALID_AUDIO, f"{path}: cannot read ({exc.strerror or exc})"
        ) from exc
    fmt, raw = _riff_chunks(path, data)
    tag, channels, rate = struct.unpack_from("<HHI", fmt)
    block_align, bits = struct.unpack_from("<HH", fmt, 12)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the sub-format GUID starts with the tag
    if tag not in (_PCM, _FLOAT) or (tag == _FLOAT and bits != 32):
        kind = f"{bits}-bit float" if tag == _FLOAT else f"format tag {tag:#x} (compressed)"
        raise AvatarKitError(
            ErrorCode.UNSUPPORTED_AUDIO_FORMAT,
            f"{path}: {kind} WAV is not supported; use integer PCM or 32-bit float",
        )
    check_sample_rate(rate, f"{path}: sample rate")
    width = bits // 8
    if bits % 8 or width not in (1, 2, 3, 4) or channels < 1:
        raise AvatarKitError(
            ErrorCode.UNSUPPORTED_AUDIO_FORMAT,
            f"{path}: {bits}-bit x {channels} channels is not supported",
        )
    if block_align != width * channels:
        raise AvatarKitError(
            ErrorCode.INVALID_AUDIO,
            f"{path}: inconsistent header "
            f"({block_align} bytes per frame for {channels} x {bits}-bit)",
        )
    if len(raw) % block_align:
        raise AvatarKitError(
            ErrorCode.INVALID_AUDIO,
            f"{path}: the audio data ends mid-frame ({len(raw)} bytes, {block_align} per frame)",
        )
    frames = len(raw) // block_align
    if frames == 0:
        raise AvatarKitError(ErrorCode.NO_AUDIO, f"{path}: the file holds no audio")
    notes = []
    if tag == _FLOAT:
        samples = np.frombuffer(raw, "<f4").astype(np.float64).reshape(frames, channels)
        if not np.isfinite(samples).all():
            raise AvatarKitError(
                ErrorCode.INVALID_AUDIO, f"{path}: float samples that are not finite"
            )
        notes.append("converted 32-bit float to 16-bit")
    else:
        samples = _to_float(raw, width).reshape(frames, channels)
    if tag == _PCM and width != 2:
        notes.append(f"converted {bits}-bit to 16-bit")
    if channels > 1:
        notes.append(f"downmixed {channels} channels to mono")
    mono = samples.mean(axis=1)
    pcm = np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)
    return SpeechAudio(pcm, rate, notes)


def _riff_chunks(path: Path, data: bytes) -> tuple[bytes, bytes]:
    """The ``fmt `` and ``data`` chunks of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AvatarKitError(
            ErrorCode.INVALID_AUDIO, f"{path}: not a WAV file (no RIFF/WAVE header)"
        )
    fmt = body = None
    pos = 12
    while pos + 8 <= len(data):
        name, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if name == b"data" and size == _UNKNOWN_SIZE:
            size = len(data) - pos - 8  # written to a pipe: the size was never filled in
        chunk = data[pos + 8 : pos + 8 + size]
        if len(chunk) < size and name not in (b"fmt ", b"data"):
            break  # a cut-off trailing tag (LIST, id3) takes no audio with it
        if len(chunk) < size:  # a cut-off copy or download: refuse rather than play a part
            raise AvatarKitError(
                ErrorCode.INVALID_AUDIO,
                f"{path}: truncated WAV (the {name.decode('latin-1').strip()!r} chunk says {size} "
                f"bytes, {len(chunk)} are there)",
            )
        if name == b"fmt ":
            fmt = chunk
        elif name == b"data":
            body = chunk
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or len(fmt) < 16 or body is None:
        raise AvatarKitError(
            ErrorCode.INVALID_AUDIO, f"{path}: malformed WAV (missing fmt or data chunk)"
        )
    return fmt, body


def _to_float(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes -> float64 in -1..1 (8-bit WAV is unsigned)."""
    if width == 1:
        return (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value / float(1 << 23)
    dtype = "<i2" if width == 2 else "<i4"
    return np.frombuffer(raw, dtype).astype(np.float64) / float(1 << (8 * width - 1))
