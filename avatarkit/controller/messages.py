"""What crosses threads inside a controller: immutable messages, one class per kind.

An app thread or the network thread builds one and puts it in a queue; the owning thread
(the render thread for the controller's inbox, the network thread for the transport's
outbox) takes it out and dispatches with ``match``. Being frozen, a message can never be
changed by its sender after the hand-off; a field added to one kind is checked by the
type checker wherever that kind is matched.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from avatarkit.controller.states import ConnectionState, StateReason
from avatarkit.errors import AvatarKitError
from avatarkit.motion.frame import MotionFrame

# -- into the controller's inbox (drained by tick() on the render thread) ----------------


@dataclass(frozen=True, slots=True)
class Audio:
    """PCM s16le of one conversation, in order; ``end`` closes its audio.
    Also what the controller hands the transport's outbox in Direct Mode."""

    conversation: str
    pcm: bytes  # on the way to the wire: the bytes as sent (Ogg Opus for such a session)
    end: bool
    samples: int = -1  # the samples they play as (-1: len(pcm) // 2, PCM)


@dataclass(frozen=True, slots=True)
class Motion:
    """Motion frames of one conversation, placed ``offset`` seconds into its timeline
    (non-zero for a wire request re-issued after a reconnect); ``end`` closes its motion."""

    conversation: str
    frames: tuple[MotionFrame, ...]
    offset: float
    end: bool


@dataclass(frozen=True, slots=True)
class Interrupt:
    """``interrupt()``. Each user action carries ``seq``: the state the call promised at
    once is shown until the render thread has applied this very call."""

    seq: int


@dataclass(frozen=True, slots=True)
class Pause:
    seq: int


@dataclass(frozen=True, slots=True)
class Resume:
    seq: int


@dataclass(frozen=True, slots=True)
class Connection:
    """The Direct transport's connection changed (or ``close()`` was called)."""

    state: ConnectionState
    reason: StateReason


@dataclass(frozen=True, slots=True)
class Failure:
    """An error for the app's ``on_error`` (network thread, device thread, or a caller)."""

    error: AvatarKitError


UserAction = Interrupt | Pause | Resume
InboxMessage = Audio | Motion | Interrupt | Pause | Resume | Connection | Failure

# -- into the Direct transport's outbox (sent by its writer on the network thread) -------


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Stop the server's work on ``conversation`` and refuse its late audio and motion."""

    conversation: str


OutboxMessage = Audio | CancelRequest


@dataclass(frozen=True)
class DirectSink:
    """The Direct transport's way back into the controller: called on the network thread,
    each only builds an inbox message and enqueues it."""

    on_state: Callable[[ConnectionState, StateReason, AvatarKitError | None], None]
    on_motion: Callable[
        [str, list[MotionFrame], float, bool], None
    ]  # conversation, frames, offset s, end
    on_error: Callable[[AvatarKitError], None]


def new_req_id() -> str:
    """``YYYYMMDDHHMMSS_<random>``, the product's request id shape (a conversation id)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "_" + secrets.token_hex(6)
