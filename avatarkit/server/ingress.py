"""Ingress: ``GET /v2/driveningress/websocket?id=<avatar>`` authenticates, then runs a Session.

Auth by headers (``X-App-ID``, ``X-Session-Key``) or query (``appId``, ``sessionKey``).
A refused upgrade is an HTTP error whose JSON body the public SDK classifies.
"""

from __future__ import annotations

import re
from asyncio import to_thread

from aiohttp import web

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.server.console import STATE_KEY, error_response, invalid_token_response, refusal
from avatarkit.server.session import Session
from avatarkit.server.state import ServerState

INGRESS_PATH = "/v2/driveningress/websocket"
_AVATAR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


async def ingress(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    cfg = state.config
    if state.draining:
        return error_response(503, ErrorCode.SERVER_SHUTTING_DOWN, "server shutting down")
    ws = web.WebSocketResponse(
        max_msg_size=2 * cfg.max_message_bytes,
        timeout=2.0,
        compress=False,
        heartbeat=cfg.heartbeat_s or None,
    )
    if not ws.can_prepare(request).ok:
        return error_response(400, ErrorCode.INVALID_REQUEST, "expected a websocket upgrade")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in cfg.allowed_origins and "*" not in cfg.allowed_origins:
        # A browser page of another site must not drive sessions with a token it got hold of.
        return error_response(
            403, ErrorCode.INVALID_REQUEST, f"invalid request: origin {origin!r} not allowed"
        )
    app_id = request.headers.get("X-App-ID") or request.query.get("appId", "")
    token = request.headers.get("X-Session-Key") or request.query.get("sessionKey", "")
    avatar_id = request.query.get("id", "")
    # The vendor's order: the token first, then the app id, then the avatar (its e2e
    # suite pins the answer to a bogus token with an unknown app id and avatar).
    try:
        claims = state.signer.verify(token)
    except AvatarKitError as exc:
        if exc.code is ErrorCode.SESSION_TOKEN_INVALID:
            return invalid_token_response()
        return refusal(exc)
    state.apps.refresh()
    app = state.apps.app(app_id)
    if app is None:
        return error_response(
            404, ErrorCode.APP_ID_UNRECOGNIZED, f"app id unrecognized: {app_id[:128]!r}"
        )
    if claims.app_id != app_id:
        return error_response(
            400, ErrorCode.APP_ID_MISMATCH, "app id mismatch: the token belongs to another app"
        )
    if claims.key_id and app.key(claims.key_id) is None:
        return error_response(
            400,
            ErrorCode.SESSION_TOKEN_INVALID,
            "invalid session token: the API key it was issued for has been revoked",
        )
    if not _AVATAR_ID.fullmatch(avatar_id):
        return error_response(
            404, ErrorCode.AVATAR_NOT_FOUND, "Avatar not found: malformed avatar id"
        )
    if not cfg.any_avatar:
        catalog = state.catalog
        index = catalog.cached_index() if catalog.fresh() else await to_thread(catalog.index)
        if avatar_id not in index.entries:
            detail = catalog.not_found(avatar_id, index)
            return error_response(404, ErrorCode.AVATAR_NOT_FOUND, f"Avatar not found: {detail}")
    if not app.allows(avatar_id):
        return error_response(
            404,
            ErrorCode.AVATAR_NOT_FOUND,
            f"Avatar not found: {avatar_id!r} is not among app {app_id!r}'s avatars",
        )
    address = cfg.client_address(request.remote or "", request.headers.get("X-Forwarded-For"))
    single_use = cfg.single_use_tokens
    try:
        # Checked before the token is marked used: a refused upgrade must not burn it.
        limit = cfg.max_connections_per_ip
        if limit and await state.store.address_sessions(address) >= limit:
            return error_response(
                429,
                ErrorCode.CONCURRENT_LIMIT_EXCEEDED,
                f"concurrent limit exceeded: {limit} sessions per address",
            )
        if app.max_sessions and await state.store.app_sessions(app_id) >= app.max_sessions:
            return error_response(
                429,
                ErrorCode.CONCURRENT_LIMIT_EXCEEDED,
                f"concurrent limit exceeded: app {app_id!r} has its {app.max_sessions} "
                "live sessions (max_sessions)",
            )
        if not await state.store.acquire_token(claims.token_id, claims.expire_at):
            detail = (
                "already used (a token is good for one connection)"
                if single_use
                else "already in use by another connection"
            )
            return error_response(
                400, ErrorCode.SESSION_TOKEN_INVALID, f"invalid session token: {detail}"
            )
    except Exception as exc:  # the shared store is down: refuse rather than skip the rules
        state.store_errors.warning("store", "shared store unavailable: %r", exc)
        return error_response(
            503, ErrorCode.SERVER_ERROR, "internal server error: shared state unavailable"
        )
    session: Session | None = None
    try:
        try:
            await ws.prepare(request)
        except ConnectionResetError:
            # The client left during the upgrade. A plain response (not the half-prepared
            # websocket, which aiohttp would try to close) meets the closed transport as a
            # ConnectionError, which aiohttp takes quietly.
            return web.Response(status=400)
        session = Session(request, ws, state, claims.expire_at, address, app_id)
        state.sessions.add(session)
        state.add_pending(session)
        state.stats.sessions_total += 1
        await session.run()
    finally:
        if session is not None:
            state.sessions.discard(session)
        await _release(state, session, claims.token_id, single_use)
    return ws


async def _release(
    state: ServerState, session: Session | None, token_id: str, single_use: bool
) -> None:
    try:
        if session is not None:
            await state.forget(session)
        if not single_use:
            await state.store.release_token(token_id)
    except Exception as exc:  # counts of a server that stops heart-beating lapse by themselves
        state.store_errors.warning("store", "shared store unavailable: %r", exc)
