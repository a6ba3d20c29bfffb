"""Client SDK thread races (issue 14): each test drives one race into its window on
purpose, so it fails on the unguarded code and passes on the guarded one."""

from __future__ import annotations

import threading
import time

import pytest

from avatarkit.controller import AvatarController, ConnectionState
from avatarkit.controller.direct import DirectSink, DirectTransport
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.sdk import AvatarSDK
from engine.audio import Mixer, NullDevice
from engine.audio.devices import PyAudioDevice

pytestmark = pytest.mark.timeout(30)

NOWHERE = "ws://127.0.0.1:9/v2/driveningress"  # refused at once: the transport keeps retrying


def retrying_controller(sdk, rig) -> AvatarController:
    """A started Direct controller that never connects (it stays connecting/reconnecting)."""
    sdk(ingress_url=NOWHERE, reconnect_attempts=10_000, reconnect_backoff_s=0.02)
    AvatarSDK.set_session_token("token")
    controller = AvatarController("avatar-1", rig.mixer)
    controller.start()
    return controller


def bare_transport(sink: DirectSink, **kwargs) -> DirectTransport:
    return DirectTransport("avatar-1", "app", NOWHERE, 16000, lambda: "token", sink, **kwargs)


def null_sink(on_state=None) -> DirectSink:
    return DirectSink(on_state or (lambda *a: None), lambda *a: None, lambda e: None)


class ClosingOnRead:
    """Stands in for the transport: reading ``state`` closes the controller on another
    thread first, which puts ``close()`` exactly between a caller's check and its use."""

    def __init__(self, controller: AvatarController) -> None:
        self._controller, self._real = controller, controller._mode.transport

    @property
    def state(self) -> ConnectionState:
        state = self._real.state
        closer = threading.Thread(target=self._controller.close)
        closer.start()
        closer.join(timeout=10)
        return state

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_send_racing_close_is_a_coded_error(sdk, rig):
    controller = retrying_controller(sdk, rig)
    controller._mode.transport = ClosingOnRead(controller)
    with pytest.raises(AvatarKitError) as err:
        controller.send(b"\0\0" * 160)  # not AttributeError on a transport set to None
    assert err.value.code == ErrorCode.CONNECTION_CLOSED
    assert controller.connection_state == ConnectionState.DISCONNECTED
    controller.dispose()


def test_transport_calls_after_close_are_coded_not_runtime_errors():
    transport = bare_transport(null_sink())
    transport.close()
    with pytest.raises(AvatarKitError) as err:
        transport.send_audio("c", b"\0\0", False)  # was RuntimeError('Event loop is closed')
    assert err.value.code == ErrorCode.CONNECTION_CLOSED
    with pytest.raises(AvatarKitError) as err:
        transport.start()
    assert err.value.code == ErrorCode.CONNECTION_CLOSED
    transport.interrupt("c")  # nothing to interrupt: a no-op
    transport.close()  # idempotent


def test_on_state_fires_only_on_the_network_thread():
    threads: list[threading.Thread] = []
    states: list[ConnectionState] = []

    def on_state(state, _reason, _error) -> None:
        threads.append(threading.current_thread())
        states.append(state)

    transport = bare_transport(
        null_sink(on_state), reconnect_attempts=10_000, reconnect_backoff=0.02
    )
    transport.start()
    assert transport.state != ConnectionState.DISCONNECTED  # set before start() returns
    with pytest.raises(AvatarKitError) as err:
        transport.start()
    assert err.value.code == ErrorCode.CONNECTION_IN_PROGRESS
    time.sleep(0.1)
    transport.close()
    assert states[0] == ConnectionState.CONNECTING
    assert states[-1] == ConnectionState.DISCONNECTED
    assert {t.name for t in threads} == {"avatarkit-direct"}


def test_token_provider_thread_ends_with_close():
    ran_on: list[threading.Thread] = []
    called = threading.Event()

    def provider() -> str:
        ran_on.append(threading.current_thread())
        called.set()
        return "fresh"

    transport = bare_transport(
        null_sink(), token_provider=provider, reconnect_attempts=10_000, reconnect_backoff=0.01
    )
    transport.start()
    assert called.wait(5), "the provider was never asked (no reconnect?)"
    transport.close()
    for thread in set(ran_on):
        thread.join(timeout=2)
        assert not thread.is_alive(), "the token provider's executor outlived close()"
    AvatarSDK.set_session_token("")


def test_concurrent_close_closes_the_transport_once(sdk, rig):
    controller = retrying_controller(sdk, rig)
    transport = controller._mode.transport
    real_close, calls = transport.close, []

    def slow_close() -> None:
        calls.append(threading.current_thread())
        time.sleep(0.1)  # both callers are inside close() at once
        real_close()

    transport.close = slow_close
    errors: list[BaseException] = []

    def run(call) -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(exc)

    workers = [
        threading.Thread(target=run, args=(call,))
        for call in (controller.close, controller.dispose, controller.close, controller.dispose)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    assert not errors and len(calls) == 1
    assert controller.connection_state == ConnectionState.DISCONNECTED


# -- the audio device -------------------------------------------------------------------


def null_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "audio-null-device"]


def test_loss_reported_after_stop_starts_no_fallback():
    mixer = Mixer(16000)
    device = NullDevice(mixer).start()
    lost: list = []
    mixer.on_device_lost.append(lost.append)
    device.stop()  # the app's cleanup wins the race ...
    device.report_lost(OSError("unplugged"))  # ... the watchdog reports late
    assert mixer.device is device and not lost
    assert not null_threads()


