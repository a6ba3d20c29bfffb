"""Direct Mode transport: a websocket client to the Motion Server on its own thread.

Threads: ``start``/``send_audio``/``interrupt``/``close`` come from any thread; ``_lock``
orders them against ``close`` (after it they raise ``connectionClosed`` or do nothing).
Everything else, every ``state`` transition included, runs on the network thread (an
asyncio loop), so the ``sink`` callbacks, which only enqueue into the controller's inbox,
fire there. The token provider runs on the transport's own executor, shut down by ``close``.

Conversations and wire requests: the controller names a conversation once; on the wire
it travels as a ``req_id``. After a dropped connection the rest of a conversation goes
out under a fresh ``req_id`` whose motion is placed at the sample offset already sent, so
reconnecting never replays audio and the timeline stays exact. An Ogg Opus conversation
cannot continue that way (the rest of its stream lacks the headers a new request needs):
it plays on without motion and its remaining audio is not sent.

Over 400 lines on purpose: one job, the connection's life (handshake, writer, reader,
reconnects and the wire requests they carry), which reads best in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from avatarkit.controller.messages import (
    Audio,
    CancelRequest,
    DirectSink,
    OutboxMessage,
    new_req_id,
)
from avatarkit.controller.refusals import (
    FATAL_ERRORS,
    TOKEN_ERRORS,
    closed_error,
    refusal,
    server_error,
)
from avatarkit.controller.states import ConnectionState, StateReason
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.protocol import (
    classify_close,
    decode_envelope,
    encode_audio,
    encode_configure,
    encode_interrupt,
    pb,
)
from avatarkit.protocol.motion import animation_frames

log = logging.getLogger(__name__)
_refusal = refusal  # its name before refusals.py (tests/server reads refusals through it)

HANDSHAKE_TIMEOUT = 10.0  # seconds to wait for SERVER_CONFIRM_SESSION
CLOSE_TIMEOUT = 2.0  # seconds to wait for the server's close frame when we close
CLOSE_WAIT = 10.0  # seconds close() waits for the network thread to finish
MAX_MESSAGE = 4 * 1024 * 1024  # bytes: the largest server message accepted (motion is small)
INTERRUPTED_MEMORY = 64  # recently interrupted conversations whose late data is refused


@dataclass
class _WireRequest:
    conversation: str
    req_id: str
    offset: float  # seconds of the conversation already sent before this request began
    generation: int  # connection it belongs to


class DirectTransport:
    def __init__(
        self,
        avatar_id: str,
        app_id: str,
        ingress_url: str,
        sample_rate: int,
        token: Callable[[], str | None],
        sink: DirectSink,
        token_provider: Callable[[], str] | None = None,
        reconnect_attempts: int = 5,
        reconnect_backoff: float = 0.2,
        ogg_opus: bool = False,
    ) -> None:
        self.avatar_id, self.app_id = avatar_id, app_id
        self.ogg_opus = ogg_opus  # the session takes one Ogg Opus stream per conversation
        self.ingress_url = ingress_url.rstrip("/")
        self.sample_rate = sample_rate
        self._token, self._token_provider = token, token_provider
        self.sink = sink
        self.reconnect_attempts, self.reconnect_backoff = reconnect_attempts, reconnect_backoff
        self._state = ConnectionState.DISCONNECTED  # written on the network thread only
        self._lock = threading.Lock()  # orders the any-thread calls against close()
        self._closed = False  # close() ran: the loop is gone for good
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="avatarkit-token")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="avatarkit-direct", daemon=True)
        self._thread.start()
        self._outbox: asyncio.Queue[OutboxMessage] = asyncio.Queue()  # survives reconnects
        self._unsent: OutboxMessage | None = None  # the outbox item being sent
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._generation = 0
        self._sent: dict[str, int] = {}  # conversation -> samples sent on the wire
        self._wire: dict[str, _WireRequest] = {}  # conversation -> its current wire request
        self._by_req: dict[str, _WireRequest] = {}
        self._interrupted: dict[str, None] = {}  # recent ids, oldest first (bounded)
        self._reported: str | None = None  # last server error already passed on
        # Ogg Opus conversations cut by a dropped connection: the rest of their stream has
        # no headers to start a new request with, so it plays without motion (not sent).
        self._cut: dict[str, None] = {}

    # -- any thread ---------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    def start(self, fresh_token: bool = False) -> None:
        """Connect; ``fresh_token``: ask the token provider first (the current token has
        already been used by an earlier connection)."""
        with self._lock:
            self._require_open("start()")
            future = asyncio.run_coroutine_threadsafe(self._spawn(fresh_token), self._loop)
        try:
            future.result(timeout=5)  # raises connectionInProgress from the network thread
        except TimeoutError as exc:  # a starved machine: the attempt may still go ahead
            raise AvatarKitError(
                ErrorCode.CONNECTION_FAILED, "the network thread did not answer in 5 s"
            ) from exc

    def send_audio(
        self,
        conversation: str,
        data: bytes,
        end: bool,
        accepted: Callable[[], None] | None = None,
        samples: int = -1,
    ) -> None:
        """Queue audio for the wire (``connectionClosed`` after ``close()``): PCM, or Ogg
        Opus bytes that play as ``samples`` samples. ``accepted`` runs first, once it is
        taken: the controller's own copy must be queued before a fast server's motion for
        it can be."""
        self._post(Audio(conversation, data, end, samples), "send_audio()", accepted)

    def interrupt(self, conversation: str) -> None:
        with contextlib.suppress(AvatarKitError):  # closed: nothing left to interrupt
            self._post(CancelRequest(conversation), "interrupt()")

    def close(self) -> None:
        """Close (a normal close) and stop the thread; a second caller returns at once."""
        if threading.current_thread() is self._thread:  # it would wait for itself
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "close() from the network thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closing = True  # read by the network thread: no reconnect from now on
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)  # then the loop stops
        self._thread.join(timeout=CLOSE_WAIT)
        if self._thread.is_alive():  # a starved machine: it finishes and exits by itself
            log.warning("network thread still closing after %.0f s", CLOSE_WAIT)
        # A provider still running keeps its thread until it returns; nothing waits on it.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _post(
        self, item: OutboxMessage, call: str, accepted: Callable[[], None] | None = None
    ) -> None:
        with self._lock:  # close() cannot close the loop between the check and the call
            self._require_open(call)
            if accepted is not None:
                accepted()
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, item)

    def _require_open(self, call: str) -> None:
        if self._closed:
            raise AvatarKitError(ErrorCode.CONNECTION_CLOSED, f"{call} after close()")

    # -- the network thread -------------------------------------------------------------

    async def _spawn(self, fresh_token: bool = False) -> None:
        # On the network thread: the check and the transition cannot interleave.
        if self._state in (
            ConnectionState.CONNECTING,
            ConnectionState.CONNECTED,
            ConnectionState.RECONNECTING,
        ):
            raise AvatarKitError(ErrorCode.CONNECTION_IN_PROGRESS, f"already {self._state}")
        self._closing = False
        self._set_state(ConnectionState.CONNECTING, StateReason.USER_ACTION)
        self._task = asyncio.create_task(self._run(fresh_token))

    def _serve(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()  # on its own thread, once _shutdown() has stopped it

    async def _shutdown(self) -> None:
        """Cancel every task, wait for them all, then stop the loop: none is left pending."""
        try:
            current = asyncio.current_task()
            # Until none is left: a cancel can be swallowed (3.11's wait_for in a library
            # racing a result) and the session goes on to spawn its writer.
            while tasks := [t for t in asyncio.all_tasks() if t is not current]:
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks, timeout=0.5)
            if self._state != ConnectionState.FAILED:
                self._set_state(ConnectionState.DISCONNECTED, StateReason.USER_ACTION)
        finally:
            asyncio.get_running_loop().stop()

    async def _run(self, fresh_token: bool = False) -> None:
        attempt, reconnecting = 0, fresh_token
        while not self._closing:
            try:
                if reconnecting and self._token_provider is not None:
                    await self._refresh_token()  # tokens are single-use: one per connection
                await self._session()
                return  # closed by us
            except asyncio.CancelledError:
                raise
            except AvatarKitError as error:
                if self._closing:
                    return
                self._abandon_in_flight()
                retry = error.code not in FATAL_ERRORS and attempt < self.reconnect_attempts
                if error.code in TOKEN_ERRORS and self._token_provider is None:
                    # Only a refusal while reconnecting may heal by itself (the server may
                    # not have noticed the dropped connection holding this token yet).
                    retry = retry and reconnecting and error.code == ErrorCode.SESSION_TOKEN_INVALID
                if error.code != self._reported:
                    self.sink.on_error(error)
                self._reported = None
                if not retry:
                    reason = (
                        StateReason.TOKEN_ERROR
                        if error.code in TOKEN_ERRORS
                        else StateReason.NETWORK_ERROR
                    )
                    self._set_state(ConnectionState.FAILED, reason, error)
                    return
                attempt = 0 if self._state == ConnectionState.CONNECTED else attempt + 1
                self._set_state(ConnectionState.RECONNECTING, StateReason.NETWORK_ERROR, error)
                await asyncio.sleep(self.reconnect_backoff * (2 ** max(0, attempt - 1)))
                reconnecting = True

    async def _refresh_token(self) -> None:
        provider = self._token_provider
        if provider is None:
            return
        try:
            loop = asyncio.get_running_loop()
            token = await loop.run_in_executor(self._executor, provider)
        except Exception as exc:  # the app's callback failed: report it as a token problem
            raise AvatarKitError(
                ErrorCode.SESSION_TOKEN_INVALID, f"token provider failed: {exc}"
            ) from exc
        from avatarkit.sdk import AvatarSDK

        AvatarSDK.set_session_token(token)

    async def _session(self) -> None:
        token = self._token()
        if not token:
            raise AvatarKitError(
                ErrorCode.SESSION_TOKEN_INVALID,
                "no session token: call AvatarSDK.set_session_token()",
            )
        url = f"{self.ingress_url}/websocket?{urlencode({'id': self.avatar_id})}"
        headers = {"X-App-ID": self.app_id, "X-Session-Key": token}
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=HANDSHAKE_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE,
            )
        except InvalidStatus as exc:
            raise refusal(exc) from exc
        except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
            raise AvatarKitError(
                ErrorCode.CONNECTION_FAILED, f"cannot reach {self.ingress_url}: {exc}"
            ) from exc
        async with ws:
            audio_format = pb.AUDIO_FORMAT_OGG_OPUS if self.ogg_opus else pb.AUDIO_FORMAT_PCM_S16LE
            await ws.send(encode_configure(self.sample_rate, audio_format=audio_format))
            await self._handshake(ws)
            if self._closing:
                return  # close() came during the handshake: never report connected
            self._generation += 1
            self._set_state(ConnectionState.CONNECTED, StateReason.DATA_RECEIVED)
            writer = asyncio.create_task(self._write(ws))
            try:
                await self._read(ws)
            finally:
                writer.cancel()

    async def _handshake(self, ws: ClientConnection) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):  # unlike wait_for, never eats a cancel
                data = await ws.recv()
        except ConnectionClosed as exc:  # even a normal close: we were never confirmed
            raise closed_error(exc) or AvatarKitError(
                ErrorCode.CONNECTION_FAILED, "the server closed before confirming the session"
            ) from exc
        except TimeoutError as exc:
            raise AvatarKitError(
                ErrorCode.CONNECTION_FAILED, "no session confirmation from the server"
            ) from exc
        msg = decode_envelope(data)
        if msg.type == pb.MESSAGE_SERVER_ERROR:
            raise server_error(msg.server_error)
        if msg.type != pb.MESSAGE_SERVER_CONFIRM_SESSION:
            raise AvatarKitError(
                ErrorCode.PROTOCOL_ERROR, f"expected session confirmation, got type {msg.type}"
            )

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                msg = decode_envelope(data)
                if msg.type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION:
                    self._deliver(msg)
                elif msg.type == pb.MESSAGE_SERVER_ERROR:
                    failure = server_error(msg.server_error)
                    self._reported = failure.code  # the close that may follow says the same
                    self.sink.on_error(failure)
        except ConnectionClosed as exc:
            closed = closed_error(exc)
            if closed is not None or not self._closing:
                raise closed or AvatarKitError(
                    ErrorCode.CONNECTION_CLOSED, "server closed the connection"
                ) from exc
            return
        if not self._closing:
            code = classify_close(ws.close_code)
            raise AvatarKitError(
                code or ErrorCode.CONNECTION_CLOSED, f"connection closed ({ws.close_code})"
            )

    def _deliver(self, msg: pb.Message) -> None:
        try:
            req_id, frames, end = animation_frames(msg)
        except AvatarKitError as error:
            self.sink.on_error(error)  # bad motion: that stretch plays with a still face
            return
        wire = self._by_req.get(req_id)
        if wire is None or wire.conversation in self._interrupted:
            return  # interrupted or unknown: nothing of it may play
        self.sink.on_motion(wire.conversation, frames, wire.offset, end)
        if end:
            self._by_req.pop(req_id, None)

    async def _write(self, ws: ClientConnection) -> None:
        while True:
            item = self._unsent or await self._outbox.get()
            # Held until sent: a chunk whose send fails goes out first on the next connection.
            self._unsent = item
            match item:
                case CancelRequest(conversation):
                    self._forget(conversation)
                    wire = self._wire.pop(conversation, None)
                    if wire is not None and wire.generation == self._generation:
                        await ws.send(encode_interrupt(wire.req_id))
                case Audio(conversation, pcm, end, samples) if (
                    conversation not in self._interrupted
                ):
                    await self._send_audio(ws, conversation, pcm, end, samples)
            self._unsent = None

    async def _send_audio(
        self, ws: ClientConnection, conversation: str, pcm: bytes, end: bool, samples: int = -1
    ) -> None:
        if conversation in self._cut:
            if end:
                del self._cut[conversation]
            return
        wire = self._wire.get(conversation)
        if wire is None or wire.generation != self._generation:
            offset = self._sent.get(conversation, 0) / self.sample_rate
            wire = _WireRequest(conversation, new_req_id(), offset, self._generation)
            self._wire[conversation] = self._by_req[wire.req_id] = wire
        await ws.send(encode_audio(wire.req_id, pcm, end))
        played = samples if samples >= 0 else len(pcm) // 2
        self._sent[conversation] = self._sent.get(conversation, 0) + played
        if end:
            self._wire.pop(conversation, None)
            self._sent.pop(conversation, None)

    def _forget(self, conversation: str) -> None:
        """An interrupted conversation: refuse its late audio and motion, keep no state."""
        self._interrupted[conversation] = None
        while len(self._interrupted) > INTERRUPTED_MEMORY:
            del self._interrupted[next(iter(self._interrupted))]  # oldest first
        self._sent.pop(conversation, None)
        for req_id in [r for r, w in self._by_req.items() if w.conversation == conversation]:
            del self._by_req[req_id]  # its late frames find no request and are dropped

    def _abandon_in_flight(self) -> None:
        """The connection died: motion still owed on it will never come; close those streams.

        Conversations whose audio has not ended continue under a new wire request.
        """
        for req_id, wire in list(self._by_req.items()):
            if wire.generation == self._generation:
                del self._by_req[req_id]
                ended = self._wire.get(wire.conversation) is not wire
                if not ended and self.ogg_opus:  # cannot continue: its stream's headers are gone
                    self._cut[wire.conversation] = None
                    self._wire.pop(wire.conversation, None)
                    self._sent.pop(wire.conversation, None)
                if ended or self.ogg_opus:
                    self.sink.on_motion(wire.conversation, [], 0.0, True)

    def _set_state(
        self, state: ConnectionState, reason: StateReason, error: AvatarKitError | None = None
    ) -> None:
        if state != self._state:
            self._state = state
            self.sink.on_state(state, reason, error)
