"""What ``send`` / ``yield_audio_data`` take: mono PCM s16le, or an Ogg Opus stream.

PCM goes on as it is. Ogg Opus (``Configuration(audio_format="ogg_opus")``, or
``set_audio_format``) is one continuous Ogg stream per conversation, in chunks split
anywhere: the wire (Direct Mode) gets the bytes as they are, as the public protocol allows,
and the controller plays what they decode to, with the decoder the Motion Server uses, so
audio and motion are timed on the same samples.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.sdk import AudioFormat

if TYPE_CHECKING:
    from avatarkit.protocol.ogg_opus import OggOpusDecoder


class AudioInput:
    """The app's audio of the current conversation, validated (any thread)."""

    def __init__(self, audio_format: AudioFormat, sample_rate: int) -> None:
        self.format = audio_format
        self.sample_rate = sample_rate
        self._decoder: OggOpusDecoder | None = None  # of the current conversation's stream
        self._lock = threading.Lock()  # one decoder, fed in order

    def take(
        self, audio: bytes, end: bool, sample_rate: int | None, new_round: bool
    ) -> tuple[bytes, bytes]:
        """``(pcm to play, bytes for the wire)`` of one call, or the coded error that refuses
        it. ``new_round``: this call starts a conversation (a new Ogg stream)."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise AvatarKitError(
                ErrorCode.UNSUPPORTED_SAMPLE_RATE,
                f"audio at {sample_rate} Hz, session configured for {self.sample_rate} Hz "
                "(no resampling)",
            )
        if not isinstance(audio, bytes | bytearray | memoryview):
            raise AvatarKitError(
                ErrorCode.INVALID_AUDIO,
                f"audio must be {self.format} bytes, got {type(audio).__name__}",
            )
        data = bytes(audio)
        if not data and not end:
            raise AvatarKitError(
                ErrorCode.NO_AUDIO, "empty audio chunk (only the last, end=True chunk may be empty)"
            )
        if self.format is AudioFormat.PCM_S16LE:
            if len(data) % 2:
                raise AvatarKitError(
                    ErrorCode.INVALID_AUDIO, f"{len(data)} bytes is not whole 16-bit samples"
                )
            return data, data
        return self._decode(data, end, new_round), data

    def reset(self) -> None:
        """The conversation ended or was interrupted: the next audio is a new stream."""
        with self._lock:
            self._decoder = None

    def _decode(self, data: bytes, end: bool, new_round: bool) -> bytes:
        from avatarkit.protocol.ogg_opus import OggOpusDecoder  # PyAV loads only when used

        with self._lock:
            if new_round or self._decoder is None:
                self._decoder = OggOpusDecoder(self.sample_rate)
            decoder = self._decoder
            try:
                pcm = decoder.feed(data)
                if end:
                    pcm += decoder.finish()
            except AvatarKitError:
                self._decoder = None  # the stream is broken: the rest of it cannot decode
                raise
            if end:
                self._decoder = None
            return pcm
