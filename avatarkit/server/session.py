"""One Motion Server websocket session: handshake, utterances in, animation out.

Everything runs on the server's event loop. Inference is inline (a push of one audio
chunk costs far less than the chunk lasts); a burst is fed to the model in slices with a
yield between them, so one client's burst never stalls the others. Outgoing envelopes go
through the session's ``Outbox`` (``outbox.py``: one writer task, slow consumers). The
lifecycle is one ``Phase`` (open, closing, slow consumer) that only moves forward.

Over 400 lines on purpose: the handshake, the utterances and the error budget all read
and move one session's phase, open utterances and outbox on one loop; the writer, the
one piece with its own task, lives in ``outbox.py``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.motion import MotionFrame, MotionStream, create_stream
from avatarkit.motion.stream import SUPPORTED_FPS, SUPPORTED_SAMPLE_RATES
from avatarkit.proto import wire_pb2 as pb
from avatarkit.protocol import (
    CLOSE_TOKEN_EXPIRED,
    decode_envelope,
    encode_animation,
    encode_confirm,
    encode_error,
    wire_error,
)
from avatarkit.server.outbox import Animation, Close, Item, Outbox

if TYPE_CHECKING:
    from avatarkit.protocol.ogg_opus import OggOpusDecoder
    from avatarkit.server.state import ServerState

log = logging.getLogger(__name__)

_REMEMBERED_REQUESTS = 64  # ended/dropped req_ids kept to recognise late messages
_LOGGED_ERRORS = 5  # per connection; the rest are counted (stats, and one line at close)
_MAX_DETAIL_CHARS = 256
_OGG_SLICE_BYTES = 4096  # Ogg Opus decoded per step: ~0.5 s of audio at 64 kbit/s, ~5 s at 6


@dataclass(slots=True)
class _Utterance:
    req_id: str
    stream: MotionStream
    audio_bytes: int = 0
    pending: list[MotionFrame] = field(default_factory=list)
    frames_out: int = 0  # frames sent so far
    flush_timer: asyncio.TimerHandle | None = None
    decoder: OggOpusDecoder | None = None  # Ogg Opus sessions only


class Phase(enum.Enum):
    """A session's lifecycle; transitions only forward (``_NEXT_PHASES``)."""

    OPEN = "open"  # handshake, then streaming
    CLOSING = "closing"  # an error and a close frame queued behind what was already sent
    SLOW_CONSUMER = "slowConsumer"  # the backlog is dropped and the connection closed now


_NEXT_PHASES: dict[Phase, frozenset[Phase]] = {
    Phase.OPEN: frozenset({Phase.CLOSING, Phase.SLOW_CONSUMER}),
    Phase.CLOSING: frozenset({Phase.SLOW_CONSUMER}),  # the goodbye itself may not get out
    Phase.SLOW_CONSUMER: frozenset(),
}


