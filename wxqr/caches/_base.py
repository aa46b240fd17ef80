"""The small protocol every token cache implements, and the value it stores."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["CachedToken", "TokenCache", "operation_bound"]

#: The longest a single cache or rate-limiter operation may take in the current call: set by
#: wxqr around token refreshes and rate-limit checks (the call's timeout), read by the Redis
#: classes, which never wait longer than ``min(operation_timeout, this)``.
_OPERATION_BOUND: ContextVar[float | None] = ContextVar("wxqr_operation_bound", default=None)


def operation_bound(configured: float) -> float:
    """``configured``, or the current call's timeout when that is shorter."""
    bound = _OPERATION_BOUND.get()
    return configured if bound is None or bound >= configured else bound


@attrs.frozen(repr=False)
class CachedToken:
    """An access token with its absolute expiry.

    Attributes:
        value: the token itself (never logged; ``repr`` masks it).
        expires_at: Unix time (``time.time()`` clock, shared across processes) after which WeChat
            no longer accepts it.
        refresh_at: Unix time from which wxqr fetches a new one; ``None`` means
            ``expires_at - refresh_margin``. Set when WeChat issued a token whose remaining life
            was already inside the margin (``stable_token`` answers the same token until its
            last 5 minutes), so that such a token is used rather than refetched on every call.
    """

    value: str
    expires_at: float
    refresh_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"CachedToken(value={mask(self.value)!r}, expires_at={self.expires_at!r}, "
            f"refresh_at={self.refresh_at!r})"
        )


def mask(secret: str) -> str:
    """Show at most the last 4 characters of a token or secret: ``'***abcd'``."""
    return "***" + secret[-4:] if len(secret) > 12 else "***"


@runtime_checkable
class TokenCache(Protocol):
    """Where access tokens live between calls, and how refreshes are coordinated.

    ``key`` is built by wxqr from the appid and the fetch mode (``"wx123:stable"``); it never
    contains the secret. Implementations add their own namespace.
    """

    async def get(self, key: str) -> CachedToken | None:
        """Return the cached token, or ``None`` (expired entries may be returned; callers check)."""
        ...

    async def set(self, key: str, token: CachedToken) -> None:
        """Store ``token``; it may be dropped once ``token.expires_at`` has passed."""
        ...

    async def delete(self, key: str, *, if_value: str | None = None) -> bool:
        """Delete the entry, atomically only if it still holds ``if_value`` when given.

        Returns:
            Whether an entry was deleted.
        """
        ...

    def lock(self, key: str, *, timeout: float) -> AbstractAsyncContextManager[None]:
        """A mutual-exclusion lock for refreshing ``key``.

        ``timeout`` is how long the holder's refresh may take (wxqr passes its token fetch
        bound). A shared lock must expire by itself so that a crashed holder cannot wedge the
        others, and a waiter should give up (``TokenCacheError``) after that expiry plus
        ``timeout``: by then a live holder would have finished.
        """
        ...

    async def claim(self, key: str, ttl: float) -> bool:
        """Set ``key`` if absent, for ``ttl`` seconds; return whether this caller set it.

        Used for the shared 30 s cooldown between forced ``stable_token`` refreshes.
        """
        ...

    # Not mutated: mutmut would add its helper attributes to this runtime-checkable Protocol,
    # whose members every cache must then have (isinstance fails); the body never runs.
    async def incr(self, key: str, ttl: float, *, amount: int = 1) -> int:  # pragma: no mutate
        """Add ``amount`` (may be negative) to the counter ``key``; return the new value.

        ``amount=0`` only reads (and creates nothing).

        A missing counter starts at 0; it may be dropped ``ttl`` seconds after it was
        created. Used to count forced ``stable_token`` refreshes per day across processes.
        """
        ...

    async def aclose(self) -> None:
        """Release resources the cache owns (never a caller-owned connection)."""
        ...
