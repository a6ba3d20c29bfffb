"""The playback lifecycle: one phase, changed only through guarded transitions.

``Phase`` is what playback is doing; the public ``ConversationState`` is derived from it
(a strict-sync stall shows as ``buffering``). ``PAUSED`` is entered only by ``pause()``
and left only by ``resume()`` or ``interrupt()``; while paused, playback keeps tracking
where it *would* be (``running``), which is what ``resume()`` returns to. Everything here
runs on the render thread; ``running`` is one attribute, so other threads may read it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from avatarkit.controller.states import ConversationState, StateReason


class Phase(StrEnum):
    IDLE = "idle"  # nothing to play
    BUFFERING = "buffering"  # an utterance waits for the jitter buffer to fill
    PLAYING = "playing"  # audio at the audio clock, the face following it
    STALLED = "stalled"  # strict sync: motion ran short, audio held back until it refills
    PAUSED = "paused"  # clock frozen by the app, buffers kept

    @property
    def state(self) -> ConversationState:
        return ConversationState.BUFFERING if self is Phase.STALLED else ConversationState(self)


RUNNING = frozenset({Phase.IDLE, Phase.BUFFERING, Phase.PLAYING, Phase.STALLED})


class IllegalTransition(RuntimeError):
    """A bug in playback: a transition the lifecycle does not have."""


class Lifecycle:
    """The phase of one avatar's playback. ``on_state(state, reason)`` fires when the
    public conversation state changes."""

    def __init__(self, on_state: Callable[[ConversationState, StateReason], None]) -> None:
        self.phase = Phase.IDLE
        self.running = Phase.IDLE  # where playback is, or would be when not paused
        self._on_state = on_state

    @property
    def paused(self) -> bool:
        return self.phase is Phase.PAUSED

    @property
    def state(self) -> ConversationState:
        return self.phase.state

    def advance(self, running: Phase, reason: StateReason) -> None:
        """The clock moved playback to ``running`` (shown unless paused)."""
        if running not in RUNNING:
            raise IllegalTransition(f"advance to {running}: only running phases")
        self.running = running
        if not self.paused:
            self._enter(running, reason)

    def pause(self) -> None:
        self._enter(Phase.PAUSED, StateReason.USER_ACTION)

    def resume(self, running: Phase) -> None:
        """Leave a pause for ``running``: where playback is now (its data may have changed
        since the last advance). Not paused: the same as an advance."""
        if running not in RUNNING:
            raise IllegalTransition(f"resume to {running}: only running phases")
        self.running = running
        self._enter(running, StateReason.USER_ACTION, leaving_pause=True)

    def reset(self) -> None:
        """``interrupt()``: back to idle from any phase, unpaused."""
        self.running = Phase.IDLE
        self._enter(Phase.IDLE, StateReason.USER_ACTION, leaving_pause=True)

    def _enter(self, phase: Phase, reason: StateReason, leaving_pause: bool = False) -> None:
        # The one guard: only resume() and interrupt() end a pause.
        if self.paused and phase is not Phase.PAUSED and not leaving_pause:
            raise IllegalTransition(f"{self.phase} -> {phase} without resume()")
        before, self.phase = self.phase.state, phase
        if phase.state != before:
            self._on_state(phase.state, reason)
