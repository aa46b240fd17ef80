"""The only code that sends API requests: token per attempt, limits, retries, redaction.

Retry policy (one table, applied per attempt):

=============================================  ==================  ======================
what happened                                  idempotent call     non-idempotent call
=============================================  ==================  ======================
connect error / connect or pool timeout         retry (backoff)     retry (never sent)
read/write error, read timeout, protocol error  retry (backoff)     raise TransportError
HTTP 5xx                                        retry (backoff)     raise HTTPStatusError
-1 / 886001 (system busy)                       retry (backoff)     raise SystemBusyError
truncated image / HTML page / bad JSON          retry (backoff)     raise ResponseDecodeError
40001 / 40014 / 42001                           new token, 1 retry  new token, 1 retry
44990 / 45011 (rate limited: refused unrun)     wait retry_after    wait retry_after
45009 and every other errcode                   raise               raise
=============================================  ==================  ======================

Backoff is ``retry_backoff * 2**n`` capped at 8 s with full jitter; ``max_retries`` bounds the
retries of one call (the token retry is extra and happens at most once). Rate-limit waits are
bounded by ``max_rate_limit_wait`` seconds per call, then :class:`RateLimitError` is raised.

A failed token fetch is not retried here: the token manager's one flight already retried it
(with backoff) for every caller waiting on it, and each of them raises its outcome.

Client-side rate limits are counted when a request is *sent*: the call first takes its
concurrency slot and its token, then the limiter admits it, then it goes out. So no window of a
limit's length sees more than the limit, however long calls queued for slots or for a token.
Calls of one rate bucket hold at most ``min(limit.calls, max_concurrency // 2)`` slots while
they wait for budget, so a backlog of rate-limited calls never starves the other endpoints.

Non-idempotent calls (``shorten.gen`` creates a key, ``qrcode_jump.publish`` spends a monthly
quota) are never retried once the request may have reached WeChat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal
from urllib.parse import urlencode

import anyio
import attrs
import httpx
import sniffio

from . import _validate as v
from ._decoder import decode
from ._ratelimit import RateLimit, RateLimiter
from ._tokens import TokenManager
from ._wire import JSON_HEADERS, BodyTooLarge, Sealed, Target, Wire, WireError, dumps, redact
from .caches._base import _OPERATION_BOUND
from .errors import (
    AccessTokenError,
    APIError,
    HTTPStatusError,
    RateLimitError,
    ResponseDecodeError,
    ResponseTooLargeError,
    TicketNotFoundError,
    TransportError,
)

__all__ = ["Endpoint", "Transport", "install_log_redaction", "redact"]

logger = logging.getLogger("wxqr")

BACKOFF_CAP: Final = 8.0


@attrs.frozen
class Endpoint:
    """What the transport needs to know about one WeChat API.

    Attributes:
        path: path below the host, without a leading slash (``"cgi-bin/qrcode/create"``); also
            the name used in exceptions and logs.
        method: ``"GET"`` or ``"POST"``.
        expect: ``"json"`` or ``"image"``.
        host: ``"api"`` (api.weixin.qq.com) or ``"mp"`` (mp.weixin.qq.com).
        idempotent: safe to resend after the request may have reached WeChat.
        needs_token: sends ``?access_token=``.
        rate_bucket: name of the client-side rate limit that applies (see DEFAULT_RATE_LIMITS).
    """

    path: str
    method: Literal["GET", "POST"] = "POST"
    expect: Literal["json", "image"] = "json"
    host: Literal["api", "mp"] = "api"
    idempotent: bool = True
    needs_token: bool = True
    rate_bucket: str | None = None


class _RedactingFilter(logging.Filter):
    """Masks tokens and secrets in records of loggers that print full URLs (httpx at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping):
            record.args = {key: _redact_obj(value) for key, value in args.items()}
        elif args:
            record.args = tuple(_redact_obj(value) for value in args)
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact(record.msg)
        return True


def _redact_obj(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, httpx.URL | httpx.Request | bytes):
        return redact(str(value))
    return value


_FILTER = _RedactingFilter("wxqr.redact")


def install_log_redaction() -> None:
    """Attach the redacting filter to the loggers that may print request URLs (idempotent).

    httpx logs every request's full URL, ``?access_token=`` included, at INFO.
    """
    # Logger filters only see records logged on that very logger, not on its children.
    for name in (
        "httpx",
        "httpcore",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "aiohttp.client",
        "aiohttp.internal",
        "wxqr",
        "wxqr.tokens",
        "wxqr.caches.redis",
    ):
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)


