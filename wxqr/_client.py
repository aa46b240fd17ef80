"""``wxqr.Client``: configuration, lifecycle and the resource groups."""

from __future__ import annotations

import enum
import importlib.util
import math
from collections.abc import Mapping
from functools import cached_property
from types import TracebackType
from typing import Final

import httpx

from . import _validate as v
from ._ratelimit import DEFAULT_RATE_LIMITS, MemoryRateLimiter, RateLimit, RateLimiter
from ._tokens import TOKEN_LIFETIME, TokenManager, TokenProvider
from ._transport import Transport, install_log_redaction
from ._wire import DEFAULT_MAX_RESPONSE_BYTES, Wire, WireChoice, make_wire
from .caches import MemoryTokenCache, TokenCache
from .errors import ValidationError
from .resources import Links, OpenApi, QrCode, QrCodeJump, Shorten, WxaCode

__all__ = ["Client"]

DEFAULT_API_BASE_URL: Final = "https://api.weixin.qq.com"
DEFAULT_MP_BASE_URL: Final = "https://mp.weixin.qq.com"


def _number(name: str, value: object, low: float, high: float = math.inf) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value < high
    ):
        allowed = f">= {low:g}" if high == math.inf else f">= {low:g} and < {high:g}"
        raise ValidationError(name, f"must be a finite number {allowed}, got {value!r:.40}")


def _check_options(
    *,
    appid: object,
    secret: object,
    token_cache: object,
    token_provider: object,
    stable_token: object,
    api_base_url: object,
    mp_base_url: object,
    timeout: object,
    refresh_margin: object,
    rate_limits: object,
    rate_limiter: object,
    retry_backoff: object,
    max_rate_limit_wait: object,
    refusal_cooldown: object,
) -> None:
    """Client(...) option checks: a wrong type is a ValidationError, never a changed mode."""
    if not isinstance(appid, str) or not appid:
        raise ValidationError("appid", "must be a non-empty string")
    v.text("appid", appid, max_len=64)
    if secret is None and token_provider is None:
        raise ValidationError("secret", "pass the AppSecret, or a token_provider")
    if secret is not None and token_provider is not None:
        raise ValidationError("token_provider", "pass either secret or token_provider")
    if secret is not None and not isinstance(secret, str):
        # Not the value: it may be the secret in another type.
        raise ValidationError("secret", f"must be a string, got {type(secret).__name__}")
    if isinstance(secret, str):
        if not secret:
            raise ValidationError("secret", "must be a non-empty string")
        try:
            secret.encode()
        except UnicodeEncodeError:
            raise ValidationError("secret", "must be valid Unicode text (UTF-8)") from None
    if token_provider is not None and not callable(token_provider):
        raise ValidationError("token_provider", "must be an async callable returning a token")
    if token_cache is not None and not isinstance(token_cache, TokenCache):
        raise ValidationError(
            "token_cache", f"must implement wxqr.TokenCache, got {type(token_cache).__name__}"
        )
    if rate_limiter is not None and not isinstance(rate_limiter, RateLimiter):
        raise ValidationError(
            "rate_limiter", f"must implement wxqr.RateLimiter, got {type(rate_limiter).__name__}"
        )
    v.boolean("stable_token", stable_token)
    v.http_url("api_base_url", api_base_url)
    v.http_url("mp_base_url", mp_base_url)
    v.timeout(timeout)
    _number("refresh_margin", refresh_margin, 0.0, TOKEN_LIFETIME)
    for name, value in (
        ("retry_backoff", retry_backoff),
        ("max_rate_limit_wait", max_rate_limit_wait),
        ("refusal_cooldown", refusal_cooldown),
    ):
        _number(name, value, 0.0)
    if not isinstance(rate_limits, Mapping):
        raise ValidationError(
            "rate_limits", "must be a mapping of bucket name -> wxqr.RateLimit ({} for none)"
        )
    for bucket, limit in rate_limits.items():
        if not isinstance(bucket, str):
            raise ValidationError("rate_limits", f"bucket names must be strings, got {bucket!r}")
        if not isinstance(limit, RateLimit):
            raise ValidationError(f"rate_limits[{bucket!r}]", "must be a wxqr.RateLimit")


