"""Regression tests from the real-time client-path review."""

from __future__ import annotations

from avatarkit.controller import AvatarController, ConversationState


def test_empty_end_only_conversation_does_not_block_the_next(
    sdk, rig, make_speech, motion_payloads
):
    # A lone end=True with no audio (a second end, or an end right after interrupt) makes a
    # conversation with zero samples: it can never fill the jitter buffer, and before the
    # fix it stayed BUFFERING at the head of the queue forever, blocking every later one.
    sdk(driving_mode="backend")
    controller = AvatarController("avatar-1", rig.mixer)
    try:
        pcm = make_speech(0.5)
        first = controller.yield_audio_data(pcm, end=True)
        controller.yield_frames_data(motion_payloads(pcm), first)
        empty = controller.yield_audio_data(b"", end=True)  # a stray second end
        assert empty != first
        rig.step(controller, frames=25)
        assert controller.conversation_state == ConversationState.IDLE
        pcm2 = make_speech(0.5)
        second = controller.yield_audio_data(pcm2, end=True)
        controller.yield_frames_data(motion_payloads(pcm2), second)
        rig.step(controller, frames=25)
        assert controller._source.consumed == (len(pcm) + len(pcm2)) // 2
        assert controller.conversation_state == ConversationState.IDLE
    finally:
        controller.dispose()


def test_direct_transport_bookkeeping_stays_bounded_across_interrupts():
    # Every interrupted conversation used to leave its id in _interrupted, its sample
    # count in _sent and its wire request in _by_req forever (the server's end frame for
    # an interrupted request is dropped before the bookkeeping is cleaned): a long-lived
    # client that barges in a lot grew without bound.
    import asyncio

    from avatarkit.controller.direct import DirectSink, DirectTransport

    class FakeWs:
        def __init__(self):
            self.sent = 0

        async def send(self, data):
            self.sent += 1

    sink = DirectSink(lambda *a: None, lambda *a: None, lambda *a: None)
    transport = DirectTransport("a", "app", "ws://127.0.0.1:1", 16000, lambda: "t", sink)
    try:
        ws = FakeWs()
        rounds = 500
        for i in range(rounds):
            transport.send_audio(f"c{i}", b"\0\0" * 160, False)
            transport.interrupt(f"c{i}")

        async def drain():
            writer = asyncio.create_task(transport._write(ws))
            while not transport._outbox.empty() or transport._unsent is not None:
                await asyncio.sleep(0.001)
            writer.cancel()

        asyncio.run_coroutine_threadsafe(drain(), transport._loop).result(timeout=10)
        assert ws.sent == 2 * rounds
        assert len(transport._sent) == 0
        assert len(transport._by_req) == 0
        assert len(transport._interrupted) <= 64
        # a late audio chunk of a recently interrupted conversation is still refused
        transport.send_audio(f"c{rounds - 1}", b"\0\0" * 160, False)
        asyncio.run_coroutine_threadsafe(drain(), transport._loop).result(timeout=10)
        assert ws.sent == 2 * rounds
    finally:
        transport.close()


def test_audio_mixer_is_not_kept_when_its_device_fails_to_open():
    # The process mixer was stored before its device opened: when opening failed, the
    # next call handed out a mixer no device pulls, so every clock froze silently.
    import pytest

    from avatarkit.sdk import AvatarSDK, Configuration
    from engine.errors import EngineError

    AvatarSDK.initialize("test-app", Configuration(audio_device="no-such-device"))
    try:
        for _ in range(2):
            with pytest.raises(EngineError):
                AvatarSDK.audio_mixer()
        assert AvatarSDK._mixer is None
    finally:
        AvatarSDK.cleanup()


def test_a_disposed_view_left_in_the_scene_does_not_upload_again(sdk, rig):
    # dispose() released the GL objects, but a view still attached to its entity kept
    # being updated and rendered: the next frame re-uploaded the asset and new morph
    # buffers, which nothing ever released (the view's dispose() had already run).
    from avatarkit.manager import AvatarManager
    from avatarkit.paths import AVATARS_DIR
    from avatarkit.view import AvatarView
    from engine import App, ManualClock

    sdk(driving_mode="backend")
    avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")
    with App.headless(size=(64, 64), clock=ManualClock(30), samples=0) as app:
        view = app.scene.create_entity("host").add_component(AvatarView(avatar, mixer=rig.mixer))
        app.step()
        assert len(app.renderer._assets) == 1
        view.dispose()
        assert len(app.renderer._assets) == 0
        app.step()
        app.step()
        assert len(app.renderer._assets) == 0
        assert not view.model._mesh_weights


