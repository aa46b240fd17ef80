"""Access tokens: fetching them from WeChat, caching them, and refreshing them exactly once.

Where are tokens refreshed? Here. The transport asks :meth:`TokenManager.get` for a token before
every attempt and calls :meth:`TokenManager.invalidate` when WeChat rejects one.

* Fast path: a warm token is read from a per-process copy, O(1), without a lock or a cache call.
* Slow path: one anyio lock per manager makes concurrent callers share one refresh
  (single-flight); across processes the cache's own lock (Redis) plus a re-check after acquiring
  it makes N processes share one fetch.
* Tokens are treated as expired ``refresh_margin`` seconds early (default 300 s): WeChat's
  ``stable_token`` rotates in the last 5 minutes of a token's life and the classic API keeps the
  old token valid for 5 minutes after a refresh, so 300 s early is the last moment a refresh is
  guaranteed not to race an expiry in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import anyio

from ._decoder import decode
from ._wire import JSON_HEADERS, BodyTooLarge, Sealed, Wire, WireError, dumps
from .caches import CachedToken, TokenCache
from .errors import AccessTokenError, ResponseDecodeError, ResponseTooLargeError, TransportError

__all__ = ["TokenManager", "TokenProvider"]

logger = logging.getLogger("wxqr.tokens")

TokenProvider = Callable[[], Awaitable[str]]

#: WeChat allows 20 forced refreshes a day, at least 30 s apart (reference §2).
FORCE_REFRESH_COOLDOWN = 30.0
#: How long a caller waits for the cross-process refresh lock before giving up with
#: TokenCacheError. Longer than RedisTokenCache's default lock_timeout (10 s), after which the
#: lock of a crashed holder expires and the next waiter takes it.
LOCK_TIMEOUT = 15.0


class TokenManager:
    """Owns the access token of one appid in one fetch mode.

    Args:
        wire: returns the wire token fetches are sent through.
        api_base_url: scheme and host of the API (``https://api.weixin.qq.com``).
        appid: the account's AppID.
        secret: its AppSecret (``None`` with a ``provider``).
        cache: where tokens are shared (memory or Redis).
        stable: use ``POST cgi-bin/stable_token`` (default) instead of ``GET cgi-bin/token``.
        refresh_margin: seconds before expiry at which a token counts as expired.
        provider: an async callable returning a token managed elsewhere; replaces fetching.
        timeout: per-fetch timeout in seconds.
    """

    def __init__(
        self,
        *,
        wire: Callable[[], Wire],
        api_base_url: str,
        appid: str,
        secret: str | None,
        cache: TokenCache,
        stable: bool = True,
        refresh_margin: float = 300.0,
        provider: TokenProvider | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._wire = wire
        self._appid = appid
        self._secret = secret
        self._cache = cache
        self._stable = stable
        self._margin = refresh_margin
        self._provider = provider
        self._timeout = timeout
        self._clock = clock
        self._key = f"{appid}:{'stable' if stable else 'classic'}"
        self._url = api_base_url.rstrip("/") + (
            "/cgi-bin/stable_token" if stable else "/cgi-bin/token"
        )
        self._local: CachedToken | None = None
        self._flight = anyio.Lock()
        self._generation = 0  # bumped by every refresh, so waiters can tell one happened
        #: Number of tokens fetched from WeChat by this manager (for tests and benchmarks).
        self.fetches = 0

    @property
    def cache_key(self) -> str:
        """The cache key: ``"<appid>:stable"`` or ``"<appid>:classic"`` (no secret)."""
        return self._key

    def _fresh(self, token: CachedToken | None) -> bool:
        return token is not None and token.expires_at - self._margin > self._clock()

    async def get(self) -> str:
        """Return a valid token, refreshing it if needed (single-flight)."""
        if self._provider is not None:
            return await self._call_provider()
        local = self._local
        if local is not None and local.expires_at - self._margin > self._clock():
            return local.value
        return await self._refresh(rejected=None)

    async def invalidate(self, failed: str) -> None:
        """Forget ``failed`` after WeChat rejected it, unless it was already replaced.

        Compare-and-delete: a token that another caller (or process) already refreshed is
        never thrown away because of a stale failure.
        """
        if self._provider is not None:
            return
        if self._local is not None and self._local.value == failed:
            self._local = None
        await self._cache.delete(self._key, if_value=failed)

    async def replacement(self, failed: str) -> str:
        """Return a token other than ``failed`` (which WeChat just rejected).

        Raises:
            AccessTokenError: no different token could be obtained (the provider returned the
                same one, or stable_token kept returning it and a forced refresh is cooling down).
        """
        if self._provider is not None:
            token = await self._call_provider()
            if token == failed:
                raise AccessTokenError(
                    40001,
                    "token_provider returned the token WeChat just rejected",
                    endpoint="token_provider",
                )
            return token
        await self.invalidate(failed)
        return await self._refresh(rejected=failed)

    async def _call_provider(self) -> str:
        assert self._provider is not None
        token = await self._provider()
        if not isinstance(token, str) or not token:
            raise AccessTokenError(
                41001, "token_provider returned no token", endpoint="token_provider"
            )
        return token

    async def _refresh(self, *, rejected: str | None) -> str:
        generation = self._generation
        async with self._flight:
            # Another caller may have refreshed while we waited for the lock. Its token is
            # taken even if it is already inside the refresh margin (a token WeChat answered
            # with a short expires_in): refetching once per waiter would defeat single-flight.
            local = self._local
            if (
                local is not None
                and local.value != rejected
                and (
                    self._fresh(local)
                    or (generation != self._generation and local.expires_at > self._clock())
                )
            ):
                return local.value
            cached = await self._cache.get(self._key)
            if self._fresh(cached) and cached is not None and cached.value != rejected:
                self._local = cached
                return cached.value
            async with self._cache.lock(self._key, timeout=LOCK_TIMEOUT):
                # Re-check under the cross-process lock: another process may have fetched.
                cached = await self._cache.get(self._key)
                if self._fresh(cached) and cached is not None and cached.value != rejected:
                    self._local = cached
                    return cached.value
                token = await self._fetch(force=False)
                if token.value == rejected:
                    token = await self._force_refresh(rejected)
                await self._cache.set(self._key, token)
            self._local = token
            self._generation += 1
            return token.value

    async def _force_refresh(self, rejected: str) -> CachedToken:
        # stable_token answers the same token while WeChat believes it valid; if that very
        # token was just rejected, one forced refresh is allowed, shared cooldown permitting.
        if not self._stable or not await self._cache.claim(
            f"{self._key}:force-refresh", FORCE_REFRESH_COOLDOWN
        ):
            raise AccessTokenError(
                40001,
                "WeChat rejected the token and no different token could be obtained "
                "(forced refresh cooling down)",
                endpoint=self._endpoint,
            )
        logger.warning("appid %s: forcing a stable_token refresh", self._appid)
        token = await self._fetch(force=True)
        if token.value == rejected:
            raise AccessTokenError(
                40001, "forced refresh returned the rejected token", endpoint=self._endpoint
            )
        return token

    @property
    def _endpoint(self) -> str:
        return "cgi-bin/stable_token" if self._stable else "cgi-bin/token"

    async def _fetch(self, *, force: bool) -> CachedToken:
        if self._secret is None:
            raise AccessTokenError(
                41004, "no secret and no token_provider", endpoint=self._endpoint
            )
        self.fetches += 1
        started = self._clock()
        wire = self._wire()
        fields = {"grant_type": "client_credential", "appid": self._appid, "secret": self._secret}
        body: bytes | None = None
        if self._stable:
            payload: dict[str, Any] = dict(fields)
            if force:
                payload["force_refresh"] = True
            body = Sealed(dumps(payload))  # holds the secret: masked repr
            del payload
            target = wire.target(self._url)
        else:
            target = wire.target(f"{self._url}?{urlencode(fields)}")  # masked repr
        del fields
        failure: Exception | None = None
        try:
            status, headers, content = await wire.send(
                "POST" if self._stable else "GET",
                target,
                body,
                JSON_HEADERS if self._stable else None,
                self._timeout,
            )
        except WireError as exc:
            failure = (
                ResponseDecodeError(exc.detail, endpoint=self._endpoint)
                if exc.undecodable
                else TransportError(f"token fetch failed: {exc.detail}", endpoint=self._endpoint)
            )
        except BodyTooLarge as exc:
            failure = ResponseTooLargeError(
                exc.limit, endpoint=self._endpoint, declared=exc.declared
            )
        if failure is not None:
            raise failure  # outside the handler: no foreign message in the chain
        data = decode(status, headers, content, expect="json", endpoint=self._endpoint)
        value = data.get("access_token")
        expires_in = data.get("expires_in")
        if not isinstance(value, str) or not value or not isinstance(expires_in, int | float):
            raise ResponseDecodeError(
                "token answer lacks access_token/expires_in", endpoint=self._endpoint
            )
        logger.debug("appid %s: fetched a token valid %ss", self._appid, expires_in)
        return CachedToken(value=value, expires_at=started + float(expires_in))
