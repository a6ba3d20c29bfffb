"""A Motion Server on its own thread and event loop, for apps, demos and tests.

with EmbeddedServer(avatars="~/avatars") as server:  # optional: your .glb/.vrm/packages
    session = spatius.new_avatar_session(api_key=server.api_key, app_id=server.app_id,
        console_endpoint_url=server.console_url, ingress_endpoint_url=server.ingress_url, ...)
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from aiohttp import web

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.server.app import (
    ASSETS_PATH,
    CONSOLE_PATH,
    INGRESS_BASE_PATH,
    create_app,
    graceful_shutdown,
    server_state,
)
from avatarkit.server.blas import limit_blas_threads
from avatarkit.server.config import ServerConfig, generate_api_key, generate_app_id
from avatarkit.server.guard import GuardedAppRunner, quiet_accept_errors
from avatarkit.server.state import ServerState, ServerStats


class EmbeddedServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        app_id: str | None = None,
        blas_threads: int | None = 1,
        **limits: Any,
    ) -> None:
        """``limits``: any :class:`ServerConfig` field, e.g. ``avatars`` (a folder, file or
        package folder, or a list of them: served and drivable, see
        :mod:`avatarkit.server.catalog`). ``blas_threads``: BLAS threads for the
        whole process from ``start()`` on (see :mod:`avatarkit.server.blas`); None leaves them.
        """
        # Like `avatarkit serve`: AVATARKIT_TOKEN_SECRET, when set, signs the tokens (so an
        # embedded server and other servers sharing the secret accept each other's tokens).
        limits.setdefault("token_secret", os.environ.get("AVATARKIT_TOKEN_SECRET", ""))
        self.config = ServerConfig(
            host=host,
            port=port,
            api_key=api_key or generate_api_key(),
            app_id=app_id or generate_app_id(),
            **limits,
        )
        self.port = port
        self.blas_threads = blas_threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._state: ServerState | None = None

    # ----- addresses and credentials ---------------------------------------------------

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def app_id(self) -> str:
        return self.config.app_id

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def console_url(self) -> str:
        return self.base_url + CONSOLE_PATH

    @property
    def ingress_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}{INGRESS_BASE_PATH}"

    @property
    def assets_url(self) -> str:
        return self.base_url + ASSETS_PATH

    @property
    def stats(self) -> ServerStats:
        return self._running().stats

    @property
    def active_sessions(self) -> int:
        return len(self._state.sessions) if self._state else 0

    def issue_token(self, ttl_s: float = 3600.0, app_id: str | None = None) -> str:
        """A session token without the HTTP round trip (what the Console API would return):
        for ``app_id`` (an app of the apps file, with ``apps_file=``), else the server's."""
        state = self._running()
        if app_id is not None and state.apps.app(app_id) is None:
            raise AvatarKitError(ErrorCode.APP_ID_UNRECOGNIZED, f"no app {app_id!r} here")
        return state.signer.issue(time.time() + ttl_s, app_id=app_id)

    def _running(self) -> ServerState:
        """The live server state; between stop() and start() a coded error (a token
        provider calling us then fails like an unreachable backend would)."""
        if self._state is None:
            raise AvatarKitError(ErrorCode.CONNECTION_FAILED, "the Motion Server is not running")
        return self._state

    # ----- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        if self._thread is not None:
            return self
        if self.blas_threads:
            limit_blas_threads(self.blas_threads)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="avatarkit-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the embedded Motion Server did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful shutdown: open utterances get the grace period, then sessions close."""
        if self._thread is None or self._loop is None or self._runner is None:
            return
        future = asyncio.run_coroutine_threadsafe(graceful_shutdown(self._runner), self._loop)
        try:
            future.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_site())
        except BaseException as exc:  # reported to start()'s caller
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start_site(self) -> None:
        app = await create_app(self.config)
        self._state = server_state(app)
        quiet_accept_errors(asyncio.get_running_loop())
        runner = GuardedAppRunner(
            app,
            self.config,
            handle_signals=False,
            shutdown_timeout=self.config.shutdown_grace_s + 2.0,
            access_log=None,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
