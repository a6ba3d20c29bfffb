"""The aiohttp application: Console API, ingress websocket and avatar assets on one port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

from aiohttp import web

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.server.assets import add_asset_routes
from avatarkit.server.config import ServerConfig
from avatarkit.server.console import STATE_KEY, add_console_routes
from avatarkit.server.ingress import INGRESS_PATH, ingress
from avatarkit.server.shared import HEARTBEAT_S
from avatarkit.server.state import ServerState

CONSOLE_PATH = "/v1/console"
INGRESS_BASE_PATH = "/v2/driveningress"
ASSETS_PATH = "/v1/avatars"


async def create_app(config: ServerConfig | None = None) -> web.Application:
    """A ready-to-run application; missing credentials are taken from the env or generated."""
    config = config or ServerConfig()
    from avatarkit.motion.stream import require_model

    # Unusable weights stop the start (motionModelUnavailable), not every utterance later.
    require_model(config.motion_model)
    if not (config.api_key and config.app_id):
        config = config.with_credentials()
    app = web.Application()
    state = app[STATE_KEY] = ServerState(config)
    await asyncio.to_thread(state.catalog.index)  # the first scan; logs what is skipped
    add_console_routes(app)
    app.router.add_get(INGRESS_PATH, ingress)
    app.router.add_get("/v1/health", _health)
    if config.serve_assets:
        add_asset_routes(app, catalog=state.catalog)
    app.cleanup_ctx.append(_watchdog)
    app.on_shutdown.append(_drain_sessions)
    return app


def server_state(app: web.Application) -> ServerState:
    return app[STATE_KEY]


async def _health(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response(
        {
            "status": "draining" if state.draining else "ok",
            "sessions": len(state.sessions),
            "pid": os.getpid(),
        }
    )


async def _watchdog(app: web.Application) -> AsyncIterator[None]:
    """One task checks every session's limits (cheaper than a timer per session), and tells
    the shared store this server is alive."""
    state = app[STATE_KEY]
    try:
        await state.store.heartbeat()  # with --redis: fails here, at start, if Redis is unreachable
    except Exception as exc:
        await state.store.close_quietly()
        raise AvatarKitError(ErrorCode.SERVER_ERROR, f"shared store unavailable: {exc}") from exc

    async def loop() -> None:
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(state.config.watchdog_interval_s)
            state.check_limits()
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                last_beat = time.monotonic()
                try:
                    await state.store.heartbeat()
                except Exception as exc:  # Redis away for a while: keep serving, say so
                    state.store_errors.warning("store", "shared store unavailable: %r", exc)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await state.store.close()


async def graceful_shutdown(runner: web.AppRunner) -> None:
    """Stop listening, let open utterances finish (grace period), then clean up.

    The draining must happen before ``runner.cleanup()``: aiohttp's shutdown stops reading
    from open connections first, so an utterance could not receive its last chunks.
    (Under ``web.run_app`` the on_shutdown hook still closes sessions with a clear error.)
    """
    for site in list(runner.sites):
        await site.stop()  # no new connections
    await _drain_sessions(runner.app)
    await runner.cleanup()


async def _drain_sessions(app: web.Application) -> None:
    """No new sessions or utterances; open ones get the grace period, then sessions close."""
    state = app[STATE_KEY]
    if state.draining:
        return
    state.draining = True
    deadline = time.monotonic() + state.config.shutdown_grace_s
    sessions = list(state.sessions)
    await asyncio.gather(*(s.drain(deadline) for s in sessions), return_exceptions=True)
    while state.sessions and time.monotonic() < deadline + 2.0:
        await asyncio.sleep(0.02)  # sessions deliver their last messages and close
