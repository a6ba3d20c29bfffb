"""State that several server processes must agree on: used tokens and sessions per address.

:class:`LocalStore` keeps it in this process (the embedded default: one process is the
whole server). :class:`RedisStore` keeps it in Redis (``avatarkit serve --redis URL``), so
any number of workers and machines enforce one rule: a single-use token is accepted by one
of them only once, and an address's session limit counts its sessions on all of them.

Redis layout (``prefix`` defaults to ``avatarkit:``):

- ``{prefix}jti:{token id}`` = server id, ``SET NX`` with the token's remaining lifetime:
  the token has been used (single use), or backs a live connection (reuse mode: deleted
  when that connection closes).
- ``{prefix}addr:{address}``: a hash, server id -> that server's configured sessions from
  the address; ``{prefix}app:{app id}`` the same per app (an apps file's ``max_sessions``).
  A server refreshes ``{prefix}server:{id}`` (expires after ``SERVER_TTL_S``); counts of a
  server whose key has expired (it crashed) are dropped at the next acquire, so a dead
  server never holds an address's slots for long.
"""

from __future__ import annotations

import heapq
import math
import secrets
import time
from collections import Counter
from typing import Protocol

SERVER_TTL_S = 15.0
HEARTBEAT_S = 5.0


class SharedStore(Protocol):
    async def acquire_token(self, token_id: str, expires_at: float) -> bool:
        """Mark the token used; False when it already was (and has not expired)."""

    async def release_token(self, token_id: str) -> None:
        """Reuse mode only: the token's connection closed, it may connect again."""

    async def address_sessions(self, address: str) -> int:
        """Configured sessions from ``address`` (on every server sharing the store)."""

    async def acquire_address(self, address: str, limit: int) -> bool:
        """Count one more session from ``address`` unless it has ``limit`` (0: no limit)."""

    async def release_address(self, address: str) -> None: ...

    async def app_sessions(self, app_id: str) -> int:
        """Configured sessions of ``app_id`` (on every server sharing the store)."""

    async def acquire_app(self, app_id: str, limit: int) -> bool:
        """Count one more session of ``app_id`` unless it has ``limit`` (0: no limit)."""

    async def release_app(self, app_id: str) -> None: ...

    async def heartbeat(self) -> None:
        """Called every few seconds: this server is alive."""

    async def close(self) -> None: ...

    async def close_quietly(self) -> None:
        """Release the connection without telling anyone (it may never have worked)."""


