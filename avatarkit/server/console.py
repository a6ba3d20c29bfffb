"""Console API: ``POST /v1/console/session-tokens`` exchanges an API key for a token of its app."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.protocol.errors import WIRE_ERRORS
from avatarkit.server.state import ServerState

STATE_KEY = web.AppKey("avatarkit_state", ServerState)


def error_response(status: int, code: ErrorCode | str, detail: str) -> web.Response:
    """The ``{"errors": [...]}`` body the public SDK reads (phrase first, see WIRE_ERRORS)."""
    wire = WIRE_ERRORS.get(code) if isinstance(code, ErrorCode) else None
    title = wire.phrase if wire else str(code)
    body = {"errors": [{"status": status, "code": str(code), "title": title, "detail": detail}]}
    return web.json_response(body, status=status)


# The vendor's server answers a missing, forged or malformed session token with exactly
# these bytes (its e2e suite compares the raw body), before it looks at the app id.
INVALID_TOKEN_BODY = b'{"message":"Invalid session token"}\n'


def invalid_token_response() -> web.Response:
    return web.Response(status=400, body=INVALID_TOKEN_BODY, content_type="application/json")


def refusal(exc: AvatarKitError, status: int | None = None) -> web.Response:
    wire = WIRE_ERRORS.get(exc.code)
    return error_response(
        status or (wire.code if wire and wire.code >= 400 else 400), exc.code, exc.message
    )


async def create_session_token(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if "Origin" in request.headers:
        # Browsers always send Origin on a cross-site POST. The API key belongs on a backend,
        # so a browser is refused outright (and no CORS headers are ever sent).
        return error_response(403, ErrorCode.INVALID_REQUEST, "the Console API is not for browsers")
    state.apps.refresh()
    found = await state.apps.authenticate(request.headers.get("X-Api-Key", "")[:256])
    if found is None:
        # 403, not 401: the public SDK reads a bare 401 as "session token expired".
        return error_response(403, "invalidApiKey", "invalid API key")
    app, key_id = found
    try:  # a body trickled in a byte at a time must not hold the connection for ever
        raw = await asyncio.wait_for(request.read(), state.config.header_timeout_s)
    except TimeoutError:
        return error_response(408, ErrorCode.INVALID_REQUEST, "request body not received in time")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a number too long to
        body = None  # convert, or nested deeper than the parser's recursion limit
    if not isinstance(body, dict):
        return error_response(400, ErrorCode.INVALID_REQUEST, "body must be a JSON object")
    app_id = body.get("appId")
    if app_id is not None and app_id != app.app_id:
        if isinstance(app_id, str) and state.apps.app(app_id) is not None:
            return error_response(
                400, ErrorCode.APP_ID_MISMATCH, "app id mismatch: the API key is another app's"
            )
        return error_response(
            404, ErrorCode.APP_ID_UNRECOGNIZED, f"app id unrecognized: {str(app_id)[:128]!r}"
        )
    expire_at = body.get("expireAt")
    if isinstance(expire_at, bool) or not isinstance(expire_at, int | float):
        return error_response(400, ErrorCode.INVALID_REQUEST, "expireAt (unix seconds) is required")
    try:
        token = state.signer.issue(
            float(expire_at), app_id=app.app_id, key_id=key_id, max_ttl_s=app.max_token_ttl_s
        )
    except OverflowError:  # a JSON integer beyond float range
        return error_response(400, ErrorCode.INVALID_REQUEST, "expireAt is out of range")
    except AvatarKitError as exc:
        return error_response(400, exc.code, exc.message)
    return web.json_response({"sessionToken": token, "expireAt": int(expire_at)})


def add_console_routes(app: web.Application) -> None:
    app.router.add_post("/v1/console/session-tokens", create_session_token)