class Session:
    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        state: ServerState,
        token_expires_at: float,
        address: str = "",
        app_id: str = "",
    ) -> None:
        self.connection_id = secrets.token_urlsafe(9)
        self.address = address or request.remote or ""  # the client's, behind a trusted proxy
        self.app_id = app_id or state.config.app_id
        self.holds_address_slot = False  # counted in the store's per-address sessions
        self.holds_app_slot = False  # counted in the store's per-app sessions
        self.started_at = time.monotonic()
        self.last_audio_at = self.started_at
        self.token_expires_at = token_expires_at  # unix seconds
        self._request = request
        self._ws = ws
        self._state = state
        self._config = state.config
        self._outbox = Outbox(request, ws, state.config, state.stats, self.connection_id)
        self._utterances: dict[str, _Utterance] = {}
        self._ended: deque[str] = deque(maxlen=_REMEMBERED_REQUESTS)  # completed (end=true)
        # Interrupted, or failed with an error already sent: later audio is dropped silently.
        self._dropped: deque[str] = deque(maxlen=_REMEMBERED_REQUESTS)
        self._sample_rate = 16000
        self._fps = self._config.default_fps
        self._ogg_opus = False
        self.phase = Phase.OPEN
        self._error_tokens = float(self._config.error_burst)
        self._error_refilled_at = self.started_at
        self._rate_limited = False
        self._errors_sent = 0

    # ----- lifecycle -------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once the session is on its way out: no new work is started."""
        return self.phase is not Phase.OPEN

    def _enter(self, phase: Phase) -> bool:
        """Move to ``phase`` if the lifecycle allows it; False when already there or past."""
        if phase not in _NEXT_PHASES[self.phase]:
            return False
        self.phase = phase
        return True

    async def run(self) -> None:
        writer = self._outbox.start()
        try:
            if await self._handshake():
                await self._receive_loop()
            if self.closing:  # let the writer deliver the final error and close frame
                await asyncio.wait({writer}, timeout=self._config.handshake_timeout_s)
        finally:
            self._outbox.stop()
            if self._errors_sent > _LOGGED_ERRORS:
                log.info(
                    "session %s: %d more errors sent, not logged",
                    self.connection_id,
                    self._errors_sent - _LOGGED_ERRORS,
                )
            for utterance in self._utterances.values():
                self._cancel_timer(utterance)
            self._utterances.clear()
            if not self._ws.closed:
                await self._ws.close()

    def fail(
        self, code: ErrorCode | str, detail: str = "", *, close_code: int = 1000, req_id: str = ""
    ) -> None:
        """Send an error, then close the connection once everything queued before it is out."""
        if self.phase is not Phase.OPEN:
            return
        self._send_error(code, detail, req_id=req_id)
        self._enter(Phase.CLOSING)
        self._put(Close(close_code, f"{code}: {detail}" if detail else str(code)))

    def check_limits(self, now_monotonic: float, now_unix: float) -> None:
        """Called by the server's watchdog: token expiry, idle timeout, session duration."""
        cfg = self._config
        if now_unix >= self.token_expires_at:
            self.fail(
                ErrorCode.SESSION_TOKEN_EXPIRED,
                "token expired on an open connection",
                close_code=CLOSE_TOKEN_EXPIRED,
            )
        elif now_monotonic - self.started_at >= cfg.max_session_s:
            self.fail(ErrorCode.SESSION_DURATION_EXCEEDED, f"the limit is {cfg.max_session_s:g} s")
        elif now_monotonic - self.last_audio_at >= cfg.idle_timeout_s:
            self.fail(
                ErrorCode.IDLE_TIMEOUT,
                f"no audio input for {cfg.idle_timeout_s:g} s (idle timeout)",
            )
        elif cfg.send_stall_s and self._outbox.send_stalled(now_monotonic):
            self._on_slow_consumer()

    async def drain(self, deadline: float) -> None:
        """Graceful shutdown: let open utterances finish until ``deadline``, then close."""
        while self._utterances and not self.closing and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for req_id in list(self._utterances):
            self._drop_utterance(req_id)
            self._send_error(ErrorCode.SERVER_SHUTTING_DOWN, "utterance cut short", req_id=req_id)
        self.fail(ErrorCode.SERVER_SHUTTING_DOWN, "closing the connection", close_code=1001)

    # ----- inbound ---------------------------------------------------------------------

    async def _handshake(self) -> bool:
        try:
            msg = await self._ws.receive(timeout=self._config.handshake_timeout_s)
        except TimeoutError:
            self.fail(ErrorCode.PROTOCOL_ERROR, "no ClientConfigureSession message in time")
            return False
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return False
        if msg.type is not WSMsgType.BINARY:
            self.fail(ErrorCode.PROTOCOL_ERROR, "expected binary protobuf message")
            return False
        if len(msg.data) > self._config.max_control_message_bytes:
            self.fail(
                ErrorCode.MESSAGE_TOO_LARGE,
                "a configure message may hold at most "
                f"{self._config.max_control_message_bytes} bytes",
            )
            return False
        try:
            envelope = decode_envelope(msg.data)
        except AvatarKitError:
            self.fail(ErrorCode.PROTOCOL_ERROR, "failed to unmarshal initial message")
            return False
        if envelope.type != pb.MESSAGE_CLIENT_CONFIGURE_SESSION:
            self.fail(
                ErrorCode.PROTOCOL_ERROR,
                f"expected ClientConfigureSession message, got type {envelope.type}",
            )
            return False
        try:
            self._configure(envelope.client_configure_session)
        except AvatarKitError as exc:
            self.fail(exc.code, exc.message)
            return False
        if self._state.draining:  # the upgrade was in flight when draining began, so the
            # drain's list of sessions missed this one: refuse it as drain() would close it
            self.fail(ErrorCode.SERVER_SHUTTING_DOWN, "closing the connection", close_code=1001)
            return False
        if self.closing:  # closed while its configure was on the way (e.g. evicted)
            return False
        try:
            refused = await self._state.promote(self)
        except Exception as exc:  # the shared store is down
            self._state.store_errors.warning("store", "shared store unavailable: %r", exc)
            self.fail(ErrorCode.SERVER_ERROR, "shared state unavailable", close_code=1011)
            return False
        if refused:
            self.fail(ErrorCode.CONCURRENT_LIMIT_EXCEEDED, refused)
            return False
        self._put(encode_confirm(self.connection_id))
        return True

    def _configure(self, cfg: pb.ClientConfigureSession) -> None:
        if cfg.audio_format not in (pb.AUDIO_FORMAT_PCM_S16LE, pb.AUDIO_FORMAT_OGG_OPUS):
            raise AvatarKitError(
                ErrorCode.UNSUPPORTED_AUDIO_FORMAT,
                f"format {cfg.audio_format}; send mono PCM s16le or Ogg Opus",
            )
        wants_egress = cfg.HasField("livekit_egress") or cfg.HasField("agora_egress")
        if wants_egress or cfg.egress_type != pb.EGRESS_TYPE_UNSPECIFIED:
            raise AvatarKitError(
                ErrorCode.EGRESS_UNAVAILABLE, "this server streams motion over the websocket only"
            )
        if cfg.sample_rate not in SUPPORTED_SAMPLE_RATES:
            raise AvatarKitError(
                ErrorCode.UNSUPPORTED_SAMPLE_RATE,
                f"{cfg.sample_rate} Hz; supported: {', '.join(map(str, SUPPORTED_SAMPLE_RATES))}",
            )
        fps_text = cfg.extra_params.get("fps", "")
        if fps_text:
            # Length first: int() raises past 4300 digits (that was an uncaught ValueError).
            if (
                not (len(fps_text) <= 3 and fps_text.isascii() and fps_text.isdigit())
                or int(fps_text) not in SUPPORTED_FPS
            ):
                raise AvatarKitError(
                    ErrorCode.INVALID_REQUEST,
                    f"fps {fps_text!r}; supported: {', '.join(map(str, SUPPORTED_FPS))}",
                )
            self._fps = int(fps_text)
        self._sample_rate = cfg.sample_rate
        self._ogg_opus = cfg.audio_format == pb.AUDIO_FORMAT_OGG_OPUS

    async def _receive_loop(self) -> None:
        while True:
            msg = await self._ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if msg.type is WSMsgType.ERROR:
                log.info("session %s: websocket error %s", self.connection_id, msg.data)
                return
            if self.closing:
                continue  # the session is ending: nothing more is processed
            if msg.type is not WSMsgType.BINARY:
                self._reply_error(ErrorCode.PROTOCOL_ERROR, "expected binary protobuf message")
                continue
            await self._on_binary(msg.data)

    async def _on_binary(self, data: bytes) -> None:
        try:
            envelope = decode_envelope(data)
        except AvatarKitError:
            self._reply_error(ErrorCode.INVALID_REQUEST, "invalid protobuf payload")
            return
        kind = envelope.type
        cfg = self._config
        if kind != pb.MESSAGE_CLIENT_AUDIO_INPUT and len(data) > cfg.max_control_message_bytes:
            # Only audio may be large; an id is never echoed from an oversized message.
            self._reply_error(
                ErrorCode.MESSAGE_TOO_LARGE,
                "a message other than audio may hold at most "
                f"{cfg.max_control_message_bytes} bytes",
            )
            return
        req_id = (
            envelope.client_audio_input.req_id
            if kind == pb.MESSAGE_CLIENT_AUDIO_INPUT
            else envelope.client_interrupt.req_id
            if kind == pb.MESSAGE_CLIENT_INTERRUPT
            else ""
        )
        if len(req_id) > cfg.max_req_id_chars:
            # Every animation message echoes the id: a long one multiplies what goes out
            # and what is remembered per session, so it is refused without being echoed.
            self._reply_error(
                ErrorCode.INVALID_REQUEST, f"req_id longer than {cfg.max_req_id_chars} characters"
            )
            return
        if kind == pb.MESSAGE_CLIENT_AUDIO_INPUT:
            too_large = len(data) > cfg.max_message_bytes
            await self._on_audio(envelope.client_audio_input, too_large)
        elif kind == pb.MESSAGE_CLIENT_INTERRUPT:
            self._on_interrupt(envelope.client_interrupt.req_id)
        elif kind == pb.MESSAGE_CLIENT_CONFIGURE_SESSION:
            self._reply_error(ErrorCode.INVALID_REQUEST, "the session is already configured")
        else:
            self._reply_error(ErrorCode.PROTOCOL_ERROR, f"type {kind}")

    async def _on_audio(self, audio_in: pb.ClientAudioInput, too_large: bool) -> None:
        req_id = audio_in.req_id
        if not req_id:
            self._reply_error(ErrorCode.INVALID_REQUEST, "ClientAudioInput without req_id")
            return
        if req_id in self._dropped:
            return  # late audio of an interrupted or failed utterance: nothing more for it
        if req_id in self._ended:
            self._reply_error(
                ErrorCode.INVALID_REQUEST, "this req_id has already ended", req_id=req_id
            )
            return
        self.last_audio_at = time.monotonic()
        utterance = self._utterances.get(req_id)
        if utterance is None:
            utterance = self._open_utterance(req_id)
            if utterance is None:
                return
        try:
            if too_large:
                raise AvatarKitError(
                    ErrorCode.MESSAGE_TOO_LARGE,
                    f"an audio message may hold at most {self._config.max_message_bytes} bytes",
                )
            for i, audio in enumerate(self._decode(utterance, audio_in.audio, audio_in.end)):
                if i:  # an Ogg message is decoded in slices, each fed before the next
                    await asyncio.sleep(0)
                    if req_id not in self._utterances or self.closing:
                        break
                utterance.audio_bytes += len(audio)
                if (
                    utterance.audio_bytes
                    > self._config.max_utterance_audio_s * self._sample_rate * 2
                ):
                    raise AvatarKitError(
                        ErrorCode.INVALID_REQUEST,
                        f"utterance exceeds {self._config.max_utterance_audio_s:g} s of audio",
                    )
                await self._feed(utterance, audio)
            if audio_in.end:
                utterance.pending.extend(utterance.stream.finish())
        except AvatarKitError as exc:
            self._drop_utterance(req_id)
            self._reply_error(exc.code, exc.message, req_id=req_id)
            return
        except Exception:  # a model or decoder bug costs this utterance, not the session
            log.exception("session %s: utterance %r failed", self.connection_id, req_id)
            self._drop_utterance(req_id)
            self._send_error(ErrorCode.SERVER_ERROR, "motion inference failed", req_id=req_id)
            return
        if req_id not in self._utterances:
            return  # interrupted while the burst was being fed
        if audio_in.end:
            self._flush(utterance, end=True)
            self._utterances.pop(req_id, None)
            self._ended.append(req_id)
            self._state.stats.utterances += 1
        else:
            self._flush(utterance)

    def _open_utterance(self, req_id: str) -> _Utterance | None:
        if self._state.draining:
            self._reply_error(ErrorCode.SERVER_SHUTTING_DOWN, "no new utterances", req_id=req_id)
            return None
        if len(self._utterances) >= self._config.max_open_utterances:
            self._reply_error(
                ErrorCode.INVALID_REQUEST,
                f"at most {self._config.max_open_utterances} utterances may be open at once",
                req_id=req_id,
            )
            return None
        try:
            stream = create_stream(self._sample_rate, self._fps, model=self._config.motion_model)
        except AvatarKitError as exc:
            self._reply_error(exc.code, exc.message, req_id=req_id)
            return None
        except Exception:  # e.g. a model file that does not load: this request fails, clearly
            log.exception("session %s: cannot create a motion stream", self.connection_id)
            self._send_error(
                ErrorCode.SERVER_ERROR, "the motion model is unavailable", req_id=req_id
            )
            return None
        utterance = self._utterances[req_id] = _Utterance(req_id, stream)
        if self._ogg_opus:
            from avatarkit.protocol.ogg_opus import OggOpusDecoder  # PyAV loads only when needed

            utterance.decoder = OggOpusDecoder(
                self._sample_rate, self._config.max_utterance_audio_s
            )
        return utterance

    @staticmethod
    def _decode(utterance: _Utterance, audio: bytes, end: bool) -> Iterator[bytes]:
        """The chunk as PCM s16le: Ogg Opus sessions decode it, PCM passes through.

        Ogg is decoded ``_OGG_SLICE_BYTES`` at a time (the caller yields to the loop between
        slices): a 1 MiB message can hold minutes of low-bitrate Opus, whose decoding in
        one call would stall every session on the server.
        """
        decoder = utterance.decoder
        if decoder is None:
            yield audio
            return
        for start in range(0, len(audio), _OGG_SLICE_BYTES):
            yield decoder.feed(audio[start : start + _OGG_SLICE_BYTES])
        if end:
            yield decoder.finish()

    async def _feed(self, utterance: _Utterance, audio: bytes) -> None:
        """Push ``audio`` to the model in slices, sending what is ready after each one."""
        step = max(2, int(self._config.inference_slice_s * self._sample_rate) * 2)
        for start in range(0, len(audio), step):
            if start:
                self._flush(utterance)
                await asyncio.sleep(0)  # let other sessions run between slices of a burst
                if utterance.req_id not in self._utterances or self.closing:
                    return
            utterance.pending.extend(utterance.stream.push(audio[start : start + step]))

    def _on_interrupt(self, req_id: str) -> None:
        if not req_id:
            return
        if req_id not in self._ended:
            self._drop_utterance(req_id)
        # Also for an utterance that has ended: its animation still waiting in the outbox
        # (a client that reads slower than a burst is produced) must not go out any more.
        self._outbox.take_back(req_id)

    def _drop_utterance(self, req_id: str) -> None:
        utterance = self._utterances.pop(req_id, None)
        if utterance is not None:
            self._cancel_timer(utterance)
            utterance.pending.clear()
        if req_id not in self._dropped:
            self._dropped.append(req_id)

    # ----- outbound --------------------------------------------------------------------

    def _flush(self, utterance: _Utterance, end: bool = False, force: bool = False) -> None:
        """Send ready frames: the first ``unbatched_frames`` the moment they are ready (the
        client starts playing on them), then in batches (see ServerConfig)."""
        cfg = self._config
        if not (
            end
            or force
            or utterance.frames_out < cfg.unbatched_frames
            or len(utterance.pending) >= cfg.batch_frames
        ):
            if utterance.pending and utterance.flush_timer is None:
                utterance.flush_timer = asyncio.get_running_loop().call_later(
                    cfg.flush_after_s, self._flush_later, utterance
                )
            return
        self._cancel_timer(utterance)
        frames, utterance.pending = utterance.pending, []
        size = cfg.max_frames_per_message
        batches = [frames[i : i + size] for i in range(0, len(frames), size)] or (
            [[]] if end else []
        )
        for i, batch in enumerate(batches):
            last = end and i == len(batches) - 1
            data = encode_animation(self.connection_id, utterance.req_id, batch, last, self._fps)
            self._put(Animation(utterance.req_id, data))
            self._state.stats.frames_sent += len(batch)
            utterance.frames_out += len(batch)

    def _flush_later(self, utterance: _Utterance) -> None:
        utterance.flush_timer = None
        if self._utterances.get(utterance.req_id) is utterance and not self.closing:
            self._flush(utterance, force=True)

    @staticmethod
    def _cancel_timer(utterance: _Utterance) -> None:
        if utterance.flush_timer is not None:
            utterance.flush_timer.cancel()
            utterance.flush_timer = None

    def _reply_error(self, code: ErrorCode | str, detail: str = "", *, req_id: str = "") -> None:
        """An error answering one of the client's messages, within its error budget."""
        cfg, now = self._config, time.monotonic()
        self._error_tokens = min(
            float(cfg.error_burst),
            self._error_tokens + (now - self._error_refilled_at) * cfg.error_rate_per_s,
        )
        self._error_refilled_at = now
        if self._error_tokens >= 1.0:
            self._error_tokens -= 1.0
            self._rate_limited = False
            self._send_error(code, detail, req_id=req_id)
            return
        self._state.stats.count_error(code)
        if not self._rate_limited:  # said once per episode; the rest is dropped unanswered
            self._rate_limited = True
            self._send_error(
                ErrorCode.RATE_LIMITED,
                f"more than {cfg.error_burst} erroneous messages at once "
                f"({cfg.error_rate_per_s:g}/s sustained); further ones get no answer",
            )

    def _send_error(self, code: ErrorCode | str, detail: str = "", *, req_id: str = "") -> None:
        # A detail may quote what the client sent (an fps value, ...): never echo much of it.
        wire_code, message = wire_error(code, detail[:_MAX_DETAIL_CHARS])
        self._state.stats.count_error(code)
        self._errors_sent += 1
        if self._errors_sent <= _LOGGED_ERRORS:  # a bounded log per connection
            log.info("session %s: %s", self.connection_id, message)
        self._put(encode_error(wire_code, message, connection_id=self.connection_id, req_id=req_id))

    def _put(self, item: Item) -> None:
        if not self._outbox.put(item):
            self._on_slow_consumer()

    def _on_slow_consumer(self) -> None:
        if not self._enter(Phase.SLOW_CONSUMER):
            return
        self._state.stats.count_error(ErrorCode.SLOW_CONSUMER)
        log.warning(
            "session %s: slow consumer, %d messages unsent; closing",
            self.connection_id,
            len(self._outbox),
        )
        self._outbox.close_slow_consumer()
