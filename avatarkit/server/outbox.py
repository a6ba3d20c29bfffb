"""A session's outgoing frames: one queue drained by one writer task, and slow consumers.

Runs on the server's event loop, owned by one ``Session``. While the writer keeps up, a
burst may briefly queue more than ``send_queue_messages`` (one inference slice's worth);
once the writer waits on the client's socket, a full backlog means the client is too
slow: ``put`` refuses the item and the session, if its lifecycle allows, calls
``close_slow_consumer``: the backlog is dropped and the connection closed with 4008,
rather than allowed to grow memory. The outbox holds no reference to its session, so a
closed session is freed by reference counting.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web

from avatarkit.protocol import CLOSE_SLOW_CONSUMER
from avatarkit.server.config import ServerConfig
from avatarkit.server.state import ServerStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Close:
    """Queued after the last envelope of a session that must end."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Animation:
    """A queued animation envelope, with its req_id so an interrupt can take it back."""

    req_id: str
    data: bytes


Item = bytes | Animation | Close


class Outbox:
    """The envelopes a session has produced and the client has not yet taken."""

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        config: ServerConfig,
        stats: ServerStats,
        connection_id: str,
    ) -> None:
        self._request = request
        self._ws = ws
        self._config = config
        self._stats = stats
        self._connection_id = connection_id
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._waiting_on_client = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs
        self._unsent = (0, time.monotonic())  # (bytes not yet taken by the client, since when)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def start(self) -> asyncio.Task[None]:
        """Start the writer; the task ends after a queued ``Close`` or a lost connection."""
        writer = self._writer = asyncio.create_task(self._write_loop())
        return writer

    def stop(self) -> None:
        """Cancel the writer and drop the references to the tasks.

        A task that is cancelled keeps its traceback, whose frames hold the session:
        dropping our references breaks Session -> task -> frame -> Session, so a closed
        session is freed at once by reference counting, not by a GC pass.
        """
        if self._writer is not None:
            self._writer.cancel()
        self._writer = self._closer = None

    def put(self, item: Item) -> bool:
        """Queue ``item``; False when the backlog is full: the client is too slow."""
        backlog, limit = len(self._items), self._config.send_queue_messages
        if backlog >= limit and (self._waiting_on_client or backlog >= 4 * limit):
            return False
        self._items.append(item)
        self._ready.set()
        return True

    def take_back(self, req_id: str) -> None:
        """Remove the queued animation of ``req_id`` (interrupted): it must not go out."""
        kept = [
            item
            for item in self._items
            if not (isinstance(item, Animation) and item.req_id == req_id)
        ]
        if len(kept) != len(self._items):
            self._items.clear()  # in place: the writer holds this deque
            self._items.extend(kept)

    def send_stalled(self, now: float) -> bool:
        """True once bytes we sent have waited ``send_stall_s`` without the client taking any.

        Catches a client that stops reading even while it keeps sending (its window is
        zero, so our kernel holds the bytes and the writer may never block), and a stalled
        network; the outbox limit alone would need megabytes of socket buffers to fill first.
        """
        unsent = _unsent_bytes(self._request.transport)
        previous, since = self._unsent
        if unsent == 0 or unsent < previous:  # the client is reading
            self._unsent = (unsent, now)
            return False
        if unsent > previous:
            self._unsent = (unsent, since)  # still stuck since the same moment
        return now - since >= self._config.send_stall_s

    def close_slow_consumer(self) -> None:
        """Drop the backlog and close the connection with 4008, now."""
        self._closer = asyncio.get_running_loop().create_task(self._close_slow_consumer())

    async def _close_slow_consumer(self) -> None:
        # The backlog is dropped: the client cannot keep up, and holding it would grow memory.
        if self._writer is not None:
            self._writer.cancel()
        self._items.clear()
        reason = b"slowConsumer: the client did not read animation in time"
        try:
            await asyncio.wait_for(self._ws.close(code=CLOSE_SLOW_CONSUMER, message=reason), 2.0)
        except Exception:  # whatever happened, the connection must go
            transport = self._request.transport
            if transport is not None:
                transport.abort()

    async def _write_loop(self) -> None:
        ws, items, stats = self._ws, self._items, self._stats
        try:
            while True:
                if not items:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                item = items.popleft()
                if isinstance(item, Close):
                    # A close reason is at most 123 bytes; cut on a character boundary.
                    reason = item.reason.encode()[:120].decode(errors="ignore").encode()
                    await ws.close(code=item.code, message=reason)
                    return
                data = item.data if isinstance(item, Animation) else item
                self._waiting_on_client = True  # only observable if send_bytes blocks
                await ws.send_bytes(data)
                self._waiting_on_client = False
                stats.bytes_sent += len(data)
        except ConnectionError as exc:  # the client went away; the receive loop sees it too
            log.debug("session %s: send failed: %s", self._connection_id, exc)


def _unsent_bytes(transport: asyncio.BaseTransport | None) -> int:
    """Bytes sent but not yet acknowledged by the peer: in asyncio's buffer and the kernel's."""
    if transport is None or transport.is_closing():
        return 0
    # A stream's transport has a write buffer (the argument is typed as the base class).
    queued = transport.get_write_buffer_size()  # type: ignore[attr-defined]
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:  # SIOCOUTQ (= TIOCOUTQ on Linux): bytes in the socket's send queue
            import fcntl
            import termios

            queued += struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        except (ImportError, OSError, ValueError):
            pass  # elsewhere only asyncio's own buffer counts
    return queued