def test_stopping_a_lost_device_stops_its_fallback():
    mixer = Mixer(16000)
    device = NullDevice(mixer).start()
    device.report_lost(OSError("unplugged"))
    device.report_lost(OSError("unplugged again"))  # a second report: no second fallback
    assert len(null_threads()) == 1 and mixer.device is not device
    device.stop()  # cleanup holding the old device still ends playback
    assert not null_threads()


class DyingStream:
    """A PortAudio stream whose ``is_active`` raises, as a dying PortAudio does."""

    def is_active(self) -> bool:
        raise OSError("Stream not open")

    def stop_stream(self) -> None:
        raise OSError("Stream not open")

    def close(self) -> None:
        pass


class FakePortAudio:
    def terminate(self) -> None:
        pass


def test_watchdog_treats_an_is_active_error_as_a_loss(monkeypatch):
    monkeypatch.setattr("engine.audio.devices.WATCHDOG_PERIOD", 0.01)
    mixer = Mixer(16000)
    device = PyAudioDevice(mixer)
    device._stream, device._pa = DyingStream(), FakePortAudio()
    lost: list = []
    mixer.on_device_lost.append(lost.append)
    super(PyAudioDevice, device).start()  # running, without a sound card
    watchdog = threading.Thread(target=device._watch, args=(threading.Event(),))
    watchdog.start()
    watchdog.join(timeout=5)
    assert not watchdog.is_alive()
    assert [e.code for e in lost] == ["audioDeviceLost"]  # not a silently dead watchdog
    assert isinstance(mixer.device, NullDevice)
    device.stop()
    assert not null_threads()


def test_device_loss_reaches_the_controller_on_error(sdk):
    sdk(driving_mode="backend")
    mixer = Mixer(16000)
    device = NullDevice(mixer).start()
    controller = AvatarController("avatar-1", mixer)
    errors, threads = [], []
    controller.on_error = lambda e: (
        errors.append(e.code),
        threads.append(threading.current_thread()),
    )
    device.report_lost(OSError("unplugged"))
    assert not errors  # delivered on the render thread, at its next tick
    controller.tick(0.0)
    assert errors == [ErrorCode.AUDIO_DEVICE_LOST] and threads == [threading.current_thread()]
    controller.dispose()
    assert controller._device_lost not in mixer.on_device_lost
    device.stop()


def test_the_client_caps_what_a_server_may_send(monkeypatch):
    """A server could otherwise make the client buffer any amount (``max_size=None``)."""
    from avatarkit.controller import direct

    seen: dict = {}

    async def refuse(url, **kwargs):
        seen.update(kwargs)
        raise OSError("no server here")

    monkeypatch.setattr(direct, "connect", refuse)
    errors: list[AvatarKitError] = []
    transport = bare_transport(DirectSink(lambda *a: None, lambda *a: None, errors.append))
    transport.start()
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    transport.close()
    assert seen["max_size"] == direct.MAX_MESSAGE == 4 * 1024 * 1024
    assert errors[0].code == ErrorCode.CONNECTION_FAILED


def test_a_normal_close_during_the_handshake_is_a_coded_failure(monkeypatch):
    """Found by the type checker: a 1000 close before the session was confirmed raised
    ``TypeError`` (``raise None``) on the network thread and left the state connecting."""
    from websockets.exceptions import ConnectionClosedOK
    from websockets.frames import Close

    from avatarkit.controller import direct

    class ClosingServer:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc) -> None:
            return None

        async def send(self, _data) -> None:
            return None

        async def recv(self):
            raise ConnectionClosedOK(Close(1000, "bye"), None)

    async def connect(url, **kwargs):
        return ClosingServer()

    monkeypatch.setattr(direct, "connect", connect)
    errors: list[AvatarKitError] = []
    transport = bare_transport(
        DirectSink(lambda *a: None, lambda *a: None, errors.append), reconnect_attempts=0
    )
    transport.start()
    deadline = time.monotonic() + 5
    while transport.state != ConnectionState.FAILED and time.monotonic() < deadline:
        time.sleep(0.01)
    transport.close()
    assert transport.state == ConnectionState.FAILED
    assert [e.code for e in errors] == [ErrorCode.CONNECTION_FAILED]


def test_audio_is_queued_before_a_fast_server_can_answer_it(sdk, rig, make_speech):
    """The controller's copy of sent audio must be in its inbox before the transport can
    put it on the wire; otherwise motion from a fast server arrives first and is dropped
    (no conversation yet), and the utterance starts with a still face."""
    from avatarkit.motion import create_stream

    sdk()
    controller = AvatarController("avatar-1", rig.mixer)
    pcm = make_speech(0.5)
    stream = create_stream(16000, 30)
    frames = stream.push(pcm) + stream.finish()

    class InstantServer:
        state = ConnectionState.CONNECTED

        def send_audio(self, cid, data, end, accepted=None, samples=-1) -> None:
            if accepted is not None:
                accepted()  # what DirectTransport does before the network thread sees it
            controller.net_motion(cid, frames, 0.0, True)  # the answer, at once

        def interrupt(self, cid) -> None:
            pass

        def close(self) -> None:
            pass

    controller._mode.transport = InstantServer()
    cid = controller.send(pcm, end=True)
    controller.tick(0.0)
    conv = controller._playback.find(cid)
    assert conv is not None and len(conv.keys) == len(frames)
    controller.dispose()
