"""The controller's two independent state machines, their reasons, and buffer health."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConnectionState(StrEnum):
    """Direct Mode connection to the Motion Server (Backend Mode stays ``disconnected``)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


class ConversationState(StrEnum):
    """Playback of the current utterance; never inferred from the connection state."""

    IDLE = "idle"  # idle animation, nothing to play
    BUFFERING = "buffering"  # speech received, jitter buffer not yet covered (or stalled)
    PLAYING = "playing"  # audio + speaking animation
    PAUSED = "paused"  # clock frozen, buffers kept


class StateReason(StrEnum):
    """Why a state changed (passed to the state callbacks)."""

    USER_ACTION = "userAction"
    DATA_RECEIVED = "dataReceived"
    JITTER_BUFFER_FILLED = "jitterBufferFilled"
    PLAYBACK_END = "playbackEnd"
    MOTION_UNDERRUN = "motionUnderrun"
    NETWORK_ERROR = "networkError"
    SERVER_ERROR = "serverError"
    TOKEN_ERROR = "tokenError"


@dataclass(frozen=True, slots=True)
class BufferHealth:
    """What is queued ahead of the playback position, and how often it ran dry.

    ``audio_underruns``: the device drained the audio while its utterance had not ended.
    ``motion_underruns``: playback passed the last received motion frame.
    """

    audio_ms: float = 0.0
    motion_ms: float = 0.0
    audio_underruns: int = 0
    motion_underruns: int = 0

    @property
    def underruns(self) -> int:
        return self.audio_underruns + self.motion_underruns
