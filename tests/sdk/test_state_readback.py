"""State that reads back what you just did (issue 17): right after ``interrupt()``,
``pause()`` or ``resume()`` the state property says so, from any thread; the events still
fire on the render thread at the next tick."""

from __future__ import annotations

import threading

import pytest

from avatarkit.controller import AvatarController, ConversationState

IDLE, PLAYING, PAUSED = ConversationState.IDLE, ConversationState.PLAYING, ConversationState.PAUSED


@pytest.fixture
def playing(sdk, rig, make_speech, motion_payloads):
    sdk(driving_mode="backend")
    controller = AvatarController("avatar-1", rig.mixer)
    events: list[ConversationState] = []
    controller.on_conversation_state = lambda state, _reason: events.append(state)
    pcm = make_speech(2.0)
    cid = controller.yield_audio_data(pcm, end=True)
    controller.yield_frames_data(motion_payloads(pcm), cid)
    rig.step(controller, frames=5)
    assert controller.conversation_state == PLAYING
    events.clear()
    yield controller, events
    controller.dispose()


def on_another_thread(call) -> None:
    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=5)


def test_interrupt_reads_back_idle_at_once(playing, rig):
    controller, events = playing
    on_another_thread(controller.interrupt)
    assert controller.conversation_state == IDLE
    assert events == []  # the event waits for the render thread
    rig.step(controller)
    assert controller.conversation_state == IDLE and events == [IDLE]


def test_pause_and_resume_read_back_at_once(playing, rig):
    controller, events = playing
    on_another_thread(controller.pause)
    assert controller.conversation_state == PAUSED
    rig.step(controller, frames=3)
    assert controller.conversation_state == PAUSED and events == [PAUSED]
    on_another_thread(controller.resume)
    assert controller.conversation_state == PLAYING
    rig.step(controller)
    assert controller.conversation_state == PLAYING and events == [PAUSED, PLAYING]


def test_the_last_call_wins_before_a_tick(playing, rig):
    controller, events = playing
    controller.pause()
    controller.resume()
    assert controller.conversation_state == PLAYING
    controller.pause()
    assert controller.conversation_state == PAUSED
    rig.step(controller)
    assert controller.conversation_state == PAUSED
    controller.interrupt()  # interrupt while paused: idle, and the next utterance plays
    assert controller.conversation_state == IDLE
    rig.step(controller)
    assert controller.conversation_state == IDLE and events[-1] == IDLE


def test_resume_when_not_paused_changes_nothing(playing, rig):
    controller, events = playing
    controller.resume()
    assert controller.conversation_state == PLAYING
    rig.step(controller)
    assert events == []
