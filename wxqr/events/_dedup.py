"""De-duplication of WeChat's resends: claim a key before the handler runs, release it if the
handler fails (reference/events.md §1.7: WeChat delivers up to three times within ~15 s).

:class:`MemoryDedup` is per process; :class:`RedisDedup` makes "once" hold across every worker
process of a deployment (``SET key 1 NX EX ttl``). Keys are hashes of the push's identity
(never a Token, key or body), namespaced under ``wxqr:events:dedup:``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import anyio

from ..errors import ValidationError
from ._errors import DedupError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["MIN_TTL", "Dedup", "MemoryDedup", "RedisDedup"]

#: The shortest dedup lifetime accepted (s): WeChat's resends span ~15 s; WxJava's 10 s Redis
#: TTL, shorter than that window, is the peers' classic bug.
MIN_TTL: Final = 60.0
_MAX_TTL: Final = 86_400.0


def _ttl(ttl: float) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not MIN_TTL <= ttl <= _MAX_TTL:
        raise ValidationError("ttl", f"must be a number of seconds in {MIN_TTL:g}..{_MAX_TTL:g}")
    return float(ttl)


@runtime_checkable
class Dedup(Protocol):
    """What a :class:`~wxqr.events.Receiver` needs from a de-duplication store."""

    async def claim(self, key: str) -> bool:
        """Atomically mark ``key`` as seen; ``True`` if it was not (the caller processes it)."""
        ...

    async def release(self, key: str) -> None:
        """Forget ``key`` (its handler failed), so that WeChat's resend is processed."""
        ...


class MemoryDedup:
    """A per-process dedup store: keys live ``ttl`` seconds; at most ``max_size`` are kept.

    When full, the oldest key is forgotten first. Enough for one worker process; with several,
    use :class:`RedisDedup`.

    Args:
        ttl: seconds a key is remembered (60 .. 86400).
        max_size: the most keys held at once (1 .. 10,000,000).

    Raises:
        ValidationError: an argument is out of range.
    """

    def __init__(self, *, ttl: float = MIN_TTL, max_size: int = 100_000) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int):
            raise ValidationError("max_size", "must be an integer in 1..10000000")
        if not 1 <= max_size <= 10_000_000:
            raise ValidationError("max_size", "must be in 1..10000000")
        self.ttl = _ttl(ttl)
        self.max_size = max_size
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> expiry, oldest first

    def __len__(self) -> int:
        return len(self._seen)

    def _sweep(self, now: float) -> None:
        while self._seen:
            key, expiry = next(iter(self._seen.items()))
            if expiry > now and len(self._seen) < self.max_size:
                break
            del self._seen[key]

    async def claim(self, key: str) -> bool:
        """Mark ``key`` as seen; ``True`` if it was not seen within ``ttl``."""
        now = time.monotonic()
        expiry = self._seen.get(key)
        if expiry is not None and expiry > now:
            return False
        self._seen.pop(key, None)
        self._sweep(now)
        self._seen[key] = now + self.ttl
        return True

    async def release(self, key: str) -> None:
        """Forget ``key``."""
        self._seen.pop(key, None)


class RedisDedup:
    """A dedup store shared by every process through Redis (``SET NX EX``).

    **asyncio only** (redis-py's asyncio client). The client is the caller's: wxqr never
    closes it. Every Redis call is bounded by ``timeout``; a failure raises
    :class:`~wxqr.events.DedupError`, which a receiver logs before running the handler anyway.

    Args:
        redis: a ``redis.asyncio.Redis`` client (owned by the caller).
        ttl: seconds a key is remembered (60 .. 86400); Redis expires it.
        prefix: the key namespace; keys are ``{prefix}:{hash}``.
        timeout: seconds each Redis call may take (0 < timeout <= 30).

    Raises:
        ValidationError: an argument is out of range.
    """

    def __init__(
        self,
        redis: Redis | Any,
        *,
        ttl: float = MIN_TTL,
        prefix: str = "wxqr:events:dedup",
        timeout: float = 1.0,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ValidationError("timeout", "must be a number of seconds in (0, 30]")
        if not 0 < timeout <= 30:
            raise ValidationError("timeout", "must be in (0, 30] seconds")
        if not isinstance(prefix, str) or not prefix:
            raise ValidationError("prefix", "must be a non-empty string")
        self.redis = redis
        self.ttl = _ttl(ttl)
        self.prefix = prefix
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return f"RedisDedup(prefix={self.prefix!r}, ttl={self.ttl:g})"

    def key(self, key: str) -> str:
        """The Redis key used for a dedup key."""
        return f"{self.prefix}:{key}"

    async def claim(self, key: str) -> bool:
        """``SET {prefix}:{key} 1 NX EX ttl``; ``True`` if the key was set (first delivery)."""
        from redis.exceptions import RedisError

        try:
            with anyio.fail_after(self.timeout):
                stored = await self.redis.set(self.key(key), b"1", nx=True, ex=math.ceil(self.ttl))
        except TimeoutError:
            raise DedupError(f"Redis dedup claim took longer than {self.timeout:g} s") from None
        except RedisError as exc:
            raise DedupError(f"Redis dedup claim failed: {type(exc).__name__}") from None
        return bool(stored)

    async def release(self, key: str) -> None:
        """``DEL {prefix}:{key}``."""
        from redis.exceptions import RedisError

        try:
            with anyio.fail_after(self.timeout):
                await self.redis.delete(self.key(key))
        except TimeoutError:
            raise DedupError(f"Redis dedup release took longer than {self.timeout:g} s") from None
        except RedisError as exc:
            raise DedupError(f"Redis dedup release failed: {type(exc).__name__}") from None
