"""Fixtures for Motion Server tests: embedded servers on loopback, speech-like PCM, SDK helpers."""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import spatius

from avatarkit.server import EmbeddedServer

spatius.configure_telemetry("")  # the public SDK must not try to export telemetry from tests


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no asyncio plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


# Fast limits so timing paths (idle, duration, shutdown) run in well under a second.
FAST = {"watchdog_interval_s": 0.05, "shutdown_grace_s": 1.0, "handshake_timeout_s": 2.0}


@pytest.fixture
def make_server() -> Iterator[Callable[..., EmbeddedServer]]:
    servers: list[EmbeddedServer] = []

    def make(**limits: object) -> EmbeddedServer:
        server = EmbeddedServer(**{**FAST, **limits}).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., EmbeddedServer]) -> EmbeddedServer:
    return make_server()


def speech_pcm(seconds: float, sample_rate: int = 16000, seed: int = 0) -> bytes:
    """Syllable-like bursts: a voiced tone with harmonics, gated at ~4 Hz, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(np.sin(2 * math.pi * 140 * k * t) / k for k in range(1, 6))
    gate = np.clip(np.sin(2 * math.pi * 4 * t) * 2, 0, 1)
    signal = (voice * gate * 0.3 + rng.normal(0, 0.01, t.size)) * 32767
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


def ogg_opus(pcm: bytes, sample_rate: int = 16000) -> bytes:
    """Mono PCM s16le as one Ogg Opus stream (libopus through PyAV), as a TTS would send."""
    import io

    import av

    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, "<i2").reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


class Recorder:
    """Collects what the public SDK hands to ``transport_frames`` and ``on_error``."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[bytes, bool]] = []
        self.errors: list[Exception] = []

    def transport_frames(self, data: bytes, last: bool) -> None:
        self.envelopes.append((data, last))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("timed out waiting for the server")
            await asyncio.sleep(0.01)

    async def wait_end(self, timeout: float = 5.0) -> None:
        await self.wait_for(lambda: any(last for _, last in self.envelopes), timeout)


def new_session(server: EmbeddedServer, recorder: Recorder | None = None, **overrides: object):
    """A public-SDK session pointed at ``server`` (explicit URLs: no region look-up)."""
    kwargs: dict[str, object] = {
        "avatar_id": "ava",
        "api_key": server.api_key,
        "app_id": server.app_id,
        "console_endpoint_url": server.console_url,
        "ingress_endpoint_url": server.ingress_url,
        "sample_rate": 16000,
    }
    if recorder is not None:
        kwargs["transport_frames"] = recorder.transport_frames
        kwargs["on_error"] = recorder.errors.append
    kwargs.update(overrides)
    return spatius.new_avatar_session(**kwargs)


@pytest.fixture
def make_speech() -> Callable[..., bytes]:
    return speech_pcm


@pytest.fixture
def make_ogg_opus() -> Callable[..., bytes]:
    return ogg_opus


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def sdk_session(server: EmbeddedServer) -> Callable[..., object]:
    """``sdk_session(recorder=None, target=server, **overrides)``: an uninitialised SDK session."""

    def make(recorder: Recorder | None = None, target: EmbeddedServer | None = None, **overrides: object):
        return new_session(target or server, recorder, **overrides)

    return make


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    from spatius.token_cache import clear_cached_session_tokens

    clear_cached_session_tokens()
    yield
    clear_cached_session_tokens()


@pytest.fixture
def new_recorder() -> type[Recorder]:
    return Recorder
