"""Redis token cache and rate limiter: one token fetch, and one rate budget, for a whole cluster.

**asyncio only.** Both classes run on redis-py's asyncio client (``redis.asyncio``), which does
not work under trio; code and tests that use them run on the asyncio backend only.

:class:`RedisTokenCache`
    Every process of a deployment reads the same token from Redis. A refresh happens under
    redis-py's own :class:`redis.asyncio.lock.Lock` (``SET NX PX`` plus its release script; no
    lock of our own), and wxqr re-checks the cache after acquiring it, so N processes that find
    the token expired make *one* fetch between them. That matters most for the classic
    ``cgi-bin/token`` API, where every fetch invalidates the token the other processes hold.

    ======================  ===================================================================
    key                     value
    ======================  ===================================================================
    ``{prefix}:token:{k}``  JSON ``{"v": token, "e": expires_at}``; Redis TTL = time left until
                            ``expires_at`` (at least 1 s)
    ``{prefix}:lock:{k}``   redis-py lock token; expires after ``lock_timeout``
    ``{prefix}:claim:{k}``  ``1`` with ``NX PX ttl``: the shared force-refresh cooldown
    ``{prefix}:count:{k}``  an integer (``INCRBY``; TTL set when created): forced refreshes
                            per day, ``k`` = ``"<appid>:<mode>:forced:<YYYYMMDD>"``
    ======================  ===================================================================

    ``k`` is given by wxqr as ``"<appid>:<mode>"``. The AppSecret is never stored nor used in a
    key, and the token never appears in a key, a log line or a ``repr``.

:class:`RedisRateLimiter`
    A **sliding-window log**: each call's send time (Redis server ``TIME``, so process clocks
    do not matter) is a member of a sorted set. One Lua script drops entries older than the
    period (``ZREMRANGEBYSCORE``), counts the rest (``ZCARD``), and either records the call
    (``ZADD``) or answers how long until the oldest entry leaves the window. Because the check
    and the insert are one atomic step on one clock, no window of ``period`` seconds -- any
    window, not just aligned ones -- ever holds more than ``calls`` admitted calls, whichever
    process made them. The set holds at most ``calls`` members (5,000 for getwxacodeunlimit)
    and expires when idle.

    Why not the ``limits`` library's Redis moving window: it would be a new dependency for
    ~20 lines of Lua; its storage is built from a URL and owns its connection (we must reuse the
    caller's client); its windows are whole seconds/minutes while :class:`~wxqr.RateLimit`
    periods are floats; and it answers "allowed or not" rather than "wait this long", so waiting
    would mean polling. Fixed-window or token-bucket counters were rejected because they admit
    up to twice the rate across a window edge, and WeChat counts per account, not per window.

Why two small Lua scripts are used despite "no hand-written locks": compare-and-delete and
check-then-record must each be *one* atomic step. With a separate GET and DEL another process
could store a fresh token in between, and the DEL would throw it away, causing yet another fetch
(on the classic API, invalidating everyone's token). Redis has no such single command in the
versions we support, and a WATCH/MULTI/EXEC loop needs a dedicated connection and retries for
the same effect. The lock, which *is* available ready-made, is redis-py's.

Bounded: every Redis operation of both classes runs under ``operation_timeout`` (default 2 s,
and never longer than the timeout of the call it serves), whatever the redis-py client's own
``socket_timeout`` (``None`` by default: a stalled Redis would otherwise hang a call forever).

Redis unavailable (any :class:`redis.exceptions.RedisError`, or no answer within the bound):
:class:`~wxqr.errors.TokenCacheError` by default. With ``fallback=True`` the cache logs one
WARNING per outage on the ``wxqr.caches.redis`` logger and behaves as "no cache" -- ``get``
misses, ``set``/``delete`` do nothing, ``lock`` is a process-local lock, ``claim`` succeeds,
``incr`` counts from 0 -- so wxqr fetches tokens directly until Redis is back. Either way, after
a failure Redis is not contacted again for ``outage_cooldown`` seconds (default 5 s): the calls
in between fail (or fall back) at once instead of each waiting out the bound on a dead server.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, NoReturn

import anyio
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError, RedisError

from .._ratelimit import RateLimit
from .._secret import Masked
from ..errors import TokenCacheError, ValidationError
from ._base import CachedToken, operation_bound

__all__ = ["RedisRateLimiter", "RedisTokenCache"]

logger = logging.getLogger(__name__)

# redis-py maps socket failures to its own ConnectionError/TimeoutError; OSError covers the
# rest (e.g. a failing DNS lookup in some versions) and the builtin TimeoutError of our bound.
_REDIS_ERRORS: Final = (RedisError, OSError)

#: What `_run` returns (with fallback) when Redis failed or is cooling down.
_FAILED: Final = object()

#: Default bound of one Redis operation, and of the pause after a failure.
OPERATION_TIMEOUT: Final = 2.0
OUTAGE_COOLDOWN: Final = 5.0


def _seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        low = ">= 0" if allow_zero else "> 0"
        raise ValidationError(name, f"must be a finite number of seconds {low}, got {value!r}")
    return float(value)


class _Outage:
    """When Redis last failed, so it is not asked again during the cool-down."""

    __slots__ = ("cooldown", "until")

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.until = 0.0

    def active(self) -> bool:
        return self.until > time.monotonic()

    def start(self) -> None:
        self.until = time.monotonic() + self.cooldown


# KEYS[1] = token key, ARGV[1] = the token that failed. Deletes only if the stored JSON still
# holds that token; an unreadable value is left alone (the next `set` overwrites it).
_COMPARE_AND_DELETE: Final = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, entry = pcall(cjson.decode, raw)
if ok and type(entry) == 'table' and entry['v'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] = counter, ARGV[1] = amount (0 reads), ARGV[2] = TTL in ms for a new counter.
_INCR: Final = """
if tonumber(ARGV[1]) == 0 then return tonumber(redis.call('GET', KEYS[1]) or '0') end
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
"""

# KEYS[1] = sorted set of send times (microseconds, Redis server clock).
# ARGV[1] = calls, ARGV[2] = period in microseconds, ARGV[3] = a unique member.
# Returns 0 if the call was recorded, else the microseconds to wait before trying again.
_SLIDING_WINDOW: Final = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(period / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
local wait = tonumber(oldest[2]) + period - now
if wait < 1 then wait = 1 end
return wait
"""


