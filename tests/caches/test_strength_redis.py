"""The Redis token cache, lock and counters at their exact edges, against a real redis-server
(issue 17: every mutant of ``wxqr/caches/redis.py`` that changes behaviour is caught here or in
the other tests of this directory).

What is observed: what a second cache object (another process) reads back, the keys, values and
``PTTL`` left in Redis, the commands the server received (its slow log, set to record every
command), the typed errors and their messages, and log records. Outages use a private
redis-server that a test stops (refused connections) or freezes with SIGSTOP (no answer); the
outage cool-down is checked on a patched monotonic clock instead of waited out.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
import types
from collections.abc import Callable, Iterator

import anyio
import pytest
from redis.asyncio import Redis

from wxqr._ratelimit import RateLimit
from wxqr.caches import CachedToken
from wxqr.caches.redis import RedisRateLimiter, RedisTokenCache
from wxqr.errors import TokenCacheError, ValidationError

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

KEY = "wx1234567890abcdef:stable"
TOKEN = "ACCESS_TOKEN_" + "s" * 100
LOGGER = "wxqr.caches.redis"
RATE_KEY = "wx1234567890abcdef:qrcodejump"


@pytest.fixture
async def commands(client):
    """The commands the shared server receives from now on: ``await commands()``."""
    await client.config_set("slowlog-log-slower-than", 0)
    await client.config_set("slowlog-max-len", 1000)
    await client.slowlog_reset()

    async def received() -> list[str]:
        entries = await client.slowlog_get(1000)
        lines = []
        for entry in reversed(entries):  # the slow log lists the newest first
            command = entry["command"]
            lines.append(command.decode() if isinstance(command, bytes) else command)
        return [line for line in lines if not line.startswith(("SLOWLOG", "CONFIG"))]

    yield received
    await client.config_set("slowlog-log-slower-than", 10000)


class Clock:
    """Stands in for the ``time`` module inside ``wxqr.caches.redis``: a monotonic clock that
    moves only when told; the wall clock stays real (token expiries are absolute)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(
        "wxqr.caches.redis.time", types.SimpleNamespace(monotonic=clock.monotonic, time=clock.time)
    )
    return clock


@pytest.fixture
def frozen(private_redis_server) -> Iterator[Callable[[], None]]:
    """Freeze (SIGSTOP) the private server: connections stay open but nothing is answered."""
    stopped = []

    def freeze() -> None:
        os.kill(private_redis_server.pid, signal.SIGSTOP)
        stopped.append(private_redis_server.pid)

    yield freeze
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)


def hour_from_now(token: str = TOKEN, **kwargs) -> CachedToken:
    return CachedToken(token, time.time() + 3600, **kwargs)


# --- arguments ----------------------------------------------------------------------------------

SECONDS = [
    pytest.param(0, "> 0", id="zero"),
    pytest.param(-1, "> 0", id="negative"),
    pytest.param(float("nan"), "> 0", id="nan"),
    pytest.param(float("inf"), "> 0", id="inf"),
    pytest.param(True, "> 0", id="bool"),
    pytest.param("10", "> 0", id="str"),
]


@pytest.mark.parametrize("argument", ["lock_timeout", "operation_timeout"])
@pytest.mark.parametrize(("value", "low"), SECONDS)
def test_cache_timeouts_must_be_positive_finite_seconds(argument, value, low):
    with pytest.raises(ValidationError) as info:
        RedisTokenCache(Redis(), **{argument: value})
    assert info.value.argument == argument
    assert str(info.value) == f"{argument}: must be a finite number of seconds {low}, got {value!r}"


@pytest.mark.parametrize("value", [0.0001, 2.5, 3])
def test_cache_timeouts_accept_positive_seconds(value):
    RedisTokenCache(Redis(), lock_timeout=value, operation_timeout=value)
    RedisRateLimiter(Redis(), operation_timeout=value)


