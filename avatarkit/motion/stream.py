"""The streaming interface of an audio-to-motion model.

A :class:`MotionStream` is fed PCM as it arrives (any chunk size, odd byte counts
included) and returns every frame whose audio (plus the model's lookahead) is complete.
``finish()`` flushes the tail so the frames cover the whole utterance:
``ceil(samples * fps / sample_rate)`` frames in all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from avatarkit.errors import AvatarKitError, ErrorCode

if TYPE_CHECKING:  # numpy: not for a module whose constants the CLI's parser reads
    from avatarkit.motion.frame import MotionFrame

SUPPORTED_SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
SUPPORTED_FPS = (25, 30, 60)


def check_sample_rate(rate: int, what: str = "sample rate") -> int:
    """``rate`` if the motion model takes it, else ``unsupportedSampleRate`` naming the
    supported rates (the one check every entry point shares)."""
    if rate not in SUPPORTED_SAMPLE_RATES:
        raise AvatarKitError(
            ErrorCode.UNSUPPORTED_SAMPLE_RATE,
            f"{what} {rate!r} Hz not supported (use one of {_listed(SUPPORTED_SAMPLE_RATES)})",
        )
    return rate


def check_fps(fps: int, what: str = "fps") -> int:
    """``fps`` if motion can be produced at that frame rate, else ``invalidRequest``."""
    if fps not in SUPPORTED_FPS:
        raise AvatarKitError(
            ErrorCode.INVALID_REQUEST,
            f"{what} {fps!r} not supported (use one of {_listed(SUPPORTED_FPS)})",
        )
    return fps


def _listed(values: tuple[int, ...]) -> str:
    return ", ".join(map(str, values))


class MotionStream(Protocol):
    sample_rate: int
    fps: int

    def push(self, pcm: bytes) -> list[MotionFrame]:
        """Feed mono PCM s16le bytes; returns the frames that became ready."""
        ...

    def finish(self) -> list[MotionFrame]:
        """End of utterance: returns the remaining frames; the stream is then spent."""
        ...


MODELS = ("lipsync", "envelope")
DEFAULT_MODEL = "lipsync"  # the trained model; "envelope" is the loudness baseline


def create_stream(
    sample_rate: int = 16000, fps: int = 30, model: str = DEFAULT_MODEL
) -> MotionStream:
    """A fresh stream of ``model`` for one utterance.

    ``"lipsync"`` needs its weights: if they are missing or unreadable this raises
    ``motionModelUnavailable`` rather than degrading to the envelope, which a caller gets
    only by asking for it by name.
    """
    if model == "lipsync":
        from avatarkit.motion.lipsync import LipSyncStream

        return LipSyncStream(sample_rate, fps)
    if model == "envelope":
        from avatarkit.motion.envelope import EnvelopeStream

        return EnvelopeStream(sample_rate, fps)
    raise AvatarKitError(
        ErrorCode.INVALID_REQUEST,
        f"unknown motion model {model!r}; choose one of {', '.join(MODELS)}",
    )


def require_model(model: str = DEFAULT_MODEL) -> None:
    """Fail now, with the same coded error, if ``create_stream(model=model)`` would fail:
    commands check before they start serving or rendering, not on the first utterance."""
    create_stream(model=model)
