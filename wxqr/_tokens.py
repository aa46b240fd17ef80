"""Access tokens: fetching them from WeChat, caching them, and refreshing them exactly once.

Where are tokens refreshed? Here. The transport asks :meth:`TokenManager.get` for a token before
every attempt and calls :meth:`TokenManager.replacement` when WeChat rejects one.

* Fast path: a warm token is read from a per-process copy, O(1), without a lock or a cache call.
* Slow path, one *flight* per manager: the first caller that finds no usable token refreshes;
  every caller arriving meanwhile waits for that flight and shares its outcome -- the token, or
  the failure (each waiter raises its own copy of the error). Across processes the cache's own
  lock (Redis) plus a re-check after acquiring it makes N processes share one fetch.
* The flight retries transient token-endpoint failures (busy, HTTP 5xx, connection errors,
  undecodable answers) with jittered backoff, ``max_retries`` times, all within
  ``fetch_bound`` = ``(max_retries + 1) * timeout`` + the backoff delays; callers never retry a
  failed token fetch themselves.
* Account-level refusals (wrong AppID/AppSecret, IP not whitelisted, frozen secret: the
  catalogue's ``account_level`` rows) are remembered for ``refusal_cooldown`` seconds: calls in
  that window raise a copy of the original error at once, without contacting WeChat.
* Tokens are refreshed ``refresh_margin`` seconds before expiry (default 300 s): WeChat's
  ``stable_token`` rotates in the last 5 minutes of a token's life and the classic API keeps the
  old token valid for 5 minutes after a refresh, so 300 s early is the last moment a refresh is
  guaranteed not to race an expiry in flight. A token whose whole remaining life is already
  inside the margin when WeChat issues it (``stable_token`` answers the *same* token until its
  last 5 minutes, so with a larger margin a refresh brings back the token it replaces) is used
  until half of that remaining life has passed: at most one extra fetch per token lifetime.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Final, TypeGuard, TypeVar
from urllib.parse import urlencode

import anyio

from ._decoder import decode
from ._secret import Masked
from ._wire import JSON_HEADERS, Answer, BodyTooLarge, Sealed, Wire, WireError, dumps
from .caches import CachedToken, TokenCache
from .caches._base import _OPERATION_BOUND
from .errors import (
    AccessTokenError,
    APIError,
    HTTPStatusError,
    ResponseDecodeError,
    ResponseTooLargeError,
    TransportError,
    ValidationError,
)

__all__ = ["TokenManager", "TokenProvider"]

logger = logging.getLogger("wxqr.tokens")

TokenProvider = Callable[[], Awaitable[str]]

#: WeChat allows 20 forced refreshes a day, at least 30 s apart (reference §2).
FORCE_REFRESH_COOLDOWN: Final = 30.0
FORCE_REFRESH_DAILY_LIMIT: Final = 20
#: The day of that limit is taken to be a Beijing (UTC+8) calendar day, like WeChat's other
#: daily quotas (inferred: the reference only says "per day").
_BEIJING_OFFSET: Final = 8 * 3600
#: Documented life of an access token (``expires_in``), reference §1/§2.
TOKEN_LIFETIME: Final = 7200.0
BACKOFF_CAP: Final = 8.0


class _Flight:
    """One refresh in progress; waiters read its outcome once ``done`` is set."""

    __slots__ = ("done", "error", "token")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.token: CachedToken | None = None
        self.error: Exception | None = None


_E = TypeVar("_E", bound=Exception)


def _copy_error(error: _E) -> _E:
    """A fresh copy of ``error`` for one more caller: its own traceback, no chained causes.

    Raising one exception object from 2,000 tasks would grow its traceback with every raise
    and tie the callers' frames together.
    """
    try:
        clone = copy.copy(error)
    except Exception:  # an exotic foreign exception that cannot be copied
        return error
    return clone if type(clone) is type(error) else error


def _transient(error: Exception) -> bool:
    """Whether a failed token fetch may succeed if repeated (the flight retries these)."""
    if isinstance(error, APIError):
        return error.retryable
    if isinstance(error, HTTPStatusError):
        return 500 <= error.status_code <= 599
    if isinstance(error, ResponseTooLargeError):
        return False  # the same answer would come again
    return isinstance(error, TransportError | ResponseDecodeError)


def _refused(error: Exception) -> TypeGuard[APIError]:
    """Whether WeChat refused the account itself (every fetch would answer the same)."""
    # AccessTokenError: wxqr's own "no different token could be obtained" (errcode 40001 on
    # the token endpoint, which the catalogue would read as a wrong AppSecret).
    return (
        isinstance(error, APIError)
        and error.account_level
        and not isinstance(error, AccessTokenError)
    )


class TokenManager:
    """Owns the access token of one appid in one fetch mode.

    Args:
        wire: returns the wire token fetches are sent through.
        api_base_url: scheme and host of the API (``https://api.weixin.qq.com``).
        appid: the account's AppID.
        secret: its AppSecret (``None`` with a ``provider``).
        cache: where tokens are shared (memory or Redis).
        stable: use ``POST cgi-bin/stable_token`` (default) instead of ``GET cgi-bin/token``.
        refresh_margin: seconds before expiry at which a token is refreshed (see the module
            docstring for tokens issued with less life than that).
        provider: an async callable returning a token managed elsewhere; replaces fetching.
        timeout: bound of one token request; also the bound of each token-cache operation.
        max_retries: retries of a transient token-endpoint failure by the flight. A whole
            fetch is bounded by :attr:`fetch_bound`: ``(max_retries + 1) * timeout`` plus the
            backoff delays.
        retry_backoff: first backoff delay (doubles per retry, capped at 8 s, full jitter).
        refusal_cooldown: seconds during which an account-level refusal is answered from
            memory (``0`` asks WeChat every time).
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
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        refusal_cooldown: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._wire = wire
        self._appid = appid
        self._secret = None if secret is None else Masked(secret)
        self._cache = cache
        self._stable = stable
        self._margin = refresh_margin
        self._provider = provider
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = retry_backoff
        self._refusal_cooldown = refusal_cooldown
        self._clock = clock
        self._key = f"{appid}:{'stable' if stable else 'classic'}"
        self._url = api_base_url.rstrip("/") + (
            "/cgi-bin/stable_token" if stable else "/cgi-bin/token"
        )
        self._local: CachedToken | None = None
        self._local_until = 0.0  # when self._local is due for a refresh (self._clock time)
        self._flight: _Flight | None = None
        # An account-level refusal and the time.monotonic() until which it is answered as is.
        self._refusal: tuple[APIError, float] | None = None
        #: The longest one token fetch may take, its retries and backoff delays included.
        self.fetch_bound = (max_retries + 1) * timeout + sum(
            min(BACKOFF_CAP, retry_backoff * 2**n) for n in range(max_retries)
        )
        #: Number of token requests sent to WeChat by this manager (for tests and benchmarks).
        self.fetches = 0

    @property
    def cache_key(self) -> str:
        """The cache key: ``"<appid>:stable"`` or ``"<appid>:classic"`` (no secret)."""
        return self._key

    @property
    def appid(self) -> str:
        """The account's AppID."""
        return self._appid

    @property
    def has_secret(self) -> bool:
        """Whether this manager holds the AppSecret (not with a ``token_provider``)."""
        return self._secret is not None

    def put_secret(self, body: MutableMapping[str, Any], field: str) -> None:
        """Store the AppSecret in ``body[field]``, for the few APIs that take it in a body.

        The caller's frame never holds the secret itself (tracebacks with locals show it);
        the value stored is a masked-repr ``str``.
        """
        if self._secret is None:
            raise ValidationError("secret", "this client has no AppSecret (token_provider)")
        body[field] = self._secret

    def _forced_key(self) -> str:
        day = time.strftime("%Y%m%d", time.gmtime(self._clock() + _BEIJING_OFFSET))
        return f"{self._key}:forced:{day}"

    async def forced_refreshes(self) -> int:
        """Forced ``stable_token`` refreshes spent today (Beijing day) by every client sharing
        this token cache; WeChat allows :data:`FORCE_REFRESH_DAILY_LIMIT` (20)."""
        if self._provider is not None or not self._stable:
            return 0
        with self._bounded():
            return await self._cache.incr(self._forced_key(), 2 * 86400.0, amount=0)

    def _refresh_deadline(self, token: CachedToken) -> float:
        if token.refresh_at is not None:
            return token.refresh_at
        return token.expires_at - self._margin

    def _usable(self, token: CachedToken | None, rejected: str | None) -> bool:
        return (
            token is not None
            and token.value != rejected
            and self._refresh_deadline(token) > self._clock()
        )

    def _adopt(self, token: CachedToken) -> CachedToken:
        if not isinstance(token.value, Masked):
            token = CachedToken(Masked(token.value), token.expires_at, token.refresh_at)
        self._local = token
        self._local_until = self._refresh_deadline(token)
        return token

    async def get(self) -> str:
        """Return a valid token, refreshing it if needed (single-flight).

        Raises:
            CredentialError: (and other account-level errors) the token endpoint refused the
                account, now or less than ``refusal_cooldown`` seconds ago.
            TransportError, SystemBusyError, HTTPStatusError, ResponseDecodeError: the fetch
                failed after the flight's retries.
            TokenCacheError: the token cache failed (and has no fallback).
        """
        if self._provider is not None:
            return await self._call_provider()
        local = self._local
        if local is not None and self._local_until > self._clock():
            return local.value
        return await self._refresh(rejected=None)

    async def warm(self) -> None:
        """Make sure a token is at hand (joining the refresh in flight), without using it.

        The transport calls this before a call queues for a concurrency slot, so that every
        queued caller shares one fetch and its outcome. A ``token_provider`` is not called.
        """
        if self._provider is None and not (
            self._local is not None and self._local_until > self._clock()
        ):
            await self._refresh(rejected=None)

    async def invalidate(self, failed: str) -> None:
        """Forget ``failed`` after WeChat rejected it, unless it was already replaced.

        Compare-and-delete: a token that another caller (or process) already refreshed is
        never thrown away because of a stale failure.
        """
        if self._provider is not None:
            return
        if self._local is not None and self._local.value == failed:
            self._local = None
            self._local_until = 0.0
        with self._bounded():
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

    @contextmanager
    def _bounded(self) -> Iterator[None]:
        # Cache operations made for this refresh wait at most the fetch timeout each.
        reset = _OPERATION_BOUND.set(self._timeout)
        try:
            yield
        finally:
            _OPERATION_BOUND.reset(reset)

    def _raise_if_refused(self) -> None:
        refusal = self._refusal
        if refusal is None:
            return
        if refusal[1] > time.monotonic():
            raise _copy_error(refusal[0])
        self._refusal = None

    async def _refresh(self, *, rejected: str | None) -> str:
        while True:
            self._raise_if_refused()
            flight = self._flight
            if flight is None:
                break
            await flight.done.wait()
            if flight.error is not None:
                raise _copy_error(flight.error)
            token = flight.token
            if token is not None and token.value != rejected and token.expires_at > self._clock():
                return token.value
            # The flight was cancelled, or brought back the very token this caller saw
            # rejected: go again (then this caller may lead).
        flight = self._flight = _Flight()
        try:
            with self._bounded():
                flight.token = await self._lead(rejected)
        except Exception as exc:
            flight.error = exc
            if _refused(exc) and self._refusal_cooldown > 0:
                # A copy: the original's traceback would keep the leader's frames alive.
                self._refusal = (_copy_error(exc), time.monotonic() + self._refusal_cooldown)
                logger.warning(
                    "appid %s: %s refused the account (errcode %s); failing fast for %g s",
                    self._appid,
                    self._endpoint,
                    exc.errcode,
                    self._refusal_cooldown,
                )
            raise
        finally:
            # Also on cancellation: waiters then find no outcome and one of them leads.
            self._flight = None
            flight.done.set()
        return flight.token.value

    async def _lead(self, rejected: str | None) -> CachedToken:
        cached = await self._cache.get(self._key)
        if cached is not None and self._usable(cached, rejected):
            return self._adopt(cached)
        async with self._cache.lock(self._key, timeout=self.fetch_bound):
            # Re-check under the cross-process lock: another process may have fetched.
            cached = await self._cache.get(self._key)
            if cached is not None and self._usable(cached, rejected):
                return self._adopt(cached)
            token = await self._fetch_with_retries(force=False)
            if token.value == rejected:
                token = await self._force_refresh(rejected)
            await self._cache.set(self._key, token)
        return self._adopt(token)

    async def _force_refresh(self, rejected: str) -> CachedToken:
        # stable_token answers the same token while WeChat believes it valid; if that very
        # token was just rejected, one forced refresh is allowed, shared cooldown permitting,
        # and at most 20 a day: counted in the cache (before sending: a lost answer may
        # still have spent one), so every process sharing it sees the same budget.
        if self._stable and await self.forced_refreshes() >= FORCE_REFRESH_DAILY_LIMIT:
            raise self._budget_spent()
        if not self._stable or not await self._cache.claim(
            f"{self._key}:force-refresh", FORCE_REFRESH_COOLDOWN
        ):
            raise AccessTokenError(
                40001,
                "WeChat rejected the token and no different token could be obtained "
                "(forced refresh cooling down)",
                endpoint=self._endpoint,
            )
        key = self._forced_key()
        spent = await self._cache.incr(key, 2 * 86400.0)
        if spent > FORCE_REFRESH_DAILY_LIMIT:  # another process counted in between: undo
            await self._cache.incr(key, 2 * 86400.0, amount=-1)
            raise self._budget_spent()
        logger.warning(
            "appid %s: forcing a stable_token refresh (%d/%d today)",
            self._appid,
            spent,
            FORCE_REFRESH_DAILY_LIMIT,
        )
        token = await self._fetch_with_retries(force=True)
        if token.value == rejected:
            raise AccessTokenError(
                40001, "forced refresh returned the rejected token", endpoint=self._endpoint
            )
        return token

    def _budget_spent(self) -> AccessTokenError:
        return AccessTokenError(
            40001,
            f"WeChat rejected the token, and today's {FORCE_REFRESH_DAILY_LIMIT} forced "
            "stable_token refreshes are spent (refused without asking WeChat)",
            endpoint=self._endpoint,
        )

    @property
    def _endpoint(self) -> str:
        return "cgi-bin/stable_token" if self._stable else "cgi-bin/token"

    async def _fetch_with_retries(self, *, force: bool) -> CachedToken:
        """One fetch with the flight's retries, all within :attr:`fetch_bound`."""
        last: Exception | None = None
        with anyio.move_on_after(self.fetch_bound):
            for attempt in range(self._max_retries + 1):
                try:
                    return await self._fetch(force=force)
                except Exception as exc:
                    if not _transient(exc) or attempt >= self._max_retries:
                        raise
                    last = exc
                delay = random.uniform(0, min(BACKOFF_CAP, self._backoff * 2**attempt))
                logger.info(
                    "%s: %s, retry %d/%d in %.2fs",
                    self._endpoint,
                    type(last).__name__,
                    attempt + 1,
                    self._max_retries,
                    delay,
                )
                await anyio.sleep(delay)
        if last is not None:
            raise _copy_error(last)
        raise TransportError(
            f"token fetch got no answer within {self.fetch_bound:g} s",
            endpoint=self._endpoint,
        )

    async def _fetch(self, *, force: bool) -> CachedToken:
        if self._secret is None:
            raise AccessTokenError(
                41004, "no secret and no token_provider", endpoint=self._endpoint
            )
        self.fetches += 1
        started = self._clock()
        wire = self._wire()
        body: bytes | None = None
        if self._stable:
            body = Sealed(dumps(self._stable_body(force)))  # holds the secret: masked repr
            target = wire.target(self._url)
        else:
            target = wire.target(f"{self._url}?{urlencode(self._classic_params())}")  # masked
        answer: Answer | None = None
        failure: Exception | None = None
        method = "POST" if self._stable else "GET"
        try:
            answer = await wire.send(
                method, target, body, JSON_HEADERS if self._stable else None, self._timeout
            )
            logger.debug("%s %s: HTTP %d", method, target.shown, answer[0])
        except WireError as exc:
            logger.debug("%s %s: %s", method, target.shown, exc.detail)
            failure = (
                ResponseDecodeError(exc.detail, endpoint=self._endpoint)
                if exc.undecodable
                else TransportError(f"token fetch failed: {exc.detail}", endpoint=self._endpoint)
            )
        except BodyTooLarge as exc:
            failure = ResponseTooLargeError(
                exc.limit, endpoint=self._endpoint, declared=exc.declared
            )
        if failure is not None or answer is None:
            # Raised here, outside the handler: no foreign message (which may hold the URL,
            # with the secret for the classic API) in the chain.
            raise failure or TransportError("token fetch failed", endpoint=self._endpoint)
        token = self._parse(answer, started)
        if token is None:
            raise ResponseDecodeError(
                "token answer lacks access_token/expires_in", endpoint=self._endpoint
            )
        logger.debug(
            "appid %s: fetched a token valid %.0fs", self._appid, token.expires_at - started
        )
        return token

    def _stable_body(self, force: bool) -> dict[str, Any]:
        assert self._secret is not None
        body: dict[str, Any] = {
            "grant_type": "client_credential",
            "appid": self._appid,
            "secret": self._secret,
        }
        if force:
            body["force_refresh"] = True
        return body

    def _classic_params(self) -> dict[str, str]:
        assert self._secret is not None
        return {"grant_type": "client_credential", "appid": self._appid, "secret": self._secret}

    def _parse(self, answer: Answer, started: float) -> CachedToken | None:
        # The answer (with the token in it) lives only in this frame, which returns normally;
        # the caller raises, so no traceback shows it.
        status, headers, content = answer
        data = decode(status, headers, content, expect="json", endpoint=self._endpoint)
        value = data.get("access_token")
        expires_in = data.get("expires_in")
        if (
            not isinstance(value, str)
            or not value
            or isinstance(expires_in, bool)
            or not isinstance(expires_in, int | float)
            or not expires_in > 0
        ):
            return None
        life = min(float(expires_in), 10 * TOKEN_LIFETIME)
        expires_at = started + life
        # A token issued with its whole life inside the margin is used for half of it.
        return CachedToken(
            value=Masked(value),
            expires_at=expires_at,
            refresh_at=expires_at - min(self._margin, life / 2),
        )
