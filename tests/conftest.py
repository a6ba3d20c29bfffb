"""Shared fixtures. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import asyncio
import inspect
import os
import pathlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Headless by default: no test may open a real window or audio device unless it asks.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from avatarkit.server import EmbeddedServer  # noqa: E402  (after the SDL defaults)

# Fast limits so timing paths (idle, duration, shutdown) run in well under a second.
FAST = {"watchdog_interval_s": 0.05, "shutdown_grace_s": 1.0, "handshake_timeout_s": 2.0}


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no asyncio plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


def headless_app(**kwargs: object):
    """``App.headless(**kwargs)``, skipping the test only when this machine cannot make
    an EGL context; any other failure (a shader that does not compile...) fails it."""
    from engine import App
    from engine.errors import RENDER_NOT_SUPPORTED, EngineError

    try:
        return App.headless(**kwargs)
    except EngineError as exc:
        if exc.code != RENDER_NOT_SUPPORTED:
            raise
        pytest.skip(f"no headless EGL context: {exc.message}")


@pytest.fixture(scope="session")
def make_headless_app():
    """The ``headless_app`` factory, for fixtures of any scope."""
    return headless_app


@pytest.fixture
def opened(monkeypatch) -> list[Path]:
    """Every path opened through pathlib or os.open during the test (all the glTF loader
    uses): the hostile-file tests check that nothing outside a package is ever read."""
    paths: list[Path] = []
    real = pathlib.Path.read_bytes

    def spy(self):
        paths.append(Path(self).resolve())
        return real(self)

    real_open = os.open

    def spy_open(file, *args, **kwargs):
        paths.append(Path(file).resolve())
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_bytes", spy)
    monkeypatch.setattr(os, "open", spy_open)
    return paths


@pytest.fixture
def make_server() -> Iterator[Callable[..., EmbeddedServer]]:
    """``make_server(**limits)``: a started EmbeddedServer on loopback, stopped after the test."""
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
