"""Token caches: where access tokens live and how refreshes are coordinated.

* :class:`MemoryTokenCache` — the default, one per process.
* :class:`RedisTokenCache` — shared by every process of a deployment (``pip install
  'wxqr[redis]'``; asyncio only, because redis-py is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import CachedToken, TokenCache
from .memory import MemoryTokenCache

if TYPE_CHECKING:
    from .redis import RedisTokenCache

__all__ = ["CachedToken", "MemoryTokenCache", "RedisTokenCache", "TokenCache"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `wxqr` works without the optional redis dependency.
    if name == "RedisTokenCache":
        from .redis import RedisTokenCache

        return RedisTokenCache
    raise AttributeError(name)
