"""``wxqr.Client``: configuration, lifecycle and the resource groups."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from functools import cached_property
from types import TracebackType
from typing import Final

import httpx
import sniffio

from ._ratelimit import DEFAULT_RATE_LIMITS, MemoryRateLimiter, RateLimit, RateLimiter
from ._tokens import TokenManager, TokenProvider
from ._transport import Transport, install_log_redaction
from .caches import MemoryTokenCache, TokenCache
from .errors import ValidationError
from .resources import Links, OpenApi, QrCode, QrCodeJump, Shorten, WxaCode

__all__ = ["Client"]

DEFAULT_API_BASE_URL: Final = "https://api.weixin.qq.com"
DEFAULT_MP_BASE_URL: Final = "https://mp.weixin.qq.com"


def _default_http_client(timeout: float, max_concurrency: int) -> httpx.AsyncClient:
    """The client wxqr creates when none is given.

    On asyncio with aiohttp installed (``pip install 'wxqr[speed]'``) it sends through aiohttp,
    several times faster than httpcore under ``gather`` (see ``wxqr._aiohttp``); under trio, or
    without aiohttp, it is plain httpx.
    """
    limits = httpx.Limits(
        max_connections=max_concurrency, max_keepalive_connections=max_concurrency
    )
    client: httpx.AsyncClient | None = None
    if sniffio.current_async_library() == "asyncio":
        try:
            from ._aiohttp import AiohttpTransport
        except ImportError:
            pass
        else:
            client = httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport(limits=limits))
    if client is None:
        client = httpx.AsyncClient(timeout=timeout, limits=limits)
    # httpx parses every response's headers into a cookie jar (through email.message and
    # http.cookiejar): ~15% of a call's CPU. WeChat's APIs set no cookie wxqr needs, and this
    # client is wxqr's own, so its jar ignores them. (httpx copies a jar passed to the
    # constructor into a plain one; hence the attribute.)
    if isinstance(getattr(client, "_cookies", None), httpx.Cookies):
        client._cookies = _IgnoredCookies()
    return client


class _IgnoredCookies(httpx.Cookies):
    """A cookie jar that never stores what a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class Client:
    """An asyncio/trio client for the WeChat QR-code APIs of one account (appid).

    Use one client per account for the life of your app; many clients may share one
    ``http_client`` (one connection pool) and one ``token_cache``::

        async with wxqr.Client(appid, secret) as wx:
            ticket = await wx.qrcode.create_temporary(scene_id=123, expire_seconds=604800)
            png = await wx.qrcode.show(ticket)

    Args:
        appid: the account's AppID.
        secret: its AppSecret; not needed with ``token_provider``. Never logged or shown.
        token_cache: where tokens are shared: :class:`~wxqr.caches.MemoryTokenCache` (default,
            this process) or :class:`~wxqr.caches.RedisTokenCache` (every worker process).
            Closed by :meth:`aclose`: to share one cache between several clients, build it on
            your own Redis client (``RedisTokenCache(redis)``), which closing never touches.
        token_provider: ``async () -> str`` returning a token managed elsewhere (third-party
            platform ``authorizer_access_token``, a central token service).
        stable_token: fetch with ``POST cgi-bin/stable_token`` (default). ``False`` uses the
            classic ``GET cgi-bin/token``, whose every fetch invalidates the previous token
            after 5 minutes: then share a Redis cache between processes.
        api_base_url: ``https://api.weixin.qq.com`` (or the sandbox's URL).
        mp_base_url: ``https://mp.weixin.qq.com`` (showqrcode), or the sandbox's URL.
        http_client: a caller-owned ``httpx.AsyncClient`` (never closed by wxqr).
        timeout: default per-request timeout in seconds.
        max_retries: retries of transient failures per call (see the retry table in README).
        max_concurrency: requests in flight at once through this client.
        refresh_margin: seconds before expiry at which a token is refreshed.
        rate_limits: client-side limits per bucket (``"getwxacodeunlimit"``, ``"qrcodejump"``,
            ``"wxalink"``); ``{}`` switches them off.
        rate_limiter: where rate budgets are kept: in memory (default) or
            ``wxqr.caches.RedisRateLimiter`` to share them between processes.
        retry_backoff: first backoff delay in seconds (doubles per retry, capped at 8 s).
        max_rate_limit_wait: seconds one call may spend waiting out 44990/45011 before
            :class:`~wxqr.RateLimitError` is raised.

    Raises:
        ValidationError: an option is out of range, or neither ``secret`` nor
            ``token_provider`` was given.
    """

    def __init__(
        self,
        appid: str,
        secret: str | None = None,
        *,
        token_cache: TokenCache | None = None,
        token_provider: TokenProvider | None = None,
        stable_token: bool = True,
        api_base_url: str = DEFAULT_API_BASE_URL,
        mp_base_url: str = DEFAULT_MP_BASE_URL,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_concurrency: int = 100,
        refresh_margin: float = 300.0,
        rate_limits: Mapping[str, RateLimit] = DEFAULT_RATE_LIMITS,
        rate_limiter: RateLimiter | None = None,
        retry_backoff: float = 0.5,
        max_rate_limit_wait: float = 60.0,
    ) -> None:
        if not isinstance(appid, str) or not appid:
            raise ValidationError("appid", "must be a non-empty string")
        if secret is None and token_provider is None:
            raise ValidationError("secret", "pass the AppSecret, or a token_provider")
        if secret is not None and token_provider is not None:
            raise ValidationError("token_provider", "pass either secret or token_provider")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and not timeout > 0:
            raise ValidationError("timeout", f"must be a number of seconds > 0, got {timeout!r}")
        for name, value, low in (
            ("timeout", timeout, 0.0),
            ("refresh_margin", refresh_margin, 0.0),
            ("retry_backoff", retry_backoff, 0.0),
            ("max_rate_limit_wait", max_rate_limit_wait, 0.0),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or math.isnan(value)
                or value < low
            ):
                raise ValidationError(name, f"must be a number >= {low}, got {value!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValidationError("max_retries", f"must be an integer >= 0, got {max_retries!r}")
        if (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise ValidationError(
                "max_concurrency", f"must be an integer >= 1, got {max_concurrency!r}"
            )
        for bucket, limit in rate_limits.items():
            if not isinstance(limit, RateLimit):
                raise ValidationError(f"rate_limits[{bucket!r}]", "must be a wxqr.RateLimit")
        install_log_redaction()
        self.appid = appid
        self._owns_http = http_client is None
        self._http_client = http_client
        self._max_concurrency = max_concurrency
        self._timeout = timeout
        self._state = _State.UNOPENED
        self._token_cache = token_cache if token_cache is not None else MemoryTokenCache()
        self._tokens = TokenManager(
            http=self._get_http,
            api_base_url=api_base_url,
            appid=appid,
            secret=secret,
            cache=self._token_cache,
            stable=stable_token,
            refresh_margin=refresh_margin,
            provider=token_provider,
            timeout=timeout,
        )
        self._transport = Transport(
            http=self._get_http,
            tokens=self._tokens,
            appid=appid,
            api_base_url=api_base_url,
            mp_base_url=mp_base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            rate_limits=rate_limits,
            rate_limiter=rate_limiter if rate_limiter is not None else MemoryRateLimiter(),
            retry_backoff=retry_backoff,
            max_rate_limit_wait=max_rate_limit_wait,
        )
        self._stable = stable_token

    def __repr__(self) -> str:
        mode = "stable_token" if self._stable else "token"
        return f"<wxqr.Client appid={self.appid!r} mode={mode} state={self._state.value}>"

    def _get_http(self) -> httpx.AsyncClient:
        if self._state is _State.CLOSED:
            raise RuntimeError("this wxqr.Client has been closed")
        if self._http_client is None:
            self._http_client = _default_http_client(self._timeout, self._max_concurrency)
        self._state = _State.OPEN
        return self._http_client

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._state is _State.CLOSED

    async def __aenter__(self) -> Client:
        if self._state is _State.CLOSED:
            raise RuntimeError("a closed wxqr.Client cannot be reopened")
        self._state = _State.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client wxqr created (not a caller's) and the token cache. Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            if self._owns_http and self._http_client is not None:
                await self._http_client.aclose()
        finally:
            await self._token_cache.aclose()

    async def access_token(self) -> str:
        """Return a valid access token for this account (fetched once, then cached)."""
        if self._state is _State.CLOSED:
            raise RuntimeError("this wxqr.Client has been closed")
        return await self._tokens.get()

    async def forced_refreshes(self) -> int:
        """Forced ``stable_token`` refreshes spent today, for monitoring.

        Counted in the token cache, so with a ``RedisTokenCache`` it is the figure for every
        process sharing it. WeChat allows 20 a day (Beijing time); wxqr refuses the 21st with
        :class:`~wxqr.AccessTokenError` instead of asking. Always 0 in classic mode and with a
        ``token_provider``.
        """
        return await self._tokens.forced_refreshes()

    @cached_property
    def openapi(self) -> OpenApi:
        """Quotas, rid lookup and network checks (``clear_quota``, ``openapi/*``, callback IPs)."""
        return OpenApi(self._transport)

    @cached_property
    def qrcode(self) -> QrCode:
        """Official Account parametric QR codes (``qrcode/create``, ``showqrcode``)."""
        return QrCode(self._transport)

    @cached_property
    def shorten(self) -> Shorten:
        """Short-key hosting (``shorten/gen``, ``shorten/fetch``)."""
        return Shorten(self._transport)

    @cached_property
    def qrcode_jump(self) -> QrCodeJump:
        """Jump rules for ordinary link QR codes (``wxopen/qrcodejump*``)."""
        return QrCodeJump(self._transport)

    @cached_property
    def wxacode(self) -> WxaCode:
        """Mini Program codes (``createwxaqrcode``, ``getwxacode``, ``getwxacodeunlimit``)."""
        return WxaCode(self._transport)

    @cached_property
    def links(self) -> Links:
        """Mini Program links: URL Scheme, NFC scheme, URL Link, Short Link (``wxa/...``)."""
        return Links(self._transport)


def _document_resources(cls: type) -> None:
    """Append the resource groups to the class docstring (``help(wxqr.Client)`` lists them)."""
    lines = []
    for name, member in vars(cls).items():
        if isinstance(member, cached_property) and not name.startswith("_"):
            summary = (member.__doc__ or "").strip().splitlines()[0]
            lines.append(f"        {name}: {summary}")
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    Resources:\n" + "\n".join(lines) + "\n"


_document_resources(Client)