class RedisTokenCache:
    """A token cache in Redis, shared by every process that uses the same Redis and prefix.

    asyncio only (redis-py's asyncio client). See the module docstring for the keys it writes.

    Args:
        redis: a ``redis.asyncio.Redis`` client owned by the caller; :meth:`aclose` does not
            close it. ``decode_responses`` may be on or off.
        prefix: namespace of every key, so several applications can share one Redis.
        lock_timeout: seconds after which a refresh lock expires by itself, so a process that
            crashed while holding it cannot block the others for longer. Should exceed the
            client's ``timeout`` (which bounds a whole token fetch, retries included). A waiter
            waits at most ``lock_timeout`` + that fetch timeout: a crashed holder's lock
            expires, and the next holder's fetch is bounded.
        fallback: on a Redis failure, log a warning and behave as if there were no cache
            (wxqr then fetches tokens directly) instead of raising
            :class:`~wxqr.errors.TokenCacheError`.
        operation_timeout: the longest one Redis operation may take (capped further by the
            timeout of the call it serves); a stalled Redis counts as failed after it.
        outage_cooldown: after a failure, seconds during which Redis is not contacted (calls
            fail, or fall back, at once); ``0`` retries Redis on every operation.

    Example::

        cache = RedisTokenCache.from_url("redis://localhost:6379/0")
        async with wxqr.Client(appid, secret, token_cache=cache) as client:
            ...
        await cache.aclose()
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "wxqr",
        lock_timeout: float = 10.0,
        fallback: bool = False,
        operation_timeout: float = OPERATION_TIMEOUT,
        outage_cooldown: float = OUTAGE_COOLDOWN,
    ) -> None:
        self._lock_timeout = _seconds("lock_timeout", lock_timeout)
        self._op_timeout = _seconds("operation_timeout", operation_timeout)
        self._down = _Outage(_seconds("outage_cooldown", outage_cooldown, allow_zero=True))
        if not isinstance(fallback, bool):
            raise ValidationError("fallback", f"must be True or False, got {fallback!r:.40}")
        if not isinstance(prefix, str) or not prefix:
            raise ValidationError("prefix", "must be a non-empty string")
        self._redis = redis
        self._prefix = prefix
        self._fallback = fallback
        self._owns_client = False
        self._closed = False
        self._outage = False
        self._local_locks: dict[str, anyio.Lock] = {}
        self._compare_and_delete = redis.register_script(_COMPARE_AND_DELETE)
        self._incr = redis.register_script(_INCR)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisTokenCache:
        """Create a cache with its own client, closed by :meth:`aclose`.

        Args:
            url: a Redis URL (``redis://``, ``rediss://``, ``unix://``); may carry a password,
                which is never shown in ``repr`` or messages.
            **kwargs: the keyword arguments of :class:`RedisTokenCache` (``prefix``,
                ``lock_timeout``, ``fallback``, ``operation_timeout``, ``outage_cooldown``).

        Returns:
            A cache that owns its connection pool.
        """
        cache = cls(Redis.from_url(url), **kwargs)
        cache._owns_client = True
        return cache

    def __repr__(self) -> str:
        return (
            f"RedisTokenCache(prefix={self._prefix!r}, lock_timeout={self._lock_timeout!r}, "
            f"fallback={self._fallback!r})"
        )

    def _name(self, kind: str, key: str) -> str:
        return f"{self._prefix}:{kind}:{key}"

    async def _run(self, op: str, name: str, command: Callable[[], Awaitable[Any]]) -> Any:
        """Run one Redis command within the bound; on failure raise or (fallback) return
        :data:`_FAILED`. During the cool-down after a failure Redis is not contacted at all."""
        if self._down.active():
            self._unavailable(op, name, None)
            return _FAILED
        failure: BaseException | None = None
        try:
            with anyio.fail_after(operation_bound(self._op_timeout)):
                result = await command()
        except _REDIS_ERRORS as exc:
            failure = exc
        if failure is not None:
            # Out of the handler, so the redis-py exception is not chained to ours: its
            # traceback's locals hold the command's arguments (a token, for set and delete).
            self._down.start()
            self._unavailable(op, name, failure)
            return _FAILED
        self._available()
        return result

    def _unavailable(
        self, op: str, name: str, exc: BaseException | None, *, bound: float | None = None
    ) -> None:
        """Raise TokenCacheError, or (fallback) log the first failure of an outage and return.

        ``bound``: how long a timed-out operation was given (default: one operation's bound).
        """
        # The message names the operation and the key (appid and mode), never a value; the
        # exception type only, since redis-py messages may echo the URL (with its password).
        if exc is None:
            message = (
                f"Redis token cache: {op} {name!r} not attempted (Redis failed less than "
                f"{self._down.cooldown:g} s ago)"
            )
        elif isinstance(exc, TimeoutError):
            waited = operation_bound(self._op_timeout) if bound is None else bound
            message = f"Redis token cache: {op} {name!r} got no answer within {waited:g} s"
        else:
            message = f"Redis token cache: {op} {name!r} failed ({type(exc).__name__})"
        if not self._fallback:
            raise TokenCacheError(message)
        if not self._outage:
            self._outage = True
            logger.warning(
                "%s; fetching tokens without the cache until Redis answers again", message
            )

    def _available(self) -> None:
        if self._outage:
            self._outage = False
            logger.info("Redis token cache is reachable again")

    async def get(self, key: str) -> CachedToken | None:
        """Return the token stored for ``key``, or ``None``.

        Args:
            key: ``"<appid>:<mode>"``.

        Returns:
            The token with its absolute expiry (possibly within wxqr's refresh margin; the
            caller checks), or ``None`` if absent, unreadable, or (fallback) Redis is down.

        Raises:
            TokenCacheError: Redis failed and ``fallback`` is off.
        """
        name = self._name("token", key)
        raw = await self._run("get", name, lambda: self._redis.get(name))
        if raw is None or raw is _FAILED:
            return None
        try:
            entry = json.loads(raw)
            refresh_at = entry.get("r")
            return CachedToken(
                value=Masked(entry["v"]),
                expires_at=float(entry["e"]),
                refresh_at=None if refresh_at is None else float(refresh_at),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            # Not written by this version of wxqr: treat as a miss; the next `set` replaces it.
            logger.warning("ignoring an unreadable token cache entry for %r", key)
            return None

    async def set(self, key: str, token: CachedToken) -> None:
        """Store ``token`` until its absolute expiry.

        The Redis TTL is ``token.expires_at - time.time()``, at least one second, so an entry
        never outlives the token by more than clock skew.

        Raises:
            TokenCacheError: Redis failed and ``fallback`` is off.
        """
        ttl_ms = max(1000, math.ceil((token.expires_at - time.time()) * 1000))
        entry: dict[str, Any] = {"v": token.value, "e": token.expires_at}
        if token.refresh_at is not None:
            entry["r"] = token.refresh_at
        name = self._name("token", key)
        await self._run(
            "set",
            name,
            lambda: self._redis.set(name, json.dumps(entry, separators=(",", ":")), px=ttl_ms),
        )

    async def delete(self, key: str, *, if_value: str | None = None) -> bool:
        """Delete the token for ``key``; with ``if_value``, only if it still is that token.

        The comparison and the deletion are one atomic Lua script, so a fresh token that another
        process stored meanwhile is never thrown away.

        Returns:
            Whether an entry was deleted.

        Raises:
            TokenCacheError: Redis failed and ``fallback`` is off.
        """
        name = self._name("token", key)
        if if_value is None:
            deleted = await self._run("delete", name, lambda: self._redis.delete(name))
        else:
            deleted = await self._run(
                "delete",
                name,
                lambda: self._compare_and_delete(keys=[name], args=[str(if_value)]),
            )
        return deleted is not _FAILED and bool(deleted)

    def lock(self, key: str, *, timeout: float) -> AbstractAsyncContextManager[None]:
        """The cluster-wide lock under which ``key`` is refreshed (redis-py's ``Lock``).

        The lock expires by itself ``lock_timeout`` seconds after it was taken, so a holder that
        crashed delays the others by at most that long; the next waiter then takes it.

        Args:
            key: ``"<appid>:<mode>"``.
            timeout: how long the holder's refresh may take (wxqr passes its fetch timeout).
                A waiter waits at most ``lock_timeout + timeout``: long enough for a crashed
                holder's lock to expire and for the next holder to finish its fetch.

        Raises:
            TokenCacheError: the lock was still held by someone else after that wait (we do not
                go ahead without it: a holder that is alive is fetching right now, and a second
                fetch is what this cache exists to prevent), or Redis failed and ``fallback``
                is off. Losing the lock before release (it expired) is only logged.
        """
        return self._lock(key, wait=self._lock_timeout + timeout)

    @asynccontextmanager
    async def _lock(self, key: str, *, wait: float) -> AsyncIterator[None]:
        # Kept thin: mutmut does not mutate decorated functions, so the decisions live in
        # _acquire (measured), and this only holds what it took.
        lock, name = await self._acquire(key, wait=wait)
        if lock is None:
            async with self._local_lock(key):
                yield
            return
        try:
            yield
        finally:
            await self._release(lock, name)

    async def _acquire(self, key: str, *, wait: float) -> tuple[Lock | None, str]:
        """Take the Redis lock of ``key``: the lock held, or ``None`` for the local fallback
        (Redis down with ``fallback``), with the lock's Redis name."""
        name = self._name("lock", key)
        lock = self._redis.lock(
            name,
            timeout=self._lock_timeout,
            blocking_timeout=wait,
            sleep=0.05,
            # One Lock object per acquisition: the token must not live in thread-local
            # storage shared by every task of the event loop.
            thread_local=False,
        )
        # Each SET NX inside acquire() is one operation; the whole wait is bounded by `wait`
        # plus one operation (redis-py's blocking_timeout is checked between attempts only).
        acquired = _FAILED
        failure: BaseException | None = None
        if not self._down.active():
            bound = wait + operation_bound(self._op_timeout)
            try:
                with anyio.fail_after(bound):
                    acquired = await lock.acquire()
            except _REDIS_ERRORS as exc:
                failure = exc
            if failure is None:
                self._available()
            else:
                self._down.start()
                self._unavailable("lock", name, failure, bound=bound)
        else:
            self._unavailable("lock", name, None)
        if acquired is _FAILED:
            return None, name
        if not acquired:
            raise TokenCacheError(
                f"Redis token cache: {name!r} is still held by another process after "
                f"{wait:g} s; its refresh is slow or it exceeded lock_timeout"
            )
        return lock, name

    async def _release(self, lock: Lock, name: str) -> None:
        # Never raises: the lock expires by itself, and the refresh it guarded has completed
        # (or failed with its own exception, which must not be masked).
        try:
            with anyio.fail_after(operation_bound(self._op_timeout)):
                await lock.release()
        except LockNotOwnedError:
            logger.warning(
                "refresh lock %r expired before it was released; lock_timeout=%g s is shorter "
                "than the refresh took",
                name,
                self._lock_timeout,
            )
        except _REDIS_ERRORS as exc:
            logger.warning(
                "could not release refresh lock %r (%s); it expires within %g s",
                name,
                type(exc).__name__,
                self._lock_timeout,
            )

    @asynccontextmanager
    async def _local_lock(self, key: str) -> AsyncIterator[None]:
        lock = self._local_locks.get(key)
        if lock is None:
            lock = self._local_locks[key] = anyio.Lock()
        async with lock:
            yield

    async def claim(self, key: str, ttl: float) -> bool:
        """Set ``{prefix}:claim:{key}`` if absent, for ``ttl`` seconds (``SET NX PX``).

        Returns:
            Whether this caller set it (``True`` as well when Redis is down with ``fallback``).

        Raises:
            TokenCacheError: Redis failed and ``fallback`` is off.
        """
        name = self._name("claim", key)
        ttl_ms = max(1, math.ceil(ttl * 1000))
        claimed = await self._run(
            "claim", name, lambda: self._redis.set(name, 1, nx=True, px=ttl_ms)
        )
        return claimed is _FAILED or bool(claimed)

    async def incr(self, key: str, ttl: float, *, amount: int = 1) -> int:
        """Add ``amount`` to ``{prefix}:count:{key}`` and return the new value (one script).

        A new counter expires ``ttl`` seconds after its creation; ``amount=0`` only reads.

        Returns:
            The counter's value (``amount`` when Redis is down with ``fallback``).

        Raises:
            TokenCacheError: Redis failed and ``fallback`` is off.
        """
        name = self._name("count", key)
        ttl_ms = max(1, math.ceil(ttl * 1000))
        value = await self._run(
            "incr", name, lambda: self._incr(keys=[name], args=[int(amount), ttl_ms])
        )
        return amount if value is _FAILED else int(value)

    async def aclose(self) -> None:
        """Close the client if it was created by :meth:`from_url`; idempotent.

        A client passed to the constructor belongs to the caller and stays open.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._redis.aclose()


class RedisRateLimiter:
    """A rate limiter whose budget is shared by every process using the same Redis and prefix.

    Implements :class:`wxqr.RateLimiter`: ``acquire(key, limit)`` returns once one more call fits
    in ``limit`` for ``key`` (``"<appid>:<bucket>"``), counting it. The algorithm is an exact
    sliding-window log on the Redis server clock (see the module docstring): never more than
    ``limit.calls`` calls in *any* window of ``limit.period`` seconds, across all processes.

    asyncio only. Waiters of one process queue on a local lock, so each process sends one
    Redis request per attempt, not one per waiting caller.

    Args:
        redis: a ``redis.asyncio.Redis`` client owned by the caller (never closed here).
        prefix: namespace of the keys, ``{prefix}:rate:{key}``.
        operation_timeout: the longest one Redis check may take (capped further by the
            timeout of the call it serves).
        outage_cooldown: after a failure, seconds during which Redis is not contacted: calls
            that need the shared budget fail at once with ``TokenCacheError``.

    Raises:
        TokenCacheError: from :meth:`acquire` when Redis fails or does not answer within the
            bound (the shared budget cannot be checked, and sending anyway could exceed the
            account's limit).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "wxqr",
        operation_timeout: float = OPERATION_TIMEOUT,
        outage_cooldown: float = OUTAGE_COOLDOWN,
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValidationError("prefix", "must be a non-empty string")
        self._op_timeout = _seconds("operation_timeout", operation_timeout)
        self._down = _Outage(_seconds("outage_cooldown", outage_cooldown, allow_zero=True))
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW)
        self._locks: dict[str, anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"RedisRateLimiter(prefix={self._prefix!r})"

    async def acquire(self, key: str, limit: RateLimit) -> None:
        """Wait until a call fits within ``limit`` for ``key``, and count it.

        Args:
            key: ``"<appid>:<bucket>"``, e.g. ``"wx123:getwxacodeunlimit"``.
            limit: at most ``limit.calls`` calls in any ``limit.period`` seconds.

        Raises:
            TokenCacheError: Redis failed, gave no answer within the bound, or failed less than
                ``outage_cooldown`` seconds ago.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        name = f"{self._prefix}:rate:{key}"
        period_us = max(1, round(limit.period * 1_000_000))
        async with lock:
            while True:
                if self._down.active():
                    raise TokenCacheError(
                        f"Redis rate limiter: {name!r} not checked (Redis failed less than "
                        f"{self._down.cooldown:g} s ago)"
                    )
                bound = operation_bound(self._op_timeout)
                try:
                    with anyio.fail_after(bound):
                        wait_us = await self._script(
                            keys=[name], args=[limit.calls, period_us, os.urandom(8).hex()]
                        )
                except _REDIS_ERRORS as exc:
                    self._down.start()
                    _raise_limiter_error(name, exc, bound)
                if not wait_us:
                    return
                await anyio.sleep(int(wait_us) / 1_000_000)


def _raise_limiter_error(name: str, exc: BaseException, bound: float) -> NoReturn:
    if isinstance(exc, TimeoutError):
        detail = f"no answer within {bound:g} s"
    else:
        detail = type(exc).__name__
    raise TokenCacheError(f"Redis rate limiter: {name!r} failed: {detail}") from exc
