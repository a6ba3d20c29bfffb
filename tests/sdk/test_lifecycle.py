"""The playback lifecycle (issue 18): one phase, guarded transitions, a stall shown as
buffering, and only resume() or interrupt() ending a pause."""

from __future__ import annotations

import pytest

from avatarkit.controller.lifecycle import IllegalTransition, Lifecycle, Phase
from avatarkit.controller.states import ConversationState as S
from avatarkit.controller.states import StateReason as R


@pytest.fixture
def life():
    events: list[S] = []
    return Lifecycle(lambda state, _reason: events.append(state)), events


def test_a_stall_is_shown_as_buffering_and_fires_once(life):
    lifecycle, events = life
    for phase in (Phase.BUFFERING, Phase.PLAYING, Phase.STALLED, Phase.BUFFERING, Phase.PLAYING):
        lifecycle.advance(phase, R.DATA_RECEIVED)
    assert events == [S.BUFFERING, S.PLAYING, S.BUFFERING, S.PLAYING]


def test_while_paused_the_clock_only_moves_what_resume_returns_to(life):
    lifecycle, events = life
    lifecycle.advance(Phase.PLAYING, R.JITTER_BUFFER_FILLED)
    lifecycle.pause()
    lifecycle.advance(Phase.IDLE, R.PLAYBACK_END)  # shown: still paused
    assert lifecycle.phase is Phase.PAUSED and lifecycle.running is Phase.IDLE
    lifecycle.resume(Phase.BUFFERING)
    assert lifecycle.state == S.BUFFERING
    assert events == [S.PLAYING, S.PAUSED, S.BUFFERING]


def test_interrupt_ends_a_pause_and_the_guard_refuses_the_rest(life):
    lifecycle, _ = life
    lifecycle.pause()
    with pytest.raises(IllegalTransition):
        lifecycle._enter(Phase.PLAYING, R.DATA_RECEIVED)  # a pause ended behind resume's back
    with pytest.raises(IllegalTransition):
        lifecycle.advance(Phase.PAUSED, R.USER_ACTION)
    lifecycle.reset()
    assert lifecycle.phase is Phase.IDLE and not lifecycle.paused
