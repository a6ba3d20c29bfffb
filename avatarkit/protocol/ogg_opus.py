"""Streaming Ogg Opus -> PCM s16le: the server decodes sessions configured with
``AUDIO_FORMAT_OGG_OPUS``, the client decodes the same bytes for its own playback.

One continuous Ogg stream per utterance (as the public SDK sends it), fed in arbitrary
byte chunks. Ogg pages are split into packets here (RFC 3533: a packet is a run of
255-byte lacing segments ended by a shorter one, possibly spanning pages); the packets
are decoded by libopus through PyAV and resampled to the session's sample rate. The
decoder drops the OpusHead's pre-skip (encoder priming) itself; the end-of-stream page's
granule position trims the last packet's padding, as a demuxer would.
"""

from __future__ import annotations

import struct

import av
import numpy as np

from avatarkit.errors import AvatarKitError, ErrorCode

_PAGE_HEADER = struct.Struct(
    "<4sBBqIIIB"
)  # capture, version, type, granule, serial, seq, crc, segments
_OPUS_RATE = 48000
MAX_BUFFERED_BYTES = (
    1 << 20
)  # an Ogg page is at most ~64 KiB, an Opus packet ~60 KiB: more is garbage


def _invalid(detail: str) -> AvatarKitError:
    return AvatarKitError(
        ErrorCode.INVALID_AUDIO, f"invalid audio: not a mono Ogg Opus stream ({detail})"
    )


class OggOpusDecoder:
    def __init__(self, sample_rate: int, max_seconds: float = 600.0) -> None:
        self.sample_rate = sample_rate
        self.max_samples = int(max_seconds * sample_rate)  # bounds a tiny stream decoding huge
        self._buffer = bytearray()
        self._packet = bytearray()  # a packet continued across pages
        self._packets_seen = 0
        self._pre_skip = 0
        self._emitted = 0  # output samples so far
        self._end: int | None = None  # total output samples, known from the last page
        self._codec: av.AudioCodecContext | None = None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)

    def feed(self, data: bytes) -> bytes:
        """Ogg bytes in (any split), PCM s16le mono at ``sample_rate`` out."""
        self._buffer += data  # ``data`` itself is bounded by the server's message size limit
        out = bytearray()
        for packet in self._pages():
            out += self._on_packet(packet)
            if self._emitted > self.max_samples:
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST,
                    f"utterance exceeds {self.max_samples / self.sample_rate:g} s of audio",
                )
        # Checked after parsing: what is left is one partial page, so a message of complete
        # pages near the message size limit is fine whatever was buffered before it.
        if len(self._buffer) > MAX_BUFFERED_BYTES:
            raise _invalid("no complete Ogg page within 1 MiB")
        return bytes(out)

    def finish(self) -> bytes:
        """End of the stream: flush the decoder and resampler."""
        if self._buffer:
            raise _invalid(f"{len(self._buffer)} bytes of a truncated Ogg page at the end")
        out = bytearray()
        if self._codec is not None:
            out += self._resample(self._codec.decode(None))
            out += self._emit(
                b"".join(self._frame_bytes(f) for f in self._resampler.resample(None))
            )
        return bytes(out)

    def _pages(self):
        """Complete packets from the complete pages buffered so far."""
        buf = self._buffer
        while len(buf) >= _PAGE_HEADER.size:
            capture, version, kind, granule, _serial, _seq, _crc, count = _PAGE_HEADER.unpack_from(
                buf
            )
            if capture != b"OggS" or version != 0:
                raise _invalid("bad page header")
            header_end = _PAGE_HEADER.size + count
            if len(buf) < header_end:
                return
            lacing = buf[_PAGE_HEADER.size : header_end]
            page_end = header_end + sum(lacing)
            if len(buf) < page_end:
                return
            if kind & 0x04 and self._packets_seen:  # end of stream: its granule is the length
                self._end = round(max(0, granule - self._pre_skip) * self.sample_rate / _OPUS_RATE)
            offset = header_end
            for size in lacing:
                self._packet += buf[offset : offset + size]
                offset += size
                if len(self._packet) > MAX_BUFFERED_BYTES:  # it would grow for as long as the
                    raise _invalid("an Ogg packet over 1 MiB")  # client sends: nothing decodes
                if size < 255:  # the packet ends here
                    yield bytes(self._packet)
                    self._packet.clear()
            del buf[:page_end]

    def _on_packet(self, packet: bytes) -> bytes:
        self._packets_seen += 1
        if self._packets_seen == 1:
            if not packet.startswith(b"OpusHead") or len(packet) < 19:
                raise _invalid("the first packet is not an OpusHead")
            if packet[9] != 1:
                raise _invalid(f"{packet[9]} channels; mono is expected")
            self._pre_skip = int.from_bytes(packet[10:12], "little")
            self._codec = av.CodecContext.create("libopus", "r")
            self._codec.extradata = packet
            self._codec.sample_rate = _OPUS_RATE
            self._codec.layout = "mono"
            return b""
        if self._packets_seen == 2:
            if not packet.startswith(b"OpusTags"):
                raise _invalid("the second packet is not OpusTags")
            return b""
        assert self._codec is not None
        try:
            frames = self._codec.decode(av.Packet(packet))
        except av.error.FFmpegError as exc:
            raise _invalid(f"undecodable Opus packet ({exc})") from exc
        return self._resample(frames)

    def _resample(self, frames: list[av.AudioFrame]) -> bytes:
        return self._emit(
            b"".join(self._frame_bytes(r) for f in frames for r in self._resampler.resample(f))
        )

    @staticmethod
    def _frame_bytes(frame: av.AudioFrame) -> bytes:
        return np.ascontiguousarray(frame.to_ndarray()[0, : frame.samples], dtype="<i2").tobytes()

    def _emit(self, pcm: bytes) -> bytes:
        if self._end is not None:
            pcm = pcm[: max(0, self._end - self._emitted) * 2]
        self._emitted += len(pcm) // 2
        return pcm
