"""What the whole server shares: config, token signer and ledger, live sessions, counters."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from avatarkit.errors import ErrorCode
from avatarkit.server.config import ServerConfig
from avatarkit.server.tokens import TokenLedger, TokenSigner

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

    def count_error(self, code: ErrorCode) -> None:
        self.errors[str(code)] += 1


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.signer = TokenSigner(config.signing_key(), config.app_id, config.max_token_ttl_s)
        self.ledger = TokenLedger()
        self.sessions: set[Session] = set()
        self.stats = ServerStats()
        self.draining = False
        self.known_avatars = _known_avatars(config)  # None: any well-formed id
        self.connections_by_ip: Counter[str] = Counter()

    def admit_ip(self, address: str) -> bool:
        """Count one more live session from ``address``, unless it is at its limit."""
        limit = self.config.max_connections_per_ip
        if limit and self.connections_by_ip[address] >= limit:
            return False
        self.connections_by_ip[address] += 1
        return True

    def release_ip(self, address: str) -> None:
        self.connections_by_ip[address] -= 1
        if self.connections_by_ip[address] <= 0:
            del self.connections_by_ip[address]

    def check_limits(self) -> None:
        now_monotonic, now_unix = time.monotonic(), time.time()
        for session in list(self.sessions):
            try:
                session.check_limits(now_monotonic, now_unix)
            except Exception:  # one broken session must not stop the checks of all the others
                log.exception("limit check failed; closing that session")
                session.fail(ErrorCode.SERVER_ERROR, "internal error", close_code=1011)


def _known_avatars(config: ServerConfig) -> frozenset[str] | None:
    if config.any_avatar:
        return None
    if config.avatars is not None:
        return frozenset(config.avatars)
    from avatarkit.package import list_packages
    from avatarkit.paths import AVATARS_DIR

    return frozenset(m.id for m in list_packages(AVATARS_DIR))  # what the asset service serves
