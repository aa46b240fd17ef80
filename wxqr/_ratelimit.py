"""Client-side rate limiting for WeChat's documented per-endpoint rates.

WeChat counts calls per account (appid), not per process: ``getwxacodeunlimit`` allows 5,000
calls a minute, the ``qrcodejump*`` family 5 a second. Going over answers 45011 / 44990, and a
storm of those wastes the quota of the whole account, so the client waits *before* sending.

:class:`MemoryRateLimiter` keeps the budget in this process; ``wxqr.caches.RedisRateLimiter``
shares it between every process using the same Redis.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, Protocol, runtime_checkable

import anyio
import attrs

from .errors import ValidationError

__all__ = ["DEFAULT_RATE_LIMITS", "MemoryRateLimiter", "RateLimit", "RateLimiter"]


@attrs.frozen
class RateLimit:
    """At most ``calls`` calls in any window of ``period`` seconds."""

    calls: int = attrs.field()
    period: float = attrs.field()

    @calls.validator
    def _check_calls(self, _: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError("calls", f"must be an integer >= 1, got {value!r}")

    @period.validator
    def _check_period(self, _: object, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValidationError("period", f"must be a number of seconds > 0, got {value!r}")


#: The documented limits, by bucket name. Pass ``rate_limits={}`` to ``wxqr.Client`` to switch
#: client-side limiting off, or ``{**DEFAULT_RATE_LIMITS, "qrcodejump": RateLimit(2, 1)}`` to
#: change one.
DEFAULT_RATE_LIMITS: Final[Mapping[str, RateLimit]] = MappingProxyType(
    {
        # getUnlimitedQRCode: 5,000 calls/minute per account (reference §6.2).
        "getwxacodeunlimit": RateLimit(5000, 60.0),
        # qrcodejumpadd/get/delete/publish/download: > 5 requests/second answers 44990 (§5).
        "qrcodejump": RateLimit(5, 1.0),
        # generatescheme / generatenfcscheme / generate_urllink: > 100 calls/second answers
        # 44990 (links.md §2, §4, §5; inferred: one budget for the three).
        "wxalink": RateLimit(100, 1.0),
    }
)


@runtime_checkable
class RateLimiter(Protocol):
    """Waits until one more call fits within ``limit`` for ``key`` (``"<appid>:<bucket>"``)."""

    async def acquire(self, key: str, limit: RateLimit) -> None:
        """Return once a call may be sent; the call is counted from that moment."""
        ...


class MemoryRateLimiter:
    """A sliding-window-log limiter in this process's memory.

    A log of the send times of the last ``limit.calls`` calls per key makes the guarantee exact:
    no window of ``period`` seconds ever holds more than ``calls`` sends (a token bucket would
    allow a burst at a window edge to double the rate). The log is bounded by ``calls`` (5,000
    floats at most for the default limits), and each acquire is amortised O(1).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def acquire(self, key: str, limit: RateLimit) -> None:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
            self._logs[key] = deque()
        log = self._logs[key]
        # Waiters queue on the lock (anyio locks are fair), so callers are served in order.
        async with lock:
            while True:
                now = self._clock()
                horizon = now - limit.period
                while log and log[0] <= horizon:
                    log.popleft()
                if len(log) < limit.calls:
                    log.append(now)
                    return
                await anyio.sleep(log[0] - horizon)
