"""Redis inside the bounds: a stalled redis-server (SIGSTOP) never holds a call past its bound.

Rows of issue 12: "Redis stopped (SIGSTOP): calls stall outside every wxqr timeout (14.7 s with
timeout=5; hanging at 45 s with redis-py's default socket_timeout=None, also through
RedisRateLimiter; with fallback=True each refresh waited 20 s and Redis was retried every
time)" and "lock holder killed while fetching: other processes got TokenCacheError after 15 s".

A real redis-server of this module's own (stopped and continued with signals), the WeChat
stand-in on a real loopback socket, and redis-py clients with their defaults
(``socket_timeout=None``). asyncio only: redis-py is asyncio-only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import anyio
import pytest
from hostile_tokens_support import APPID, SECRET, StandIn, stalled, standin
from redisserver import RedisServer

import wxqr
from wxqr.caches import RedisRateLimiter, RedisTokenCache
from wxqr.sandbox import SandboxState, sandbox_client

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

LOGGER = "wxqr.caches.redis"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_pid(redis_server: RedisServer) -> int:
    import redis

    plain = redis.Redis.from_url(redis_server.url)
    try:
        plain.flushall()
    finally:
        plain.close()
    return redis_server.pid


@pytest.fixture
def wechat() -> Iterator[tuple[StandIn, str]]:
    with standin() as served:
        yield served


def client(base_url: str, **options) -> wxqr.Client:
    return wxqr.Client(APPID, SECRET, api_base_url=base_url, mp_base_url=base_url, **options)


async def test_a_stalled_redis_fails_within_the_operation_timeout_then_at_once(
    redis_server, redis_pid, wechat
):
    app, base_url = wechat
    redis = wxqr_redis(redis_server)
    cache = RedisTokenCache(redis, operation_timeout=1.0, outage_cooldown=5.0)
    async with client(base_url, token_cache=cache, timeout=5.0) as wx:
        with stalled(redis_pid):
            started = time.monotonic()
            with pytest.raises(wxqr.TokenCacheError, match="no answer within 1 s"):
                await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
            first = time.monotonic() - started
            # Within the cool-down Redis is not asked again: the next calls fail at once.
            started = time.monotonic()
            for _ in range(20):
                with pytest.raises(wxqr.TokenCacheError, match="not attempted"):
                    await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
            then = time.monotonic() - started
    await redis.aclose()
    assert 0.9 <= first < 1.8  # the bound is 1 s (was: 14.7 s with timeout=5)
    assert then < 0.5  # 20 calls, none waiting on the dead server
    assert app.token_requests == 0  # no fallback: nothing fetched behind the cache's back


async def test_the_operation_bound_is_never_longer_than_the_call_timeout(
    redis_server, redis_pid, wechat
):
    _, base_url = wechat
    redis = wxqr_redis(redis_server)
    cache = RedisTokenCache(redis, operation_timeout=30.0)
    async with client(base_url, token_cache=cache, timeout=0.5) as wx:
        with stalled(redis_pid):
            started = time.monotonic()
            with pytest.raises(wxqr.TokenCacheError):
                await wx.access_token()
            elapsed = time.monotonic() - started
    await redis.aclose()
    assert 0.4 <= elapsed < 1.3


async def test_fallback_fetches_directly_within_the_bound_and_warns_once(
    redis_server, redis_pid, wechat, caplog
):
    app, base_url = wechat
    redis = wxqr_redis(redis_server)
    cache = RedisTokenCache(redis, fallback=True, operation_timeout=1.0, outage_cooldown=1.5)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        async with client(base_url, token_cache=cache, timeout=5.0) as wx:
            with stalled(redis_pid):
                started = time.monotonic()
                await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
                first = time.monotonic() - started
                # A refresh during the outage (the token was rejected) does not wait on Redis.
                await wx._tokens.invalidate(app.issued[-1])
                started = time.monotonic()
                await wx.qrcode.create_temporary(scene_id=2, expire_seconds=60)
                second = time.monotonic() - started
            # Redis is back; after the cool-down the cache is used again.
            await anyio.sleep(1.6)
            await wx._tokens.invalidate(app.issued[-1])
            await wx.qrcode.create_temporary(scene_id=3, expire_seconds=60)
    stored = await redis.get(f"wxqr:token:{APPID}:stable")
    await redis.aclose()
    # One bounded Redis wait (1 s), then a direct fetch (was: 20 s per refresh).
    assert 0.9 <= first < 3.0
    assert second < 1.0  # no Redis wait at all inside the cool-down
    assert app.token_requests == 3
    assert stored is not None
    assert app.issued[-1].encode() in stored
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning per outage
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_a_stalled_redis_rate_limiter_fails_within_the_bound(redis_server, redis_pid):
    redis = wxqr_redis(redis_server)
    limiter = RedisRateLimiter(redis, operation_timeout=1.0, outage_cooldown=5.0)
    state = SandboxState(seed=1)
    async with sandbox_client(state, rate_limiter=limiter, timeout=5.0) as wx:
        await wx.access_token()
        with stalled(redis_pid):
            started = time.monotonic()
            results = await gather_results(
                [lambda i=i: wx.wxacode.get_unlimited(scene=f"s{i}") for i in range(20)]
            )
            elapsed = time.monotonic() - started
    await redis.aclose()
    assert all(isinstance(r, wxqr.TokenCacheError) for r in results), results
    # One bounded wait, then the cool-down answers the rest (was: hanging past 45 s).
    assert 0.9 <= elapsed < 2.0
    assert state.calls["wxa/getwxacodeunlimit"] == 0


async def test_a_killed_lock_holder_delays_the_others_by_lock_timeout_plus_one_fetch(
    redis_server, redis_pid, wechat
):
    # A process took the refresh lock and was killed mid-fetch: its lock key stays until
    # lock_timeout. Fetches take 1.2 s. Both waiting processes must get a token; one fetch.
    app, base_url = wechat
    app.token_delay = 1.2
    lock_timeout, timeout = 2.0, 1.5
    redis = wxqr_redis(redis_server)
    await redis.set(f"wxqr:lock:{APPID}:stable", "killed-holder", px=int(lock_timeout * 1000))
    clients = [
        client(
            base_url,
            token_cache=RedisTokenCache(wxqr_redis(redis_server), lock_timeout=lock_timeout),
            timeout=timeout,
            max_retries=0,  # the fetch bound is then `timeout`
        )
        for _ in range(3)
    ]
    started = time.monotonic()
    tokens = await gather_results([c.access_token for c in clients])
    elapsed = time.monotonic() - started
    for c in clients:
        await c._token_cache._redis.aclose()
        await c.aclose()
    await redis.aclose()
    assert tokens == [app.issued[0]] * 3, tokens
    assert app.token_requests == 1
    # lock_timeout until the orphan lock expires, then one 1.2 s fetch (was: TokenCacheError
    # after 15 s for every process but the next holder).
    assert lock_timeout + 1.2 - 0.2 <= elapsed <= lock_timeout + timeout + 0.8


async def test_a_lock_held_past_the_bound_fails_after_lock_timeout_plus_the_fetch_timeout(
    redis_server, redis_pid, wechat
):
    app, base_url = wechat
    redis = wxqr_redis(redis_server)
    # Held by a live process with a longer lock_timeout than ours.
    await redis.set(f"wxqr:lock:{APPID}:stable", "slow-holder", px=30_000)
    cache = RedisTokenCache(redis, lock_timeout=1.0)
    async with client(base_url, token_cache=cache, timeout=0.5, max_retries=0) as wx:
        assert wx._tokens.fetch_bound == 0.5
        started = time.monotonic()
        with pytest.raises(wxqr.TokenCacheError, match="still held"):
            await wx.access_token()
        elapsed = time.monotonic() - started
    await redis.aclose()
    assert 1.4 <= elapsed < 2.3  # lock_timeout 1 s + fetch timeout 0.5 s, as documented
    assert app.token_requests == 0


# -- helpers -------------------------------------------------------------------------------


def wxqr_redis(server: RedisServer):
    """A redis-py asyncio client with its defaults (socket_timeout=None: it would hang)."""
    from redis.asyncio import Redis

    return Redis.from_url(server.url)


async def gather_results(calls) -> list:
    results: list = [None] * len(calls)

    async def run(i, call):
        try:
            results[i] = await call()
        except Exception as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(run, i, call)
    return results


async def test_a_redis_failure_while_storing_the_token_shows_no_token(
    redis_server, redis_pid, wechat
):
    import traceback

    app, base_url = wechat
    app.token_delay = 0.8  # Redis stalls while the token is being fetched: `set` times out
    redis = wxqr_redis(redis_server)
    cache = RedisTokenCache(redis, operation_timeout=0.5)
    failure: list[BaseException] = []
    async with client(base_url, token_cache=cache, timeout=3.0) as wx:

        async def fetch() -> None:
            try:
                await wx.access_token()
            except wxqr.TokenCacheError as exc:
                failure.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch)
            await anyio.sleep(0.4)
            with stalled(redis_pid):
                await anyio.sleep(1.2)
    await redis.aclose()
    [exc] = failure
    assert "set" in str(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None
    text = "".join(
        traceback.TracebackException(
            type(exc), exc, exc.__traceback__, capture_locals=True
        ).format()
    )
    assert "entry = " in text  # the locals were rendered
    assert app.issued
    assert app.issued[0] not in text
    assert SECRET not in text