@pytest.mark.parametrize("value", [-1, -0.001, float("nan"), float("inf"), "5", None])
@pytest.mark.parametrize("make", [RedisTokenCache, RedisRateLimiter], ids=["cache", "limiter"])
def test_outage_cooldown_must_be_seconds_at_least_zero(make, value):
    with pytest.raises(ValidationError) as info:
        make(Redis(), outage_cooldown=value)
    assert info.value.argument == "outage_cooldown"
    assert str(info.value) == (
        f"outage_cooldown: must be a finite number of seconds >= 0, got {value!r}"
    )


@pytest.mark.parametrize("make", [RedisTokenCache, RedisRateLimiter], ids=["cache", "limiter"])
def test_outage_cooldown_zero_is_accepted(make):
    make(Redis(), outage_cooldown=0)


@pytest.mark.parametrize("value", [0, -1, float("nan"), "2"])
def test_limiter_operation_timeout_must_be_positive_finite_seconds(value):
    with pytest.raises(ValidationError) as info:
        RedisRateLimiter(Redis(), operation_timeout=value)
    assert info.value.argument == "operation_timeout"
    assert str(info.value) == (
        f"operation_timeout: must be a finite number of seconds > 0, got {value!r}"
    )


@pytest.mark.parametrize("prefix", ["", 5, None, b"wxqr"])
@pytest.mark.parametrize("make", [RedisTokenCache, RedisRateLimiter], ids=["cache", "limiter"])
def test_prefix_must_be_a_non_empty_string(make, prefix):
    with pytest.raises(ValidationError) as info:
        make(Redis(), prefix=prefix)
    assert info.value.argument == "prefix"
    assert str(info.value) == "prefix: must be a non-empty string"


@pytest.mark.parametrize("fallback", ["yes", 1, None])
def test_fallback_must_be_a_bool(fallback):
    with pytest.raises(ValidationError) as info:
        RedisTokenCache(Redis(), fallback=fallback)
    assert info.value.argument == "fallback"
    assert str(info.value) == f"fallback: must be True or False, got {fallback!r}"


def test_fallback_message_shows_at_most_40_characters_of_the_value():
    with pytest.raises(ValidationError) as info:
        RedisTokenCache(Redis(), fallback="x" * 100)
    assert str(info.value) == "fallback: must be True or False, got '" + "x" * 39


def test_repr_shows_the_settings():
    assert repr(RedisTokenCache(Redis())) == (
        "RedisTokenCache(prefix='wxqr', lock_timeout=10.0, fallback=False)"
    )
    assert repr(RedisTokenCache(Redis(), prefix="app", lock_timeout=3, fallback=True)) == (
        "RedisTokenCache(prefix='app', lock_timeout=3.0, fallback=True)"
    )
    assert repr(RedisRateLimiter(Redis(), prefix="app")) == "RedisRateLimiter(prefix='app')"


# --- what another process reads -----------------------------------------------------------------


async def test_refresh_at_is_stored_and_read_back_by_another_process(redis_url, client):
    writer, reader = RedisTokenCache(client), RedisTokenCache(Redis.from_url(redis_url))
    token = hour_from_now(refresh_at=time.time() + 60)
    await writer.set(KEY, token)

    assert await reader.get(KEY) == token
    assert (await reader.get(KEY)).refresh_at == token.refresh_at
    raw = await client.get(f"wxqr:token:{KEY}")
    # Compact JSON: the value, the expiry and the refresh time, nothing else.
    assert (
        raw
        == json.dumps(
            {"v": TOKEN, "e": token.expires_at, "r": token.refresh_at}, separators=(",", ":")
        ).encode()
    )
    await reader._redis.aclose()


async def test_an_entry_without_refresh_at_reads_back_as_none(client, cache_pair):
    writer, reader = cache_pair
    token = hour_from_now()
    await writer.set(KEY, token)
    assert (await reader.get(KEY)).refresh_at is None
    assert (
        await client.get(f"wxqr:token:{KEY}")
        == json.dumps({"v": TOKEN, "e": token.expires_at}, separators=(",", ":")).encode()
    )


