"""The default, per-process token cache."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio

from ._base import CachedToken

__all__ = ["MemoryTokenCache"]


class MemoryTokenCache:
    """Keeps tokens in this process's memory.

    Fine for one process. With several worker processes on the *classic* token API each
    process would invalidate the others' tokens: use :class:`wxqr.caches.RedisTokenCache`.
    Works under asyncio and trio (anyio primitives).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._claims: dict[str, float] = {}
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)
        self._clock = clock

    def __repr__(self) -> str:
        return f"MemoryTokenCache(keys={len(self._tokens)})"

    async def get(self, key: str) -> CachedToken | None:
        return self._tokens.get(key)

    async def set(self, key: str, token: CachedToken) -> None:
        self._tokens[key] = token

    async def delete(self, key: str, *, if_value: str | None = None) -> bool:
        current = self._tokens.get(key)
        if current is None or (if_value is not None and current.value != if_value):
            return False
        del self._tokens[key]
        return True

    def lock(self, key: str, *, timeout: float) -> AbstractAsyncContextManager[None]:
        return self._lock(key, timeout)

    @asynccontextmanager
    async def _lock(self, key: str, timeout: float) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        async with lock:
            yield

    async def claim(self, key: str, ttl: float) -> bool:
        now = self._clock()
        until = self._claims.get(key)
        if until is not None and until > now:
            return False
        self._claims[key] = now + ttl
        return True

    async def incr(self, key: str, ttl: float, *, amount: int = 1) -> int:
        now = self._clock()
        value, until = self._counters.get(key, (0, now + ttl))
        if until <= now:
            value, until = 0, now + ttl
        if amount:
            self._counters[key] = (value + amount, until)
        return value + amount

    async def aclose(self) -> None:
        return None
