"""Fixtures for reliability tests: embedded servers with fast limits on loopback."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from avatarkit.server import EmbeddedServer

sys.path.insert(0, str(Path(__file__).parent))  # reliability_helpers

FAST = {"watchdog_interval_s": 0.05, "shutdown_grace_s": 1.0, "handshake_timeout_s": 2.0}


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no asyncio plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


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
def server(make_server) -> EmbeddedServer:
    return make_server()


