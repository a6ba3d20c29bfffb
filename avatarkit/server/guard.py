"""Connection-level protection in front of aiohttp: slowloris, per-address floods, fd exhaustion.

aiohttp gives a connection that never completes its request headers all the time in the
world, and has no per-address or total connection cap; with enough half-open connections
the process runs out of file descriptors, healthy clients time out and asyncio logs an
``accept()`` traceback per failed accept (its retry logic multiplies them). The guard wraps
every accepted connection's protocol:

- a connection must complete its first request's headers within ``header_timeout_s``
  (later requests on a kept-alive connection are bounded by aiohttp's keep-alive timeout,
  set to ``keepalive_timeout_s``);
- at most ``max_http_connections_per_ip`` open TCP connections per peer address;
- at most ``max_connections`` in all (default: below the process's file limit, so
  ``accept()`` keeps working and other addresses are still served);
- a refused connection is reset at once, counted, and logged at most once per interval.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from avatarkit.server.config import ServerConfig

log = logging.getLogger(__name__)

_END_OF_HEADERS = b"\r\n\r\n"
_LOG_INTERVAL_S = 10.0  # at most one line per kind of refusal per interval


def default_max_connections() -> int:
    """Connections one process may hold: its file limit minus a reserve for everything else."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    # The reserve covers the other files and one accept() burst: asyncio accepts up to the
    # listen backlog (128) in one go, and a refused socket is closed only after the burst.
    return max(16, soft - max(192, soft // 8))


class ThrottledLog:
    """One log line per ``interval_s`` per key, with how many were folded into it."""

    def __init__(self, logger: logging.Logger, interval_s: float = _LOG_INTERVAL_S) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -self._interval_s) < self._interval_s:
            self._suppressed[key] += 1
            return
        self._last[key] = now
        folded = self._suppressed.pop(key, 0)
        suffix = f" (+{folded} more in the last {self._interval_s:g} s)" if folded else ""
        self._logger.warning(message + suffix, *args)


class ConnectionGuard:
    def __init__(self, config: ServerConfig) -> None:
        self.header_timeout_s = config.header_timeout_s
        self.max_per_address = config.max_http_connections_per_ip
        self.trusted_proxies = frozenset(config.trusted_proxies)  # they carry many clients
        self.max_total = (
            config.max_connections
            if config.max_connections is not None
            else default_max_connections()
        )
        self.by_address: Counter[str] = Counter()
        self.total = 0
        self.refused: Counter[str] = Counter()  # reason -> connections reset at once
        self.timed_out = 0  # connections closed for not completing their headers in time
        self._log = ThrottledLog(log)

    def admit(self, address: str) -> bool:
        if self.max_total and self.total >= self.max_total:
            return self._refuse(
                "total", "connection refused: %d open connections (the limit)", self.total
            )
        if (
            self.max_per_address
            and self.by_address[address] >= self.max_per_address
            and address not in self.trusted_proxies
        ):
            return self._refuse(
                "address",
                "connection from %s refused: %d open from that address",
                address,
                self.by_address[address],
            )
        self.total += 1
        self.by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.total -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def _refuse(self, reason: str, message: str, *args: object) -> bool:
        self.refused[reason] += 1
        self._log.warning(reason, message, *args)
        return False

    def protocol_factory(
        self, inner: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        return lambda: _GuardedProtocol(self, inner)

    def on_header_timeout(self, address: str) -> None:
        self.timed_out += 1
        self._log.warning(
            "headers",
            "closed a connection from %s: no complete request headers in %g s",
            address,
            self.header_timeout_s,
        )


class _GuardedProtocol(asyncio.Protocol):
    """Admits or resets a new connection, enforces the header deadline, then delegates."""

    __slots__ = ("_guard", "_factory", "_inner", "_address", "_transport", "_deadline", "_tail")

    def __init__(self, guard: ConnectionGuard, factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._address = ""
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, to find the end of headers across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._guard.admit(address):
            transport.abort()  # type: ignore[attr-defined]  # a reset: costs no further work
            return
        self._address = address
        # A stream server's transports are Transports (the argument is typed as their base).
        self._transport = transport  # type: ignore[assignment]
        if self._guard.header_timeout_s:
            self._deadline = asyncio.get_running_loop().call_later(
                self._guard.header_timeout_s, self._on_deadline
            )
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def _on_deadline(self) -> None:
        self._deadline = None
        if self._transport is not None and not self._transport.is_closing():
            self._guard.on_header_timeout(self._address)
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._deadline is not None:
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self._deadline.cancel()
                self._deadline = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._inner is None:
            return  # refused: never counted
        self._guard.release(self._address)
        inner, self._inner, self._transport = self._inner, None, None
        inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class _GuardedServer:
    """aiohttp's ``web.Server`` (the protocol factory a site listens with), guarded."""

    def __init__(self, server: web.Server, guard: ConnectionGuard) -> None:
        self._server = server
        self._factory = guard.protocol_factory(server)

    def __call__(self) -> asyncio.Protocol:
        return self._factory()

    def __getattr__(self, name: str) -> Any:  # shutdown(), connections, ... of the real server
        return getattr(self._server, name)


class GuardedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose sites accept connections through a :class:`ConnectionGuard`."""

    def __init__(self, app: web.Application, config: ServerConfig, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", config.keepalive_timeout_s)
        super().__init__(app, **kwargs)
        self.guard = ConnectionGuard(config)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # A stand-in that forwards everything it does not wrap (see _GuardedServer).
        return _GuardedServer(server, self.guard)  # type: ignore[return-value]


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Fold asyncio's per-failure ``accept()`` tracebacks into one line per interval.

    Out of file descriptors, asyncio logs a traceback for every failed accept and retries
    once per listening socket per failure: thousands of lines a second. The condition is
    worth one line now and then; everything else goes to the previous handler.
    """
    previous = loop.get_exception_handler()
    throttled = ThrottledLog(log)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            throttled.warning("accept", "accept() failing: %s", context.get("exception"))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
