"""A whole faulty run at DEBUG on every logger leaks neither the AppSecret nor any token.

Token fetches in both modes (stable_token: secret in the JSON body; classic: secret in the
query string, which httpx logs at INFO), retries, a 40001 forced refresh, a revoked token, a
dropped connection, timeouts, error answers, failing token fetches and a wrong secret; on
asyncio with a RedisTokenCache on a real redis-server (aiohttp underneath), on trio with
httpcore. Then: 0 occurrences of any secret or issued token in log messages and formatted
tracebacks, in exception messages, reprs and tracebacks (chained ones included), in the reprs
of the client, caches and models, and in Redis keys; Redis values never hold the secret.
"""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest

import wxqr
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState

WRONG_SECRET = "wrong0secret0wrong0secret0wrong00"
UNLIMITED = "wxa/getwxacodeunlimit"
LOGGERS = (
    "",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "aiohttp",
    "aiohttp.client",
    "aiohttp.access",
    "uvicorn",
    "uvicorn.error",
    "redis",
    "wxqr",
    "wxqr.tokens",
    "wxqr.caches.redis",
)


def exception_texts(exc: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(exc))]
    seen = set()
    while exc is not None and id(exc) not in seen:  # the whole chain, suppressed or not
        seen.add(id(exc))
        texts += [str(exc), repr(exc), repr(exc.args)]
        exc = exc.__cause__ or exc.__context__
    return texts


@pytest.mark.anyio
async def test_no_secret_or_token_escapes_a_faulty_run(
    sandbox_server, caplog, request, anyio_backend
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    state = sandbox_server.use(SandboxState(seed=9))
    base = sandbox_server.base_url
    errors: list[BaseException] = []
    reprs: list[str] = []
    redis = None
    if anyio_backend == "asyncio":
        from redis import Redis

        from wxqr.caches import RedisTokenCache

        url = request.getfixturevalue("reliability_redis_url")
        redis = Redis.from_url(url)
        redis.flushall()
        cache = RedisTokenCache.from_url(url, prefix="hygiene")
    else:
        cache = None

    def client(**options):
        return wxqr.Client(
            DEFAULT_APPID,
            options.pop("secret", DEFAULT_SECRET),
            api_base_url=base,
            mp_base_url=base,
            timeout=0.3,
            max_retries=options.pop("max_retries", 2),
            retry_backoff=0.01,
            max_rate_limit_wait=0.5,
            rate_limits={},
            **options,
        )

    async def expect_error(call):
        try:
            await call
        except wxqr.WxqrError as exc:
            errors.append(exc)
        else:
            raise AssertionError("the faulty call succeeded")

    # -- stable_token mode (shared Redis cache on asyncio) -----------------------------------
    async with client(token_cache=cache) as wx:
        reprs += [repr(wx), repr(cache)]
        await wx.access_token()
        for kind, options in [
            ("errcode", {"errcode": -1}),
            ("http_status", {"status": 503}),
            ("drop", {}),
            ("html", {}),
            ("truncated_image", {}),
            ("errcode", {"errcode": 40001}),  # forced stable_token refresh
        ]:
            state.faults.add(UNLIMITED, kind, **options)
            assert wxqr.image_kind(await wx.wxacode.get_unlimited(scene="h")) == "png"
        state.revoke_tokens(DEFAULT_APPID)
        ticket = await wx.qrcode.create_temporary(scene_str="hygiene", expire_seconds=60)
        key = await wx.shorten.gen("hygiene data")
        reprs += [repr(ticket), repr(await wx.shorten.fetch(key))]

        state.faults.add(UNLIMITED, "errcode", errcode=45009)
        await expect_error(wx.wxacode.get_unlimited(scene="h"))
        state.faults.add(UNLIMITED, "errcode", errcode=-1, probability=1.0)
        await expect_error(wx.wxacode.get_unlimited(scene="h"))
        state.faults.clear()
        state.faults.add("cgi-bin/shorten/gen", "drop", processed=True)
        await expect_error(wx.shorten.gen("lost answer"))
        state.faults.add("cgi-bin/shorten/gen", "latency", seconds=0.6)
        await expect_error(wx.shorten.gen("slow answer"))
        state.faults.add(UNLIMITED, "errcode", errcode=40001, probability=1.0)
        await expect_error(wx.wxacode.get_unlimited(scene="h"))  # refresh, then give up
        state.faults.clear()
        await expect_error(wx.qrcode.show("no-such-ticket"))
        state.faults.add(UNLIMITED, "errcode", errcode=45011)
        await expect_error(wx.wxacode.get_unlimited(scene="h"))

    # -- failing token fetches, both modes, and a wrong secret ------------------------------
    for stable in (True, False):
        endpoint = "cgi-bin/stable_token" if stable else "cgi-bin/token"
        for kind, options in [("drop", {}), ("http_status", {"status": 500})]:
            state.faults.add(endpoint, kind, probability=1.0, **options)
            async with client(stable_token=stable, max_retries=1) as wx:
                await expect_error(wx.wxacode.get_unlimited(scene="h"))
            state.faults.clear()
        async with client(stable_token=stable, secret=WRONG_SECRET) as wx:
            await expect_error(wx.access_token())

    # -- classic cgi-bin/token mode: the secret travels in the query string ------------------
    # Through a caller's httpx.AsyncClient, which logs every request's full URL at INFO (wxqr's
    # own wires log none): the redaction must mask it.
    async with httpx.AsyncClient() as http, client(stable_token=False, http_client=http) as wx:
        reprs.append(repr(wx))
        state.faults.add(UNLIMITED, "errcode", errcode=40001)
        assert wxqr.image_kind(await wx.wxacode.get_unlimited(scene="h")) == "png"
        state.faults.add(UNLIMITED, "drop")
        assert wxqr.image_kind(await wx.wxacode.get_unlimited(scene="h")) == "png"

    secrets = [DEFAULT_SECRET, WRONG_SECRET, *state.tokens]
    assert len(state.tokens) >= 4  # stable, forced, after revocation, classic ...

    messages = []
    for record in caplog.records:
        messages.append(record.getMessage())
        if record.exc_info:
            messages.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            messages.append(record.exc_text)
    messages.append(caplog.text)
    # The run really logged URLs, redacted: otherwise this test would prove nothing.
    assert any("access_token=***" in m for m in messages)
    assert any("secret=***" in m for m in messages)

    texts = messages + reprs + [t for exc in errors for t in exception_texts(exc)]
    for secret in secrets:
        leaks = [t[:200] for t in texts if secret in t]
        assert not leaks, f"{secret[:6]}... leaked in: {leaks}"
    assert {type(e) for e in errors} >= {
        wxqr.QuotaExceededError,
        wxqr.SystemBusyError,
        wxqr.TransportError,
        wxqr.AccessTokenError,
        wxqr.TicketNotFoundError,
        wxqr.RateLimitError,
        wxqr.CredentialError,
        wxqr.HTTPStatusError,
    }

    if redis is not None:
        keys = list(redis.scan_iter("*"))
        assert keys, "the Redis cache was never written"
        for name in keys:
            assert not any(s.encode() in name for s in secrets), name
            if redis.type(name) == b"string":
                value = redis.get(name) or b""
            else:
                value = redis.dump(name) or b""
            assert DEFAULT_SECRET.encode() not in value
            assert WRONG_SECRET.encode() not in value
        redis.close()
