"""The avatar controller: connection, jitter buffer, audio-clock playback, states, events."""

from __future__ import annotations

from avatarkit.controller.controller import AvatarController
from avatarkit.controller.pose import FacePose
from avatarkit.controller.states import (
    BufferHealth,
    ConnectionState,
    ConversationState,
    StateReason,
)

__all__ = [
    "AvatarController",
    "BufferHealth",
    "ConnectionState",
    "ConversationState",
    "FacePose",
    "StateReason",
]