def _event_loop() -> object:
    """The running event loop (asyncio) or run (trio), to tell two of them apart."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    return None  # pragma: no cover - an unknown library: not checked


#: The bucket gate of endpoints without a rate limit.
_NO_GATE: Final = contextlib.nullcontext()


class Transport:
    """Sends calls for one :class:`wxqr.Client`."""

    def __init__(
        self,
        *,
        wire: Callable[[], Wire],
        tokens: TokenManager,
        appid: str,
        api_base_url: str,
        mp_base_url: str,
        timeout: float,
        max_retries: int,
        max_concurrency: int,
        rate_limits: Mapping[str, RateLimit],
        rate_limiter: RateLimiter,
        retry_backoff: float,
        max_rate_limit_wait: float,
        deadline: float | None = None,
    ) -> None:
        self._wire = wire
        self.tokens = tokens
        self._bases = {"api": api_base_url.rstrip("/"), "mp": mp_base_url.rstrip("/")}
        self._timeout = timeout
        self._max_retries = max_retries
        # fast_acquire: no extra event-loop pass when a slot is free (the common case), which
        # was ~10% of a call's cost.
        self._semaphore = anyio.Semaphore(max_concurrency, fast_acquire=True)
        self._rate_limits = dict(rate_limits)
        self._limiter = rate_limiter
        self._limiter_keys = {bucket: f"{appid}:{bucket}" for bucket in self._rate_limits}
        # Slots a rate bucket may hold while its calls wait for budget (see module docstring).
        self._gates = {
            bucket: anyio.Semaphore(min(limit.calls, max(1, max_concurrency // 2)))
            for bucket, limit in self._rate_limits.items()
        }
        self._loop: object = None  # the event loop this client's connections belong to
        self._backoff = retry_backoff
        self._max_rate_wait = max_rate_limit_wait
        self._deadline = deadline
        self._urls: dict[Endpoint, str] = {}
        # (token, prepared URL with ?access_token=) per endpoint: the query is encoded and the
        # wire's URL object built once per token (every ~2 hours), not once per call.
        self._token_urls: dict[Endpoint, tuple[str, Target]] = {}
        self._plain_urls: dict[Endpoint, Target] = {}
        #: Requests in flight right now, and the most seen at once (for tests/benchmarks).
        self.in_flight = 0
        self.max_in_flight = 0

    def url(self, endpoint: Endpoint) -> str:
        """The absolute URL of ``endpoint`` (without query)."""
        url = self._urls.get(endpoint)
        if url is None:
            url = self._urls[endpoint] = f"{self._bases[endpoint.host]}/{endpoint.path}"
        return url

    def _url_with_token(self, endpoint: Endpoint, token: str) -> Target:
        cached = self._token_urls.get(endpoint)
        if cached is not None and cached[0] == token:
            return cached[1]
        query = urlencode({"access_token": token})
        target = self._wire().target(f"{self.url(endpoint)}?{query}")
        self._token_urls[endpoint] = (token, target)
        return target

    def check_loop(self) -> None:
        """Bind the client to the running event loop on first use; refuse any other loop.

        Raises:
            RuntimeError: the client was first used in another event loop (its connections,
                locks and in-flight token fetch belong to that loop).
        """
        loop = _event_loop()
        if loop is self._loop:
            return
        if self._loop is None:
            self._loop = loop
            return
        raise RuntimeError(
            "this wxqr.Client is bound to the event loop it was first used in; create one "
            "Client per event loop (e.g. per asyncio.run() or per worker thread)"
        )

    def _plain_url(self, endpoint: Endpoint, params: Mapping[str, str] | None) -> Target:
        if params:
            return self._wire().target(f"{self.url(endpoint)}?{urlencode(params)}")
        target = self._plain_urls.get(endpoint)
        if target is None:
            target = self._plain_urls[endpoint] = self._wire().target(self.url(endpoint))
        return target

    async def call(
        self,
        endpoint: Endpoint,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one call with the retry policy in the module docstring.

        With the client's ``deadline`` set, the whole call (token fetch, waits, every attempt
        and backoff) is bounded by it: past it :class:`TransportError` is raised.

        Returns:
            The decoded JSON object, or image bytes for image endpoints.

        Raises:
            ValidationError: ``timeout`` is not a finite number of seconds > 0 (before any I/O).
            RuntimeError: the client is used from a second event loop.
        """
        if timeout is not None:
            v.timeout(timeout)
        if self._loop is None or _event_loop() is not self._loop:
            self.check_loop()
        if self._deadline is None:
            return await self._attempts(endpoint, json, params, timeout)
        with anyio.move_on_after(self._deadline) as scope:
            return await self._attempts(endpoint, json, params, timeout)
        assert scope.cancelled_caught
        raise TransportError(
            f"call deadline of {self._deadline:g}s exceeded", endpoint=endpoint.path
        )

    async def _attempts(
        self,
        endpoint: Endpoint,
        json: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        timeout: float | None,
    ) -> Any:
        # Encoded once, whatever the attempts; Sealed: a body may hold the AppSecret
        # (clear_quota_with_secret), and traceback locals must not show it.
        body = None if json is None else Sealed(dumps(json))
        bucket = endpoint.rate_bucket
        limit = self._rate_limits.get(bucket) if bucket else None
        gate: Any = self._gates[bucket] if limit is not None and bucket else _NO_GATE
        retries = 0
        token_retried = False
        rate_waited = 0.0
        token: str | None = None  # the token sent by the latest attempt
        replacement: str | None = None  # a token obtained after WeChat rejected `token`
        while True:
            sent = False  # whether this attempt's API request may have reached WeChat
            failed: TransportError | None = None  # raised after the handler, without context
            try:
                if endpoint.needs_token and replacement is None:
                    # Join the token flight before queueing for a slot: 2,000 gathered calls
                    # then share one fetch (and its failure), not one per wave of slots.
                    await self.tokens.warm()
                async with gate, self._semaphore:
                    if endpoint.needs_token:
                        # Per attempt: a retry must not resend a token refreshed meanwhile.
                        token = replacement or await self.tokens.get()
                        replacement = None
                        target = self._url_with_token(endpoint, token)
                    else:
                        target = self._plain_url(endpoint, params)
                    if limit is not None:
                        # Counted now, as the request goes out (not when it was queued).
                        assert bucket is not None
                        await self._admit(bucket, limit, timeout)
                    sent = True
                    status, headers, content = await self._send(endpoint, target, body, timeout)
                return decode(
                    status, headers, content, expect=endpoint.expect, endpoint=endpoint.path
                )
            except AccessTokenError as exc:
                if token_retried or not sent or token is None:
                    raise
                token_retried = True
                logger.info("%s: errcode %s, refreshing the token once", endpoint.path, exc.errcode)
                replacement = await self.tokens.replacement(token)
                continue
            except RateLimitError as exc:
                wait = exc.retry_after if exc.retry_after is not None else 1.0
                if (
                    not sent
                    or rate_waited + wait > self._max_rate_wait
                    or retries >= self._max_retries
                ):
                    raise
                rate_waited += wait
                retries += 1
                logger.info(
                    "%s: rate limited (%s), waiting %.1fs", endpoint.path, exc.errcode, wait
                )
                await anyio.sleep(wait)
                continue
            except APIError as exc:
                # Not sent: the token endpoint's answer, already retried by the token flight.
                if not sent or not exc.retryable or retries >= self._max_retries:
                    raise
                if sent and not endpoint.idempotent:
                    raise
                reason = f"errcode {exc.errcode}"
            except (TicketNotFoundError, ResponseTooLargeError):
                raise
            except HTTPStatusError as exc:
                # Only 500-599 are server errors worth a retry (not 4xx, 3xx, nor a 999).
                if not sent or not 500 <= exc.status_code < 600 or retries >= self._max_retries:
                    raise
                if sent and not endpoint.idempotent:
                    raise
                reason = f"HTTP {exc.status_code}"
            except ResponseDecodeError:
                if not sent or retries >= self._max_retries or not endpoint.idempotent:
                    raise
                reason = "undecodable answer"
            except _SendFailed as failure:
                if not (failure.not_sent or endpoint.idempotent) or retries >= self._max_retries:
                    failed = failure.error
                else:
                    reason = failure.detail
            if failed is not None:
                # Out of the handler: the failure is not chained to wxqr's internal _SendFailed.
                raise failed
            delay = random.uniform(0, min(BACKOFF_CAP, self._backoff * 2**retries))
            retries += 1
            logger.info(
                "%s: %s, retry %d/%d in %.2fs",
                endpoint.path,
                reason,
                retries,
                self._max_retries,
                delay,
            )
            await anyio.sleep(delay)

    async def _admit(self, bucket: str, limit: RateLimit, timeout: float | None) -> None:
        # A shared (Redis) limiter's checks are bounded by this call's timeout.
        reset = _OPERATION_BOUND.set(self._timeout if timeout is None else timeout)
        try:
            await self._limiter.acquire(self._limiter_keys[bucket], limit)
        finally:
            _OPERATION_BOUND.reset(reset)

    async def _send(
        self, endpoint: Endpoint, target: Target, body: bytes | None, timeout: float | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        try:
            answer = await self._wire().send(
                endpoint.method,
                target,
                body,
                None if body is None else JSON_HEADERS,
                self._timeout if timeout is None else timeout,
            )
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s %s: HTTP %d", endpoint.method, target.shown, answer[0])
            return answer
        except WireError as exc:
            logger.debug("%s %s: %s", endpoint.method, target.shown, exc.detail)
            failure: Exception = (
                ResponseDecodeError(exc.detail, endpoint=endpoint.path)
                if exc.undecodable
                else _SendFailed(
                    TransportError(exc.detail, endpoint=endpoint.path),
                    detail=exc.detail,
                    not_sent=exc.not_sent,
                )
            )
        except BodyTooLarge as exc:
            failure = ResponseTooLargeError(
                exc.limit, endpoint=endpoint.path, declared=exc.declared
            )
        finally:
            self.in_flight -= 1
        raise failure


class _SendFailed(Exception):
    def __init__(self, error: TransportError, *, detail: str, not_sent: bool) -> None:
        self.error = error
        self.detail = detail  # what happened, without the endpoint the error's message names
        self.not_sent = not_sent