class LocalStore:
    """The in-process store: exact for one process, per process for several."""

    def __init__(self) -> None:
        self._tokens: dict[str, float] = {}  # token id -> expires at (unix s)
        self._expiries: list[tuple[float, str]] = []  # heap: forget tokens once expired
        self._counts: Counter[str] = Counter()  # "addr:<address>" / "app:<app id>" -> sessions

    async def acquire_token(self, token_id: str, expires_at: float) -> bool:
        now = time.time()
        while self._expiries and self._expiries[0][0] <= now:
            _, old = heapq.heappop(self._expiries)
            if self._tokens.get(old, math.inf) <= now:
                del self._tokens[old]
        if token_id in self._tokens:
            return False
        self._tokens[token_id] = expires_at
        heapq.heappush(self._expiries, (expires_at, token_id))
        return True

    async def release_token(self, token_id: str) -> None:
        self._tokens.pop(token_id, None)  # its heap entry is skipped when it comes up

    async def address_sessions(self, address: str) -> int:
        return self._counts["addr:" + address]

    async def acquire_address(self, address: str, limit: int) -> bool:
        return self._acquire("addr:" + address, limit)

    async def release_address(self, address: str) -> None:
        self._release("addr:" + address)

    async def app_sessions(self, app_id: str) -> int:
        return self._counts["app:" + app_id]

    async def acquire_app(self, app_id: str, limit: int) -> bool:
        return self._acquire("app:" + app_id, limit)

    async def release_app(self, app_id: str) -> None:
        self._release("app:" + app_id)

    def _acquire(self, key: str, limit: int) -> bool:
        if limit and self._counts[key] >= limit:
            return False
        self._counts[key] += 1
        return True

    def _release(self, key: str) -> None:
        self._counts[key] -= 1
        if self._counts[key] <= 0:
            del self._counts[key]

    async def heartbeat(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def close_quietly(self) -> None:
        pass


# Sums the counts of live servers (dropping dead ones), then adds one unless at the limit.
_ACQUIRE_ADDRESS = """
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[3] .. fields[i]) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
local limit = tonumber(ARGV[2])
if limit > 0 and total >= limit then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], 86400)
return 1
"""

_COUNT_ADDRESS = """
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[1] .. fields[i]) == 1 then
    total = total + tonumber(fields[i + 1])
  end
end
return total
"""

_RELEASE_ADDRESS = """
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return left
"""


class RedisStore:
    """The store in Redis (PyPI ``redis``, ``pip install avatarkit[redis]``)."""

    def __init__(self, url: str, prefix: str = "avatarkit:") -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # an optional dependency
            raise RuntimeError(
                "--redis needs the redis package: pip install 'avatarkit[redis]'"
            ) from exc
        self._redis = aioredis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = prefix
        self.server_id = secrets.token_hex(8)
        self._last_beat = 0.0
        self._acquire = self._redis.register_script(_ACQUIRE_ADDRESS)
        self._count = self._redis.register_script(_COUNT_ADDRESS)
        self._release = self._redis.register_script(_RELEASE_ADDRESS)

    async def acquire_token(self, token_id: str, expires_at: float) -> bool:
        ttl = max(1, math.ceil(expires_at - time.time()))
        return bool(
            await self._redis.set(f"{self._prefix}jti:{token_id}", self.server_id, nx=True, ex=ttl)
        )

    async def release_token(self, token_id: str) -> None:
        await self._redis.delete(f"{self._prefix}jti:{token_id}")

    async def address_sessions(self, address: str) -> int:
        return await self._sessions(f"{self._prefix}addr:{address}")

    async def acquire_address(self, address: str, limit: int) -> bool:
        return await self._acquire_slot(f"{self._prefix}addr:{address}", limit)

    async def release_address(self, address: str) -> None:
        await self._release(keys=[f"{self._prefix}addr:{address}"], args=[self.server_id])

    async def app_sessions(self, app_id: str) -> int:
        return await self._sessions(f"{self._prefix}app:{app_id}")

    async def acquire_app(self, app_id: str, limit: int) -> bool:
        return await self._acquire_slot(f"{self._prefix}app:{app_id}", limit)

    async def release_app(self, app_id: str) -> None:
        await self._release(keys=[f"{self._prefix}app:{app_id}"], args=[self.server_id])

    async def _sessions(self, key: str) -> int:
        return int(await self._count(keys=[key], args=[self._prefix + "server:"]))

    async def _acquire_slot(self, key: str, limit: int) -> bool:
        await self._beat_if_due()
        args: list[str | int] = [self.server_id, limit, self._prefix + "server:"]
        return bool(await self._acquire(keys=[key], args=args))

    async def heartbeat(self) -> None:
        self._last_beat = time.monotonic()
        await self._redis.set(
            f"{self._prefix}server:{self.server_id}", b"1", ex=math.ceil(SERVER_TTL_S)
        )

    async def _beat_if_due(self) -> None:
        if time.monotonic() - self._last_beat >= HEARTBEAT_S:
            await self.heartbeat()

    async def close(self) -> None:
        try:  # our counts lapse at once; with Redis away they lapse with the heartbeat key
            await self._redis.delete(f"{self._prefix}server:{self.server_id}")
        except Exception:  # a server must stop even when Redis is gone
            pass
        finally:
            await self._redis.aclose()

    async def close_quietly(self) -> None:
        await self._redis.aclose()
