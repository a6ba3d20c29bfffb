"""Fixtures for the client SDK tests: an initialised SDK and a virtual audio device."""

from __future__ import annotations

import numpy as np
import pytest

from avatarkit.sdk import AvatarSDK, Configuration
from engine.audio import Mixer, VirtualDevice

RATE = 16000
FPS = 30


def speech(seconds: float, rate: int = RATE, seed: int = 0) -> bytes:
    """Syllable-like bursts of a voiced tone (amplitude-modulated), s16le mono."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t + seed), 0, None)
    tone = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t)
    return (tone * envelope * 9000).astype("<i2").tobytes()


class Rig:
    """A mixer on a virtual device, advanced one video frame at a time after each tick."""

    def __init__(self, rate: int = RATE, fps: int = FPS) -> None:
        self.mixer = Mixer(rate)
        self.device = VirtualDevice(self.mixer).start()
        self.fps = fps
        self.frame = 0
        self.heard = np.zeros(0, np.float32)

    def step(self, *controllers, frames: int = 1) -> list:
        poses = []
        for _ in range(frames):
            poses = [c.tick(1 / self.fps) for c in controllers]
            # What is heard while this frame shows (mono: the mix is centred).
            self.heard = self.device.advance(
                self.device.frames_for_video_frame(self.frame, self.fps)
            )[:, 0]
            self.frame += 1
        return poses


def heard_position(heard: np.ndarray, pcm: bytes, after: int = 0) -> int | None:
    """Where in ``pcm``, at or after ``after``, the block ``heard`` starts (the mixer is
    bit-exact for one centred voice at unity volume), or None when it holds none of it:
    found at the output, so it does not depend on the controller's own clock. Playback
    only moves forward: pass the last position found, since a test signal may repeat
    (``speech`` does every second) and its first match would then be a second early."""
    source = np.frombuffer(pcm, "<i2").astype(np.int32)
    levels = np.round(np.asarray(heard, np.float64) * 32768).astype(np.int32)
    nonzero = np.flatnonzero(levels)
    if len(nonzero) == 0:
        return None
    j = nonzero[0]
    for i in np.flatnonzero(source == levels[j]) - j:
        if i >= after and np.array_equal(source[i : i + len(levels)], levels[: len(source) - i]):
            return int(i)
    return None


def expected_weights(frames: list, seconds: float) -> np.ndarray:
    """The motion frames' weights linearly interpolated at ``seconds``."""
    x = seconds * frames[0].fps
    k = min(int(x), len(frames) - 1)
    a = min(max(x - k, 0.0), 1.0) if k + 1 < len(frames) else 0.0
    following = frames[min(k + 1, len(frames) - 1)].weights
    return frames[k].weights * (1 - a) + following * a


@pytest.fixture
def output_check():
    """``(heard_position, expected_weights)`` (pytest cannot import a conftest)."""
    return heard_position, expected_weights


@pytest.fixture
def rig() -> Rig:
    return Rig()


@pytest.fixture
def sdk():
    """Yields a function initialising the SDK with a configuration; cleans up after."""

    def init(app_id: str = "test-app", **config) -> Configuration:
        configuration = Configuration(audio_device="virtual", **config)
        AvatarSDK.initialize(app_id, configuration)
        return configuration

    yield init
    AvatarSDK.cleanup()


@pytest.fixture
def make_speech():
    return speech


@pytest.fixture
def motion_payloads():
    """``motion_payloads(pcm, per_message=10)``: the real model's frames as wire envelopes."""
    from avatarkit.motion import create_stream
    from avatarkit.protocol import encode_animation

    def build(pcm: bytes, per_message: int = 10, rate: int = RATE, fps: int = FPS) -> list[bytes]:
        stream = create_stream(rate, fps)
        frames = stream.push(pcm) + stream.finish()
        chunks = [frames[i : i + per_message] for i in range(0, len(frames), per_message)]
        return [
            encode_animation("conn", "req", chunk, end=i == len(chunks) - 1)
            for i, chunk in enumerate(chunks)
        ]

    return build


@pytest.fixture(scope="module")
def server():
    """A real Motion Server on loopback (its watchdog checks token expiry every 0.1 s)."""
    from avatarkit.server.embedded import EmbeddedServer

    with EmbeddedServer(watchdog_interval_s=0.1, any_avatar=True) as embedded:  # placeholder ids
        yield embedded


class Proxy:
    """A TCP relay on loopback whose connections the test can cut (a dropped network)."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.close()
            except OSError:
                pass

    def cut(self) -> None:
        """Abort every open connection (both sides see a reset, no close frame)."""
        import socket

        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.cut()
        self._listener.close()


@pytest.fixture
def proxy(server):
    relay = Proxy(server.port)
    yield relay
    relay.close()