@pytest.fixture
async def cache_pair(redis_url):
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    yield [RedisTokenCache(c) for c in clients]
    for c in clients:
        await c.aclose()


async def test_an_entry_with_an_integer_refresh_at_reads_back_as_float(client, cache_pair):
    _, reader = cache_pair
    await client.set(f"wxqr:token:{KEY}", json.dumps({"v": TOKEN, "e": 2000000000, "r": 1999}))
    token = await reader.get(KEY)
    assert token == CachedToken(TOKEN, 2000000000.0, 1999.0)
    assert type(token.refresh_at) is float


async def test_a_stale_if_value_delete_leaves_the_newer_token(client, cache_pair, commands):
    process_a, process_b = cache_pair
    await process_a.set(KEY, hour_from_now("OLD"))
    await process_b.set(KEY, hour_from_now("NEW"))

    assert await process_a.delete(KEY, if_value="OLD") is False
    assert (await process_a.get(KEY)).value == "NEW"
    # One atomic script on the server (no GET then DEL), given the stale token to compare.
    sent = await commands()
    assert not any(line.startswith("DEL") for line in sent)
    assert any(
        line.startswith("EVALSHA") and line.endswith(f"wxqr:token:{KEY} OLD") for line in sent
    )

    assert await process_b.delete(KEY, if_value="NEW") is True
    assert await client.exists(f"wxqr:token:{KEY}") == 0


async def test_from_url_passes_its_options_on(redis_url, client):
    cache = RedisTokenCache.from_url(redis_url, prefix="app-x", lock_timeout=2)
    assert repr(cache) == "RedisTokenCache(prefix='app-x', lock_timeout=2.0, fallback=False)"
    await cache.set(KEY, hour_from_now())
    assert [k.decode() async for k in client.scan_iter("*")] == [f"app-x:token:{KEY}"]
    await cache.aclose()


# --- TTLs and the commands sent -----------------------------------------------------------------


async def test_lock_key_lives_for_the_default_lock_timeout(client):
    cache = RedisTokenCache(client)
    async with cache.lock(KEY, timeout=1):
        pttl = await client.pttl(f"wxqr:lock:{KEY}")
    assert 9_000 < pttl <= 10_000


async def test_claim_ttl_and_value(client, commands):
    cache = RedisTokenCache(client)
    assert await cache.claim(f"{KEY}:force-refresh", 30) is True
    assert 29_000 < await client.pttl(f"wxqr:claim:{KEY}:force-refresh") <= 30_000
    assert await client.get(f"wxqr:claim:{KEY}:force-refresh") == b"1"
    # A TTL that rounds to nothing is sent as the smallest valid one, 1 ms.
    assert await cache.claim("short", 0) is True
    sent = await commands()
    assert f"SET wxqr:claim:{KEY}:force-refresh 1 NX PX 30000" in sent
    assert "SET wxqr:claim:short 1 NX PX 1" in sent


async def test_incr_sends_the_ttl_in_milliseconds_at_least_one(client, commands):
    cache = RedisTokenCache(client)
    assert await cache.incr("a", 0.0001) == 1
    assert await cache.incr("b", 2.5, amount=4) == 4
    # EVALSHA sha numkeys key amount ttl_ms (a first attempt may be repeated after NOSCRIPT)
    evals = {line.split(" ", 2)[2] for line in await commands() if line.startswith("EVALSHA")}
    assert evals == {"1 wxqr:count:a 1 1", "1 wxqr:count:b 4 2500"}