def test_head_turns_on_a_model_whose_head_node_has_a_matrix(sdk, rig, tmp_path):
    # glTF nodes may carry a ``matrix`` instead of TRS; the local matrix then wins over
    # ``rotation``, so the view's head turn (speech, idle, look_at) was silently lost.
    import numpy as np

    from avatarkit.avatar import Avatar
    from avatarkit.view import AvatarView
    from engine.gltf_write import GltfBuilder

    positions = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32) * 0.1
    builder = GltfBuilder()
    mesh = builder.add_mesh(
        [
            {
                "positions": positions,
                "indices": np.array([0, 1, 2, 0, 2, 3]),
                "targets": [{"POSITION": np.full((4, 3), 0.01, np.float32)}],
            }
        ],
        name="head",
        target_names=["jawOpen"],
    )
    rest = np.diag([2.0, 2.0, 2.0, 1.0]).astype(np.float32)
    rest[:3, 3] = (0.0, 1.5, 0.0)
    builder.add_node("head", mesh=mesh, matrix=rest)
    path = builder.save(tmp_path / "matrix_head.glb")

    sdk(driving_mode="backend")
    view = AvatarView(Avatar.from_file(path), mixer=rig.mixer, idle=False)
    try:
        view.look_at(0.8, 0.0, head=1.0)
        for _ in range(30):
            view.update(1 / 30)
        local = view.model.nodes[0].local_matrix()
        assert np.allclose(local[:3, 3], rest[:3, 3], atol=1e-5)  # still where it was
        assert np.allclose(np.linalg.norm(local[:3, :3], axis=0), 2.0, atol=1e-4)  # same scale
        assert abs(local[0, 2]) > 0.5  # but turned about y (yaw)
        view.look_at(None)
        for _ in range(120):
            view.update(1 / 30)
        assert np.allclose(view.model.nodes[0].local_matrix(), rest, atol=1e-3)  # back at rest
    finally:
        view.dispose()


def test_interrupt_between_drain_and_feed_plays_nothing_more(
    sdk, rig, make_speech, motion_payloads
):
    # interrupt() (any thread) clears the mixer source at once, but the render thread
    # may be inside tick() between draining its inbox and feeding the source: it then
    # wrote the audio it had just drained into the freshly cleared source, and that
    # stale speech played until the next tick.
    sdk(driving_mode="backend")
    controller = AvatarController("avatar-1", rig.mixer)
    try:
        pcm = make_speech(2.0)
        cid = controller.yield_audio_data(pcm[: 16000 * 2])  # the first second
        controller.yield_frames_data(motion_payloads(pcm), cid)
        rig.step(controller, frames=5)
        assert controller.conversation_state == ConversationState.PLAYING
        controller.yield_audio_data(pcm[16000 * 2 :])  # more arrives ...
        update = controller._playback.update

        def interrupted_update():
            controller.interrupt()  # ... and the user barges in, from another thread
            return update()

        controller._playback.update = interrupted_update
        controller.tick(1 / 30)
        controller._playback.update = update
        assert controller._source.queued == 0  # nothing of the old speech left to play
        played = controller._source.consumed
        rig.step(controller, frames=3)
        assert controller._source.consumed == played
        assert controller.conversation_state == ConversationState.IDLE
        # and the next utterance plays in full
        pcm2 = make_speech(0.5)
        second = controller.yield_audio_data(pcm2, end=True)
        controller.yield_frames_data(motion_payloads(pcm2), second)
        rig.step(controller, frames=25)
        assert controller._source.consumed == played + len(pcm2) // 2
    finally:
        controller.dispose()


def test_idle_head_motion_has_no_jump_when_the_schedule_wraps():
    # sample() wrapped t at SCHEDULE_SECONDS for every term, the continuous breathing and
    # drift sinusoids included: once an hour the idle head popped by a few degrees.
    import numpy as np

    from avatarkit.idle import SCHEDULE_SECONDS, IdleAnimator

    idle = IdleAnimator(seed=3)
    for k in (1, 2):
        wrap = k * SCHEDULE_SECONDS
        before, after = idle.sample(wrap - 1 / 60), idle.sample(wrap + 1 / 60)
        assert np.abs(after.head - before.head).max() < 2e-3
