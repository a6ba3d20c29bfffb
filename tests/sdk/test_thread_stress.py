"""Every public controller method from several threads at random, with the interpreter
switching threads as often as it can (issue 14). Nothing may escape but the documented
coded errors, no thread may die, and callbacks fire only on the thread that ticks.

Each run lasts ``AVATARKIT_STRESS_S`` seconds (default 5; a minute for a soak run)."""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from avatarkit.controller import AvatarController
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.sdk import AvatarSDK
from engine.audio import Mixer, NullDevice

SECONDS = float(os.environ.get("AVATARKIT_STRESS_S", "5"))
WORKERS = 4

pytestmark = pytest.mark.timeout(60 + 3 * SECONDS)

# What a racing caller may legitimately be told (docs/sdk.md): the controller was closed
# or disposed under it, or another thread's start() is already connecting.
ALLOWED = {ErrorCode.CONNECTION_CLOSED, ErrorCode.CONNECTION_IN_PROGRESS}
CLIENT_LOGGERS = ("avatarkit.controller", "avatarkit.view", "engine", "asyncio", "websockets")


class Harness:
    """Runs ``actions`` from ``WORKERS`` threads while one render thread ticks."""

    def __init__(self, controller: AvatarController, rig) -> None:
        self.controller, self.rig = controller, rig
        self.escaped: list[BaseException] = []
        self.callback_threads: set[str] = set()
        self.stop = threading.Event()
        for name in ("on_connection_state", "on_conversation_state", "on_error"):
            setattr(controller, name, self._record)

    def _record(self, *_args) -> None:
        self.callback_threads.add(threading.current_thread().name)

    def call(self, action: Callable[[], object]) -> None:
        try:
            action()
        except AvatarKitError as exc:
            if exc.code not in ALLOWED:
                self.escaped.append(exc)
        except Exception as exc:  # noqa: BLE001 - anything else is the failure we look for
            self.escaped.append(exc)

    def render(self) -> None:
        while not self.stop.is_set():
            self.call(lambda: self.rig.step(self.controller))
            time.sleep(0.001)

    def work(self, seed: int, actions: list[Callable[[], object]]) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            self.call(rng.choice(actions))

    def run(self, actions: list[Callable[[], object]], seconds: float) -> None:
        threads = [threading.Thread(target=self.render, name="render")]
        threads += [
            threading.Thread(target=self.work, args=(i, actions), name=f"app-{i}")
            for i in range(WORKERS)
        ]
        with fast_switching():
            for thread in threads:
                thread.start()
            time.sleep(seconds)
            # Dispose from two threads at once while the others still call in.
            closers = [
                threading.Thread(target=self.call, args=(self.controller.dispose,))
                for _ in range(2)
            ]
            for thread in closers:
                thread.start()
            for thread in closers:
                thread.join(timeout=30)
            time.sleep(0.2)
            self.stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert not any(t.is_alive() for t in threads + closers), "a caller hung"


@pytest.fixture
def fast_switching_guard() -> Iterator[list]:
    """Collects exceptions that kill any thread (network, audio, timers)."""
    died: list = []
    previous = threading.excepthook
    threading.excepthook = lambda args: died.append(args.exc_value)
    yield died
    threading.excepthook = previous


class fast_switching:  # noqa: N801 - used as a statement
    def __enter__(self) -> None:
        self.interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)

    def __exit__(self, *exc) -> None:
        sys.setswitchinterval(self.interval)


def assert_clean(harness: Harness, died: list, caplog) -> None:
    assert not harness.escaped, f"{len(harness.escaped)} escaped, first: {harness.escaped[0]!r}"
    assert not died, f"a thread died: {died[0]!r}"
    # The client's own loggers (the server's are another test's concern).
    tracebacks = [
        r
        for r in caplog.records
        if r.exc_info and r.levelno >= logging.ERROR and r.name.startswith(CLIENT_LOGGERS)
    ]
    assert not tracebacks, tracebacks[0].getMessage()
    assert harness.callback_threads <= {"render"}, harness.callback_threads


def network_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "avatarkit-direct"]


def read_everything(controller: AvatarController) -> None:
    for name in (
        "connection_state",
        "conversation_state",
        "conversation_id",
        "audio_time",
        "face_time",
        "buffer_health",
        "volume",
        "pan",
    ):
        getattr(controller, name)


def test_direct_mode_from_many_threads(sdk, server, rig, make_speech, fast_switching_guard, caplog):
    caplog.set_level(logging.ERROR)
    before = set(network_threads())  # other tests may leave theirs
    sdk(
        server.app_id,
        ingress_url=server.ingress_url,
        console_url=server.console_url,
        token_provider=server.issue_token,
        reconnect_backoff_s=0.01,
    )
    controller = AvatarController("avatar-1", rig.mixer)
    harness = Harness(controller, rig)
    chunk = make_speech(0.1)
    rng = random.Random(1)

    def start() -> None:
        AvatarSDK.set_session_token(server.issue_token())
        controller.start()

    actions = [
        start,
        lambda: controller.send(chunk, end=rng.random() < 0.2),
        lambda: controller.send(chunk),
        controller.interrupt,
        controller.pause,
        controller.resume,
        controller.close,
        lambda: controller.set_volume(rng.random()),
        lambda: controller.set_pan(rng.uniform(-1, 1)),
        lambda: read_everything(controller),
    ]
    harness.run(actions, SECONDS)
    assert_clean(harness, fast_switching_guard, caplog)
    assert controller._mode.transport is None
    assert not set(network_threads()) - before, "a network thread outlived close()"


def test_backend_mode_from_many_threads(
    sdk, rig, make_speech, motion_payloads, fast_switching_guard, caplog
):
    caplog.set_level(logging.ERROR)
    sdk(driving_mode="backend")
    controller = AvatarController("avatar-1", rig.mixer)
    harness = Harness(controller, rig)
    pcm = make_speech(0.3)
    payloads = motion_payloads(pcm)
    issued: list[str] = []
    rng = random.Random(2)

    def speak() -> None:
        issued.append(controller.yield_audio_data(pcm, end=rng.random() < 0.5))

    def move() -> None:
        cid = issued[-1] if issued and rng.random() < 0.9 else "unknown"
        controller.yield_frames_data(payloads[: rng.randint(0, len(payloads))], cid)

    actions = [
        speak,
        move,
        controller.interrupt,
        controller.pause,
        controller.resume,
        lambda: controller.set_volume(rng.random()),
        lambda: read_everything(controller),
    ]
    harness.run(actions, SECONDS)
    assert_clean(harness, fast_switching_guard, caplog)


def test_audio_device_stop_and_loss_from_many_threads(fast_switching_guard):
    """The app's stop() and the watchdog's report_lost() race: whatever the order, one
    device ends up playing at most, and after a final stop no pacing thread is left."""
    rng = random.Random(3)
    with fast_switching():
        for _ in range(max(5, int(4 * SECONDS))):
            mixer = Mixer(16000)
            device = NullDevice(mixer, period=0.001).start()
            calls = [device.stop, lambda d=device: d.report_lost(OSError("unplugged"))] * 2
            rng.shuffle(calls)
            threads = [threading.Thread(target=call) for call in calls]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=10)
            device.stop()
            assert not [t for t in threading.enumerate() if t.name == "audio-null-device"]
    assert not fast_switching_guard