async def test_rate_limiter_sends_the_period_in_microseconds(client, commands):
    limiter = RedisRateLimiter(client)
    await limiter.acquire(RATE_KEY, RateLimit(3, 1.0))
    await limiter.acquire("tiny", RateLimit(3, 1e-9))
    # EVALSHA sha numkeys key calls period_us member
    evals = {tuple(line.split()[3:6]) for line in await commands() if line.startswith("EVALSHA")}
    assert evals == {(f"wxqr:rate:{RATE_KEY}", "3", "1000000"), ("wxqr:rate:tiny", "3", "1")}
    # Each admitted call is one member: 8 random bytes, hex, scored by the server clock (µs).
    members = await client.zrange(f"wxqr:rate:{RATE_KEY}", 0, -1, withscores=True)
    assert len(members) == 1
    member, score = members[0]
    assert re.fullmatch(rb"[0-9a-f]{16}", member)
    seconds, micros = await client.time()
    assert abs(score - (seconds * 1_000_000 + micros)) < 5_000_000


async def test_rate_limiter_waiters_of_one_process_share_one_request_per_attempt(client):
    limiter = RedisRateLimiter(client)
    limit = RateLimit(1, 0.05)
    before = await evalsha_calls(client)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(limiter.acquire, RATE_KEY, limit)

    # Queued on the local lock: one admitted call, then per waiter one "wait" answer and one
    # admission (6 + 5 = 11). Without the queue all waiters would ask each round (21).
    assert await evalsha_calls(client) - before <= 13


async def evalsha_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


# --- ownership ----------------------------------------------------------------------------------


async def client_names(admin: Redis) -> list[str]:
    return [c.get("name", "") for c in await admin.client_list()]


async def test_aclose_does_not_disconnect_a_callers_client(redis_url, client):
    own = Redis.from_url(redis_url, client_name="callers-client")
    await own.ping()
    cache = RedisTokenCache(own)
    await cache.aclose()
    with anyio.move_on_after(0.2):
        while "callers-client" in await client_names(client):
            await anyio.sleep(0.02)
    assert "callers-client" in await client_names(client)
    await own.aclose()


async def test_a_second_aclose_does_nothing(redis_url, client):
    cache = RedisTokenCache.from_url(redis_url)
    await cache.aclose()
    # Used again after closing, redis-py reconnects; a second aclose leaves that alone.
    await cache._redis.client_setname("reopened")
    await cache.aclose()
    with anyio.move_on_after(0.2):
        while "reopened" in await client_names(client):
            await anyio.sleep(0.02)
    assert "reopened" in await client_names(client)
    await cache._redis.aclose()


# --- failures: messages, bounds, cool-down ------------------------------------------------------

OPERATIONS = [
    pytest.param(lambda c: c.get(KEY), f"get 'wxqr:token:{KEY}'", id="get"),
    pytest.param(lambda c: c.set(KEY, hour_from_now()), f"set 'wxqr:token:{KEY}'", id="set"),
    pytest.param(lambda c: c.delete(KEY), f"delete 'wxqr:token:{KEY}'", id="delete"),
    pytest.param(
        lambda c: c.delete(KEY, if_value=TOKEN), f"delete 'wxqr:token:{KEY}'", id="if-value"
    ),
    pytest.param(lambda c: c.claim(KEY, 30), f"claim 'wxqr:claim:{KEY}'", id="claim"),
    pytest.param(lambda c: c.incr(KEY, 30), f"incr 'wxqr:count:{KEY}'", id="incr"),
    pytest.param(lambda c: take_lock(c), f"lock 'wxqr:lock:{KEY}'", id="lock"),
]


async def take_lock(cache: RedisTokenCache) -> None:
    async with cache.lock(KEY, timeout=1):
        pass


@pytest.mark.parametrize(("operation", "what"), OPERATIONS)
async def test_a_refused_operation_names_itself_and_its_key(
    private_redis_server, clock, operation, what
):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client)
    private_redis_server.stop()

    with pytest.raises(TokenCacheError) as info:
        await operation(cache)
    assert str(info.value) == f"Redis token cache: {what} failed (ConnectionError)"

    # Within the cool-down Redis is not asked at all.
    clock.now += 4.9
    with pytest.raises(TokenCacheError) as info:
        await operation(cache)
    assert str(info.value) == (
        f"Redis token cache: {what} not attempted (Redis failed less than 5 s ago)"
    )
    await client.aclose()


