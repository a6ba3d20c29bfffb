"""What the whole server shares: config, token signer, shared store, live sessions, counters."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from avatarkit.errors import ErrorCode
from avatarkit.server.apps import AppRegistry
from avatarkit.server.catalog import AvatarCatalog, sources_of
from avatarkit.server.config import ServerConfig
from avatarkit.server.guard import ThrottledLog
from avatarkit.server.shared import LocalStore, RedisStore, SharedStore
from avatarkit.server.tokens import TokenSigner

if TYPE_CHECKING:
    from avatarkit.server.session import Session

log = logging.getLogger(__name__)


@dataclass
class ServerStats:
    sessions_total: int = 0
    utterances: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def count_error(self, code: ErrorCode | str) -> None:
        self.errors[str(code)] += 1


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.signer = TokenSigner(config.signing_key(), config.app_id, config.max_token_ttl_s)
        self.apps = (
            AppRegistry.from_file(config.apps_file)
            if config.apps_file
            else AppRegistry.single(config.app_id, config.api_key, config.max_token_ttl_s)
        )
        self.store: SharedStore = RedisStore(config.redis_url) if config.redis_url else LocalStore()
        self.sessions: set[Session] = set()
        self.stats = ServerStats()
        self.draining = False
        # What the asset service serves and sessions may drive (any_avatar: any id).
        self.catalog = AvatarCatalog(sources_of(config.avatars), max_bytes=config.max_avatar_bytes)
        # Upgraded but not configured yet, per address, oldest first (local to this process:
        # they last at most handshake_timeout_s).
        self.pending: dict[str, dict[Session, None]] = {}
        self.store_errors = ThrottledLog(log)

    def add_pending(self, session: Session) -> None:
        """Track an unconfigured session; past the per-address cap the oldest is closed."""
        waiting = self.pending.setdefault(session.address, {})
        waiting[session] = None
        limit = self.config.max_pending_handshakes_per_ip
        while limit and len(waiting) > limit:
            oldest = next(iter(waiting))
            del waiting[oldest]
            oldest.fail(
                ErrorCode.CONCURRENT_LIMIT_EXCEEDED,
                f"more than {limit} connections from this address waiting to configure; "
                "closing the oldest",
            )

    async def promote(self, session: Session) -> str | None:
        """The session configured: count it against its address's and its app's limits (on
        every server). None when admitted, else why not."""
        self._forget_pending(session)
        limit = self.config.max_connections_per_ip
        if not await self.store.acquire_address(session.address, limit):
            return f"{limit} sessions per address"
        session.holds_address_slot = True
        app = self.apps.app(session.app_id)
        app_limit = app.max_sessions if app else 0
        if not await self.store.acquire_app(session.app_id, app_limit):
            return f"app {session.app_id!r} has its {app_limit} live sessions (max_sessions)"
        session.holds_app_slot = True
        return None

    async def forget(self, session: Session) -> None:
        self._forget_pending(session)
        if session.holds_address_slot:
            session.holds_address_slot = False
            await self.store.release_address(session.address)
        if session.holds_app_slot:
            session.holds_app_slot = False
            await self.store.release_app(session.app_id)

    def _forget_pending(self, session: Session) -> None:
        waiting = self.pending.get(session.address)
        if waiting is not None:
            waiting.pop(session, None)
            if not waiting:
                del self.pending[session.address]

    def check_limits(self) -> None:
        now_monotonic, now_unix = time.monotonic(), time.time()
        for session in list(self.sessions):
            try:
                session.check_limits(now_monotonic, now_unix)
            except Exception:  # one broken session must not stop the checks of all the others
                log.exception("limit check failed; closing that session")
                session.fail(ErrorCode.SERVER_ERROR, "internal error", close_code=1011)
