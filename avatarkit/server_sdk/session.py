"""``AvatarSession``: a backend's connection to the Motion Server (Backend Mode).

Shaped like the public ``spatius`` SDK so a backend can switch between the two::

    session = new_avatar_session(avatar_id=..., api_key=..., app_id=...,
        console_endpoint_url=..., ingress_endpoint_url=..., transport_frames=relay)
    await session.init()            # API key -> session token (Console API)
    await session.start()           # websocket + handshake -> connection id
    req_id = await session.send_audio(pcm, end=True)
    await session.interrupt()
    await session.close()

``transport_frames(envelope_bytes, is_last)`` receives every animation envelope
untouched: the backend relays those bytes to its client, which feeds them to
``AvatarController.yield_frames_data``. Errors are ``AvatarKitError`` with stable codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from avatarkit.callbacks import call_app
from avatarkit.controller.direct import MAX_MESSAGE  # the client's size cap too
from avatarkit.controller.messages import new_req_id
from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.protocol import (
    classify,
    classify_close,
    decode_envelope,
    encode_audio,
    encode_configure,
    encode_interrupt,
    pb,
)

DEFAULT_TOKEN_TTL = 3600.0  # seconds, as the public SDK
HANDSHAKE_TIMEOUT = 10.0
TOKEN_TIMEOUT = 10.0


@dataclass
class SessionConfig:
    avatar_id: str = ""
    api_key: str = field(default="", repr=False)
    app_id: str = ""
    console_endpoint_url: str = "http://127.0.0.1:8765/v1/console"
    ingress_endpoint_url: str = "ws://127.0.0.1:8765/v2/driveningress"
    sample_rate: int = 16000
    expire_at: float | None = None  # unix seconds; default now + DEFAULT_TOKEN_TTL
    use_query_auth: bool = False
    extra_params: dict[str, str] = field(default_factory=dict)
    transport_frames: Callable[[bytes, bool], None] = lambda data, last: None
    on_error: Callable[[Exception], None] = lambda error: None
    on_close: Callable[[], None] = lambda: None


def new_avatar_session(**options) -> AvatarSession:
    """A configured, not yet initialised session (same keywords as ``SessionConfig``)."""
    return AvatarSession(SessionConfig(**options))


class AvatarSession:
    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.session_token: str | None = None
        self.connection_id: str | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._req_id: str | None = None
        self._last_req_id: str | None = None
        self._closed = False

    async def __aenter__(self) -> AvatarSession:
        await self.init()
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def init(self) -> str:
        """Exchange the API key for a session token at the Console API."""
        cfg = self.config
        if not cfg.api_key:
            raise AvatarKitError(ErrorCode.SESSION_TOKEN_INVALID, "missing API key")
        expire_at = int(cfg.expire_at or time.time() + DEFAULT_TOKEN_TTL)
        url = cfg.console_endpoint_url.rstrip("/") + "/session-tokens"
        headers = {"X-Api-Key": cfg.api_key}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TOKEN_TIMEOUT)) as http,
                http.post(url, json={"expireAt": expire_at}, headers=headers) as response,
            ):
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AvatarKitError(ErrorCode.CONNECTION_FAILED, f"cannot reach {url}: {exc}") from exc
        body = _json(text)
        errors = body.get("errors") if isinstance(body, dict) else None
        if status != 200 or errors:
            raise _http_error(status, errors, text, upgrade=False)
        token = body.get("sessionToken") if isinstance(body, dict) else None
        if not token:
            raise AvatarKitError(ErrorCode.PROTOCOL_ERROR, "empty session token in response")
        self.session_token = token
        return token

    async def start(self) -> str:
        """Open the ingress websocket and complete the handshake; returns the connection id."""
        cfg = self.config
        if not self.session_token:
            raise AvatarKitError(
                ErrorCode.SESSION_TOKEN_INVALID, "no session token: call init() first"
            )
        query = {"id": cfg.avatar_id}
        headers = {}
        if cfg.use_query_auth:
            query.update(appId=cfg.app_id, sessionKey=self.session_token)
        else:
            headers = {"X-App-ID": cfg.app_id, "X-Session-Key": self.session_token}
        url = f"{cfg.ingress_endpoint_url.rstrip('/')}/websocket?{urlencode(query)}"
        try:
            self._ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=HANDSHAKE_TIMEOUT,
                max_size=MAX_MESSAGE,
            )
        except InvalidStatus as exc:
            body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
            parsed = _json(body)
            # {"errors": [...]}, or the bare {"message": ...} of an invalid-token refusal
            errors = (parsed.get("errors") or [parsed]) if isinstance(parsed, dict) else None
            raise _http_error(exc.response.status_code, errors, body, upgrade=True) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise AvatarKitError(ErrorCode.CONNECTION_FAILED, f"cannot reach {url}: {exc}") from exc
        try:
            await self._ws.send(encode_configure(cfg.sample_rate, extra_params=cfg.extra_params))
            msg = decode_envelope(await asyncio.wait_for(self._ws.recv(), HANDSHAKE_TIMEOUT))
        except (ConnectionClosed, TimeoutError) as exc:
            await self._ws.close()
            raise AvatarKitError(ErrorCode.CONNECTION_FAILED, f"handshake failed: {exc}") from exc
        except AvatarKitError:  # a malformed reply: the socket must not be left open
            await self._ws.close()
            raise
        if msg.type == pb.MESSAGE_SERVER_ERROR:
            await self._ws.close()
            err = msg.server_error
            raise AvatarKitError(classify(err.code, err.message), err.message)
        if msg.type != pb.MESSAGE_SERVER_CONFIRM_SESSION:
            await self._ws.close()
            raise AvatarKitError(
                ErrorCode.PROTOCOL_ERROR, f"expected session confirmation, got type {msg.type}"
            )
        self.connection_id = msg.server_confirm_session.connection_id
        self._reader = asyncio.create_task(self._read(self._ws))
        return self.connection_id

    async def send_audio(self, audio: bytes, end: bool = False) -> str:
        """One PCM chunk; chunks share a ``req_id`` until ``end=True``. Returns the req_id."""
        if self._ws is None or self._closed:
            raise AvatarKitError(
                ErrorCode.CONNECTION_CLOSED, "session not started or already closed"
            )
        if len(audio) % 2:
            raise AvatarKitError(
                ErrorCode.INVALID_AUDIO, f"{len(audio)} bytes is not whole 16-bit samples"
            )
        if self._req_id is None:
            self._req_id = self._last_req_id = new_req_id()
        req_id = self._req_id
        try:
            await self._ws.send(encode_audio(req_id, audio, end))
        except ConnectionClosed as exc:
            raise AvatarKitError(ErrorCode.CONNECTION_CLOSED, f"send failed: {exc}") from exc
        if end:
            self._req_id = None
        return req_id

    async def interrupt(self) -> str:
        """Stop the most recent request (even after its end): no more animation for it."""
        if self._ws is None or self._closed:
            raise AvatarKitError(
                ErrorCode.CONNECTION_CLOSED, "session not started or already closed"
            )
        if not self._last_req_id:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "no request to interrupt")
        req_id, self._req_id = self._last_req_id, None
        try:
            await self._ws.send(encode_interrupt(req_id))
        except ConnectionClosed as exc:
            raise AvatarKitError(ErrorCode.CONNECTION_CLOSED, f"send failed: {exc}") from exc
        return req_id

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._notify(self.config.on_close)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                if isinstance(data, str):
                    raise AvatarKitError(
                        ErrorCode.PROTOCOL_ERROR, "invalid protobuf payload: a text frame"
                    )
                msg = decode_envelope(data)
                if msg.type == pb.MESSAGE_SERVER_RESPONSE_ANIMATION:
                    self._notify(
                        self.config.transport_frames, bytes(data), msg.server_response_animation.end
                    )
                elif msg.type == pb.MESSAGE_SERVER_ERROR:
                    err = msg.server_error
                    self._notify(
                        self.config.on_error,
                        AvatarKitError(classify(err.code, err.message), err.message),
                    )
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            error = classify_close(code)
            if error and not self._closed:
                self._notify(
                    self.config.on_error, AvatarKitError(error, f"connection closed ({code})")
                )
        except AvatarKitError as exc:  # a malformed message: this connection is done
            self._notify(self.config.on_error, exc)
        if not self._closed:
            self._closed = True
            # close() returns early from now on, so hang up here: after a malformed message
            # the socket would otherwise stay open (and unread) until the server timed out.
            with contextlib.suppress(Exception):
                await ws.close()
            self._notify(self.config.on_close)

    @staticmethod
    def _notify(callback, *args) -> None:
        call_app(callback, *args, what="session")


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _http_error(status: int, errors, text: str, upgrade: bool) -> AvatarKitError:
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    detail = " ".join(str(first.get(k, "")) for k in ("title", "detail", "message")).strip() or text
    code = classify(first.get("code"), detail, http_status=status, upgrade=upgrade)
    return AvatarKitError(code, f"HTTP {status}: {detail}")