async def test_the_cool_down_ends_exactly_outage_cooldown_after_the_failure(
    private_redis_server, clock
):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client, outage_cooldown=3)
    # Early in the monotonic clock's life nothing is cooling down yet.
    clock.now = 0.5
    await cache.set(KEY, hour_from_now())
    private_redis_server.stop()
    with pytest.raises(TokenCacheError, match="failed"):
        await cache.get(KEY)
    private_redis_server.start()

    clock.now = 3.4999
    with pytest.raises(TokenCacheError, match="less than 3 s ago"):
        await cache.get(KEY)
    clock.now = 3.5
    assert await cache.get(KEY) is None  # asked again: the restarted server is empty
    await client.aclose()


async def test_outage_cooldown_zero_asks_redis_every_time(private_redis_server, clock):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client, outage_cooldown=0)
    private_redis_server.stop()
    for _ in range(2):
        with pytest.raises(TokenCacheError, match=r"failed \(ConnectionError\)"):
            await cache.get(KEY)
    private_redis_server.start()
    assert await cache.get(KEY) is None
    await client.aclose()


async def test_a_frozen_redis_fails_within_operation_timeout(private_redis_server, frozen):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client, operation_timeout=0.15)
    await cache.set(KEY, hour_from_now())
    frozen()

    started = time.monotonic()
    with anyio.fail_after(3), pytest.raises(TokenCacheError) as info:
        await cache.get(KEY)
    assert time.monotonic() - started < 1.0
    assert str(info.value) == (
        f"Redis token cache: get 'wxqr:token:{KEY}' got no answer within 0.15 s"
    )
    assert TOKEN not in str(info.value)
    await client.aclose()


async def test_taking_the_lock_on_a_frozen_redis_is_bounded(private_redis_server, frozen):
    # redis-py's blocking_timeout is only checked between attempts: one SET NX to a server
    # that never answers would wait forever without wxqr's own bound (wait + one operation).
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client, operation_timeout=0.15, lock_timeout=0.2)
    await cache.set(KEY, hour_from_now())  # the connection is open: the freeze is mid-session
    frozen()
    started = time.monotonic()
    with anyio.fail_after(5), pytest.raises(TokenCacheError) as info:
        await take_lock(cache)
    assert time.monotonic() - started < 2.0  # bound: 0.2 + 1 (wait) + 0.15 s
    # The message says how long the lock was waited for: lock_timeout + timeout + one operation.
    assert str(info.value) == (
        f"Redis token cache: lock 'wxqr:lock:{KEY}' got no answer within 1.35 s"
    )
    await client.aclose()


async def test_each_lock_is_a_redis_py_lock_polling_every_50_ms_with_its_own_token(client):
    # What the cache asks of redis-py: the lock expires after lock_timeout, a waiter polls
    # every 50 ms for at most lock_timeout + timeout, and the token is kept on the Lock object
    # (redis-py's thread-local default would share it between the loop's tasks).
    asked, made = [], []
    original = client.lock

    def lock(name, **options):
        asked.append((name, options))
        made.append(original(name, **options))
        return made[-1]

    client.lock = lock
    cache = RedisTokenCache(client, lock_timeout=3)
    await take_lock(cache)
    await take_lock(cache)
    assert (
        asked
        == [
            (
                f"wxqr:lock:{KEY}",
                {"timeout": 3.0, "blocking_timeout": 4.0, "sleep": 0.05, "thread_local": False},
            )
        ]
        * 2
    )
    assert made[0] is not made[1]  # one Lock per acquisition


