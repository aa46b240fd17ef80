"""RedisTokenCache and RedisRateLimiter against a real redis-server (asyncio only: redis-py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import anyio
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from wxqr._ratelimit import RateLimit, RateLimiter
from wxqr.caches import CachedToken, TokenCache
from wxqr.caches.redis import RedisRateLimiter, RedisTokenCache
from wxqr.errors import TokenCacheError, ValidationError

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

KEY = "wx1234567890abcdef:classic"
TOKEN = "ACCESS_TOKEN_" + "x" * 100
LOGGER = "wxqr.caches.redis"


@pytest.fixture
async def cache(client):
    cache = RedisTokenCache(client)
    yield cache
    await cache.aclose()


def hour_from_now(token: str = TOKEN) -> CachedToken:
    return CachedToken(token, time.time() + 3600)


# --- the protocol -------------------------------------------------------------------------------


async def test_implements_the_protocols(cache, client):
    assert isinstance(cache, TokenCache)
    assert isinstance(RedisRateLimiter(client), RateLimiter)


async def test_get_missing_is_none(cache):
    assert await cache.get(KEY) is None


async def test_set_then_get_round_trips_value_and_expiry(cache, client):
    token = CachedToken(TOKEN, time.time() + 7200)
    await cache.set(KEY, token)

    assert await cache.get(KEY) == token
    # The Redis TTL follows the token's absolute expiry.
    pttl = await client.pttl(f"wxqr:token:{KEY}")
    assert 7_190_000 < pttl <= 7_200_000
    # The stored value is the token and its expiry, nothing else.
    stored = json.loads(await client.get(f"wxqr:token:{KEY}"))
    assert stored == {"v": TOKEN, "e": token.expires_at}


async def test_an_already_expired_token_lives_at_least_one_second(cache, client):
    await cache.set(KEY, CachedToken(TOKEN, time.time() - 60))
    assert 0 < await client.pttl(f"wxqr:token:{KEY}") <= 1000


async def test_stable_and_classic_tokens_are_separate_entries(cache):
    await cache.set("wx1:stable", hour_from_now("STABLE"))
    await cache.set("wx1:classic", hour_from_now("CLASSIC"))
    assert (await cache.get("wx1:stable")).value == "STABLE"
    assert (await cache.get("wx1:classic")).value == "CLASSIC"


async def test_prefix_namespaces_every_key(client):
    app_a = RedisTokenCache(client, prefix="app-a")
    app_b = RedisTokenCache(client, prefix="app-b")
    await app_a.set(KEY, hour_from_now("A"))
    assert await app_b.get(KEY) is None
    assert await client.exists(f"app-a:token:{KEY}") == 1


async def test_works_with_decode_responses(redis_url):
    client = Redis.from_url(redis_url, decode_responses=True)
    cache = RedisTokenCache(client)
    await cache.set(KEY, hour_from_now())
    assert (await cache.get(KEY)).value == TOKEN
    assert await cache.delete(KEY, if_value=TOKEN)
    await client.aclose()


async def test_an_unreadable_entry_is_a_miss(cache, client):
    await client.set(f"wxqr:token:{KEY}", b"not json")
    assert await cache.get(KEY) is None


# --- compare-and-delete -------------------------------------------------------------------------


async def test_delete_if_value_keeps_an_entry_holding_another_token(cache):
    await cache.set(KEY, hour_from_now())

    assert await cache.delete(KEY, if_value="SOME_OLDER_TOKEN") is False
    assert (await cache.get(KEY)).value == TOKEN

    assert await cache.delete(KEY, if_value=TOKEN) is True
    assert await cache.get(KEY) is None
    assert await cache.delete(KEY, if_value=TOKEN) is False


async def test_delete_if_value_spares_a_token_refreshed_by_another_process(redis_url, cache):
    # Process A's call failed with TOKEN; meanwhile process B has already stored a new token.
    other = Redis.from_url(redis_url)
    process_b = RedisTokenCache(other)
    await cache.set(KEY, hour_from_now(TOKEN))
    await process_b.set(KEY, hour_from_now("NEW_TOKEN"))

    assert await cache.delete(KEY, if_value=TOKEN) is False
    assert (await cache.get(KEY)).value == "NEW_TOKEN"
    await other.aclose()


async def test_delete_without_if_value_is_unconditional(cache):
    await cache.set(KEY, hour_from_now())
    assert await cache.delete(KEY) is True
    assert await cache.delete(KEY) is False


# --- claim --------------------------------------------------------------------------------------


async def test_claim_is_set_if_absent_and_expires(redis_url, cache, client):
    other = RedisTokenCache(Redis.from_url(redis_url))
    claim = f"{KEY}:force-refresh"

    assert await cache.claim(claim, 0.3) is True
    assert await other.claim(claim, 0.3) is False  # another process, same cooldown
    assert await cache.claim(claim, 0.3) is False
    assert 0 < await client.pttl(f"wxqr:claim:{claim}") <= 300

    await anyio.sleep(0.35)
    assert await other.claim(claim, 0.3) is True
    await other._redis.aclose()


# --- lock ---------------------------------------------------------------------------------------


async def test_lock_excludes_holders_on_other_connections(redis_url, client):
    caches = [RedisTokenCache(Redis.from_url(redis_url)) for _ in range(3)]
    inside = 0
    most_inside = 0
    entered = 0

    async def refresh(cache: RedisTokenCache) -> None:
        nonlocal inside, most_inside, entered
        async with cache.lock(KEY, timeout=10):
            inside += 1
            entered += 1
            most_inside = max(most_inside, inside)
            assert await client.exists(f"wxqr:lock:{KEY}") == 1
            await anyio.sleep(0.03)
            inside -= 1

    async with anyio.create_task_group() as tg:
        for cache in caches:
            for _ in range(4):
                tg.start_soon(refresh, cache)

    assert entered == 12
    assert most_inside == 1
    assert await client.exists(f"wxqr:lock:{KEY}") == 0  # released
    for cache in caches:
        await cache._redis.aclose()


async def test_lock_held_by_a_crashed_process_expires(redis_url, repo_root, cache):
    # Another process takes the refresh lock (1 s lock timeout) and dies without releasing it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, redis\n"
            f"lock = redis.Redis.from_url({redis_url!r}).lock('wxqr:lock:{KEY}', timeout=1.0)\n"
            "assert lock.acquire(blocking=False)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
    finally:
        holder.kill()
        holder.wait()
    started = time.monotonic()

    async with cache.lock(KEY, timeout=15):
        waited = time.monotonic() - started

    # Neither immediately (the lock was really held) nor unbounded.
    assert 0.3 < waited < 2.0


async def test_lock_not_acquired_within_timeout_raises_and_leaves_the_holder_alone(
    redis_url, client
):
    holder = RedisTokenCache(Redis.from_url(redis_url), lock_timeout=30)
    waiter = RedisTokenCache(client, lock_timeout=0.5)

    async with holder.lock(KEY, timeout=1):
        started = time.monotonic()
        with pytest.raises(TokenCacheError, match="still held"):
            # Waits lock_timeout (a crashed holder's lock would have expired) + timeout (the
            # next holder's fetch): 0.8 s.
            async with waiter.lock(KEY, timeout=0.3):
                pytest.fail("entered the lock while another process holds it")
        assert 0.7 < time.monotonic() - started < 2.0
        assert await client.exists(f"wxqr:lock:{KEY}") == 1

    await holder._redis.aclose()


async def test_lock_that_expired_while_held_is_released_quietly(redis_url, client, caplog):
    slow = RedisTokenCache(client, lock_timeout=0.2)
    other = Redis.from_url(redis_url)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with slow.lock(KEY, timeout=1):
            await anyio.sleep(0.4)
            # Meanwhile, after expiry, another process took the lock.
            assert await other.set(f"wxqr:lock:{KEY}", "someone-else", nx=True, px=5000)

    # No LockNotOwnedError reached us, and the other process's lock was not released.
    assert await other.get(f"wxqr:lock:{KEY}") == b"someone-else"
    assert any("expired before it was released" in r.getMessage() for r in caplog.records)
    await other.aclose()


# --- hygiene and ownership ----------------------------------------------------------------------


async def test_keys_never_contain_the_token_and_repr_shows_nothing_secret(cache, client):
    await cache.set(KEY, hour_from_now())
    await cache.claim(f"{KEY}:force-refresh", 30)
    async with cache.lock(KEY, timeout=1):
        keys = [key.decode() async for key in client.scan_iter("*")]

    assert sorted(keys) == [
        f"wxqr:claim:{KEY}:force-refresh",
        f"wxqr:lock:{KEY}",
        f"wxqr:token:{KEY}",
    ]
    assert not any(TOKEN in key for key in keys)
    assert TOKEN not in repr(cache)
    assert TOKEN[-4:] not in repr(cache)


async def test_from_url_does_not_show_the_password():
    cache = RedisTokenCache.from_url("redis://:hunter2-password@127.0.0.1:1/0")
    assert "hunter2" not in repr(cache)
    with pytest.raises(TokenCacheError) as excinfo:
        await cache.get(KEY)
    assert "hunter2" not in str(excinfo.value)
    await cache.aclose()


async def connected_clients(admin: Redis) -> int:
    return int((await admin.info("clients"))["connected_clients"])


async def wait_for_clients(admin: Redis, expected: int) -> int:
    with anyio.move_on_after(2):
        while await connected_clients(admin) != expected:
            await anyio.sleep(0.02)
    return await connected_clients(admin)


async def test_aclose_leaves_a_caller_owned_client_open(client):
    cache = RedisTokenCache(client)
    await cache.set(KEY, hour_from_now())
    await cache.aclose()
    await cache.aclose()  # idempotent
    assert await client.ping() is True


async def test_aclose_closes_a_client_created_by_from_url(redis_url, client):
    baseline = await connected_clients(client)
    cache = RedisTokenCache.from_url(redis_url)
    await cache.set(KEY, hour_from_now())
    assert await wait_for_clients(client, baseline + 1) == baseline + 1

    await cache.aclose()
    await cache.aclose()  # idempotent
    assert await wait_for_clients(client, baseline) == baseline


# --- Redis going away ---------------------------------------------------------------------------

OPERATIONS = [
    pytest.param(lambda c: c.get(KEY), id="get"),
    pytest.param(lambda c: c.set(KEY, hour_from_now()), id="set"),
    pytest.param(lambda c: c.delete(KEY), id="delete"),
    pytest.param(lambda c: c.delete(KEY, if_value=TOKEN), id="compare-and-delete"),
    pytest.param(lambda c: c.claim(f"{KEY}:force-refresh", 30), id="claim"),
]


async def enter_lock(cache: RedisTokenCache) -> None:
    async with cache.lock(KEY, timeout=1):
        pass


@pytest.mark.parametrize("operation", [*OPERATIONS, pytest.param(enter_lock, id="lock")])
async def test_redis_down_raises_token_cache_error(private_redis_server, operation):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client)
    await cache.set(KEY, hour_from_now())
    private_redis_server.stop()

    with pytest.raises(TokenCacheError) as excinfo:
        await operation(cache)

    # The failure is named, but redis-py's exception is not chained: the locals of its
    # traceback hold the command's arguments (the token, for set and delete).
    assert "ConnectionError" in str(excinfo.value)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None
    assert KEY in str(excinfo.value)
    assert TOKEN not in str(excinfo.value)
    await client.aclose()


async def test_fallback_behaves_as_no_cache_and_warns_once_per_outage(private_redis_server, caplog):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client, fallback=True, outage_cooldown=0.2)
    await cache.set(KEY, hour_from_now())
    private_redis_server.stop()

    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == LOGGER and r.levelno == logging.WARNING
        ]

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            assert await cache.get(KEY) is None
            await cache.set(KEY, hour_from_now("NEW"))
            assert await cache.delete(KEY, if_value=TOKEN) is False
            assert await cache.claim(f"{KEY}:force-refresh", 30) is True

        # The lock degrades to a process-local one: still exclusive within this process.
        inside = most_inside = 0

        async def refresh() -> None:
            nonlocal inside, most_inside
            async with cache.lock(KEY, timeout=1):
                inside += 1
                most_inside = max(most_inside, inside)
                await anyio.sleep(0.01)
                inside -= 1

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(refresh)
        assert most_inside == 1

        assert len(warnings()) == 1
        assert "Redis token cache" in warnings()[0]
        assert TOKEN not in caplog.text

        # Redis comes back: after the outage cool-down the cache is used again; a second
        # outage warns again.
        private_redis_server.start()
        await anyio.sleep(0.25)
        assert await cache.get(KEY) is None  # the restarted server is empty
        await cache.set(KEY, hour_from_now("AFTER"))
        assert (await cache.get(KEY)).value == "AFTER"
        private_redis_server.stop()
        assert await cache.get(KEY) is None

    assert len([m for m in warnings() if "failed" in m]) == 2
    await client.aclose()


# --- rate limiter -------------------------------------------------------------------------------


def most_in_any_window(times: list[float], period: float) -> int:
    """The largest number of timestamps inside any half-open window [t, t + period)."""
    times = sorted(times)
    most = 0
    start = 0
    for end, t in enumerate(times):
        while t - times[start] >= period:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_rate_limiter_never_exceeds_the_limit_in_any_window(client):
    limiter = RedisRateLimiter(client)
    limit = RateLimit(5, 0.5)
    admitted: list[float] = []

    async def call() -> None:
        await limiter.acquire("wx1:qrcodejump", limit)
        admitted.append(time.monotonic())

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for _ in range(15):
            tg.start_soon(call)

    assert len(admitted) == 15
    # 15 calls at 5 per 0.5 s: the first 5 at once, the last 5 a full period after the first.
    assert time.monotonic() - started >= 1.0 - 0.01
    assert most_in_any_window(admitted, limit.period - 0.01) <= 5


async def test_rate_limiters_on_separate_connections_share_one_budget(redis_url, client):
    limiters = [RedisRateLimiter(Redis.from_url(redis_url)) for _ in range(3)]
    limit = RateLimit(4, 0.4)
    admitted: list[float] = []

    async def call(limiter: RedisRateLimiter) -> None:
        await limiter.acquire("wx1:getwxacodeunlimit", limit)
        admitted.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        for limiter in limiters:
            for _ in range(4):
                tg.start_soon(call, limiter)

    # 12 calls by three "processes" (4 each, each within its own share) take three periods.
    assert max(admitted) - min(admitted) >= 2 * limit.period - 0.01
    assert most_in_any_window(admitted, limit.period - 0.01) <= 4
    assert await client.zcard("wxqr:rate:wx1:getwxacodeunlimit") <= 4
    assert 0 < await client.pttl("wxqr:rate:wx1:getwxacodeunlimit") <= 1400
    for limiter in limiters:
        await limiter._redis.aclose()


async def test_rate_limiter_keys_are_independent(client):
    limiter = RedisRateLimiter(client)
    limit = RateLimit(2, 10.0)
    with anyio.fail_after(1):
        for key in ("wx1:qrcodejump", "wx2:qrcodejump", "wx1:getwxacodeunlimit"):
            await limiter.acquire(key, limit)
            await limiter.acquire(key, limit)


async def test_rate_limiter_redis_down_raises_token_cache_error(private_redis_server):
    client = Redis.from_url(private_redis_server.url)
    limiter = RedisRateLimiter(client)
    private_redis_server.stop()
    with pytest.raises(TokenCacheError) as excinfo:
        await limiter.acquire("wx1:qrcodejump", RateLimit(5, 1))
    assert isinstance(excinfo.value.__cause__, RedisConnectionError)
    await client.aclose()


@pytest.mark.parametrize("lock_timeout", [0, -1, float("nan"), "10"])
def test_lock_timeout_must_be_positive_seconds(lock_timeout):
    with pytest.raises(ValidationError, match="lock_timeout"):
        RedisTokenCache(Redis(), lock_timeout=lock_timeout)