def _check_wire(wire: object, http_client: object) -> None:
    if wire not in ("auto", "aiohttp", "httpx"):
        raise ValidationError("wire", f"must be 'auto', 'aiohttp' or 'httpx', got {wire!r}")
    if wire == "aiohttp":
        if http_client is not None:
            raise ValidationError(
                "wire", "'aiohttp' sends through its own session: drop http_client, or use 'httpx'"
            )
        if importlib.util.find_spec("aiohttp") is None:
            raise ValidationError("wire", "'aiohttp' needs aiohttp: pip install 'wxqr[speed]'")


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
        http_client: a caller-owned ``httpx.AsyncClient`` (never closed by wxqr). Its auth,
            hooks and transport apply; redirects are never followed, whatever it says.
        wire: how requests are sent when no ``http_client`` is given: ``"auto"`` (default:
            aiohttp on asyncio when installed — ``wxqr[speed]`` — else httpx), ``"aiohttp"``
            (asyncio only) or ``"httpx"``. With an ``http_client`` only ``"auto"``/``"httpx"``.
        timeout: default bound, in seconds, on each attempt as a whole: connecting, sending
            and reading the whole answer (not each socket read). Retries make further attempts.
        deadline: optional bound, in seconds, on each call as a whole (token fetch, waits,
            every attempt and backoff); past it :class:`~wxqr.TransportError` is raised.
            ``None`` (default): a call may take up to about ``(max_retries + 1) * timeout``
            plus backoff.
        max_response_bytes: the largest answer body accepted (decompressed size; default
            16 MiB); a larger one raises :class:`~wxqr.ResponseTooLargeError` unread.
        max_retries: retries of transient failures per call (see the retry table in README).
        max_concurrency: requests in flight at once through this client.
        refresh_margin: seconds before expiry at which a token is refreshed, 0 <= margin < 7200
            (a token's documented life). In stable mode ``stable_token`` answers the same token
            until its last 5 minutes, so a margin above 300 s does not bring a new token
            earlier: the refresh returns the current one, which is then used until half of its
            remaining life has passed (one extra fetch per token lifetime, never one per call).
        rate_limits: client-side limits per bucket (``"getwxacodeunlimit"``, ``"qrcodejump"``,
            ``"wxalink"``); ``{}`` switches them off.
        rate_limiter: where rate budgets are kept: in memory (default) or
            ``wxqr.caches.RedisRateLimiter`` to share them between processes.
        retry_backoff: first backoff delay in seconds (doubles per retry, capped at 8 s).
        max_rate_limit_wait: seconds one call may spend waiting out 44990/45011 before
            :class:`~wxqr.RateLimitError` is raised.
        refusal_cooldown: seconds during which an account-level refusal of the token endpoint
            (wrong AppID/AppSecret, IP not whitelisted, frozen secret) is raised again for
            every call without asking WeChat; ``0`` asks every time.

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
        wire: WireChoice = "auto",
        timeout: float = 10.0,
        deadline: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_retries: int = 3,
        max_concurrency: int = 100,
        refresh_margin: float = 300.0,
        rate_limits: Mapping[str, RateLimit] = DEFAULT_RATE_LIMITS,
        rate_limiter: RateLimiter | None = None,
        retry_backoff: float = 0.5,
        max_rate_limit_wait: float = 60.0,
        refusal_cooldown: float = 10.0,
    ) -> None:
        _check_options(
            appid=appid,
            secret=secret,
            token_cache=token_cache,
            token_provider=token_provider,
            stable_token=stable_token,
            api_base_url=api_base_url,
            mp_base_url=mp_base_url,
            timeout=timeout,
            refresh_margin=refresh_margin,
            rate_limits=rate_limits,
            rate_limiter=rate_limiter,
            retry_backoff=retry_backoff,
            max_rate_limit_wait=max_rate_limit_wait,
            refusal_cooldown=refusal_cooldown,
        )
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
        _check_wire(wire, http_client)
        if deadline is not None and (
            isinstance(deadline, bool)
            or not isinstance(deadline, int | float)
            or not 0 < deadline < math.inf
        ):
            raise ValidationError(
                "deadline", f"must be None or a finite number of seconds > 0, got {deadline!r}"
            )
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1024
        ):
            raise ValidationError(
                "max_response_bytes", f"must be an integer >= 1024, got {max_response_bytes!r}"
            )
        install_log_redaction()
        self.appid = appid
        self._http_client = http_client
        self._wire_choice: WireChoice = wire
        self._wire: Wire | None = None
        self._max_response_bytes = max_response_bytes
        self._max_concurrency = max_concurrency
        self._timeout = timeout
        self._state = _State.UNOPENED
        self._token_cache = token_cache if token_cache is not None else MemoryTokenCache()
        self._tokens = TokenManager(
            wire=self._get_wire,
            api_base_url=api_base_url,
            appid=appid,
            secret=secret,
            cache=self._token_cache,
            stable=stable_token,
            refresh_margin=refresh_margin,
            provider=token_provider,
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            refusal_cooldown=refusal_cooldown,
        )
        self._transport = Transport(
            wire=self._get_wire,
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
            deadline=deadline,
        )
        self._stable = stable_token

    def __repr__(self) -> str:
        mode = "stable_token" if self._stable else "token"
        return f"<wxqr.Client appid={self.appid!r} mode={mode} state={self._state.value}>"

    def _get_wire(self) -> Wire:
        if self._state is _State.CLOSED:
            raise RuntimeError("this wxqr.Client has been closed")
        wire = self._wire
        if wire is None:
            wire = self._wire = make_wire(
                self._wire_choice,
                self._http_client,
                max_connections=self._max_concurrency,
                max_response_bytes=self._max_response_bytes,
            )
            self._state = _State.OPEN
        return wire

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
        """Close the connections wxqr opened (never a caller's ``http_client``) and the token
        cache. Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            if self._wire is not None:
                await self._wire.aclose()  # a caller's http_client is left open
        finally:
            await self._token_cache.aclose()

    async def access_token(self) -> str:
        """Return a valid access token for this account (fetched once, then cached)."""
        if self._state is _State.CLOSED:
            raise RuntimeError("this wxqr.Client has been closed")
        self._transport.check_loop()
        return str(await self._tokens.get())

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