async def test_releasing_the_lock_on_a_frozen_redis_is_bounded_and_logged(
    private_redis_server, frozen, caplog
):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client, operation_timeout=0.15, lock_timeout=7)
    started = None
    with caplog.at_level(logging.WARNING, logger=LOGGER), anyio.fail_after(3):
        async with cache.lock(KEY, timeout=1):
            frozen()
            started = time.monotonic()
    assert time.monotonic() - started < 1.0
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        f"could not release refresh lock 'wxqr:lock:{KEY}' (TimeoutError); it expires within 7 s"
    ]
    await client.aclose()


async def test_fallback_logs_recovery_only_after_an_outage(private_redis_server, caplog):
    client = Redis.from_url(private_redis_server.url)
    cache = RedisTokenCache(client, fallback=True, outage_cooldown=0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await cache.set(KEY, hour_from_now())
        assert (await cache.get(KEY)).value == TOKEN
        assert [r for r in caplog.records if r.name == LOGGER] == []

        private_redis_server.stop()
        assert await cache.get(KEY) is None
        private_redis_server.start()
        assert await cache.get(KEY) is None
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER] == [
        (
            logging.WARNING,
            f"Redis token cache: get 'wxqr:token:{KEY}' failed (ConnectionError); fetching "
            "tokens without the cache until Redis answers again",
        ),
        (logging.INFO, "Redis token cache is reachable again"),
    ]
    await client.aclose()


async def test_rate_limiter_refused_names_the_key_and_cools_down(private_redis_server, clock):
    client = Redis.from_url(private_redis_server.url)
    limiter = RedisRateLimiter(client, outage_cooldown=2)
    private_redis_server.stop()
    with pytest.raises(TokenCacheError) as info:
        await limiter.acquire(RATE_KEY, RateLimit(5, 1))
    assert str(info.value) == f"Redis rate limiter: 'wxqr:rate:{RATE_KEY}' failed: ConnectionError"

    private_redis_server.start()
    clock.now = 1001.99
    with pytest.raises(TokenCacheError) as info:
        await limiter.acquire(RATE_KEY, RateLimit(5, 1))
    assert str(info.value) == (
        f"Redis rate limiter: 'wxqr:rate:{RATE_KEY}' not checked (Redis failed less than 2 s ago)"
    )
    clock.now = 1002.0
    await limiter.acquire(RATE_KEY, RateLimit(5, 1))
    await client.aclose()


async def test_rate_limiter_on_a_frozen_redis_fails_within_operation_timeout(
    private_redis_server, frozen
):
    client = Redis.from_url(private_redis_server.url)
    limiter = RedisRateLimiter(client, operation_timeout=0.15)
    await limiter.acquire(RATE_KEY, RateLimit(5, 1))
    frozen()

    started = time.monotonic()
    with anyio.fail_after(3), pytest.raises(TokenCacheError) as info:
        await limiter.acquire(RATE_KEY, RateLimit(5, 1))
    assert time.monotonic() - started < 1.0
    assert str(info.value) == (
        f"Redis rate limiter: 'wxqr:rate:{RATE_KEY}' failed: no answer within 0.15 s"
    )
    assert isinstance(info.value.__cause__, TimeoutError)
    await client.aclose()


async def test_rate_limiter_sleeps_exactly_the_wait_the_server_answered(client, monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await anyio.sleep(seconds)

    monkeypatch.setattr(
        "wxqr.caches.redis.anyio",
        types.SimpleNamespace(sleep=sleep, Lock=anyio.Lock, fail_after=anyio.fail_after),
    )
    limiter = RedisRateLimiter(client)
    limit = RateLimit(1, 0.2)
    await limiter.acquire(RATE_KEY, limit)
    started = time.monotonic()
    await limiter.acquire(RATE_KEY, limit)

    assert time.monotonic() - started >= 0.15
    assert slept, "the second call did not wait"
    # The script answers whole microseconds; the wait is exactly that, not a rounded variant.
    for seconds in slept:
        micros = seconds * 1_000_000
        assert abs(micros - round(micros)) < 1e-3, seconds
    assert 0.15 < sum(slept) <= 0.2
