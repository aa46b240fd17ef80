"""Token caches: where access tokens live and how refreshes are coordinated.

* :class:`MemoryTokenCache` — the default, one per process.
* :class:`RedisTokenCache` — shared by every process of a deployment (``pip install
  'wxqr[redis]'``; asyncio only, because redis-py is).
* :class:`RedisRateLimiter` — WeChat's per-account rate limits shared by every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import CachedToken, TokenCache
from .memory import MemoryTokenCache

if TYPE_CHECKING:
    from .redis import RedisRateLimiter, RedisTokenCache

__all__ = [
    "CachedToken",
    "MemoryTokenCache",
    "RedisRateLimiter",
    "RedisTokenCache",
    "TokenCache",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `wxqr` works without the optional redis dependency.
    if name in ("RedisTokenCache", "RedisRateLimiter"):
        from . import redis

        return getattr(redis, name)
    raise AttributeError(name)
