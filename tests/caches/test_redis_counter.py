"""``RedisTokenCache.incr``: the shared counter behind the daily forced-refresh budget."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from wxqr.caches import MemoryTokenCache, TokenCache
from wxqr.caches.redis import RedisTokenCache
from wxqr.errors import TokenCacheError

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

KEY = "wx5ca1ab1e0c1u5ter:stable:forced:20261202"


def test_both_caches_implement_the_protocol_with_incr():
    assert isinstance(MemoryTokenCache(), TokenCache)
    assert isinstance(RedisTokenCache(Redis()), TokenCache)


async def test_incr_counts_across_cache_objects_and_sets_the_ttl_once(client):
    one, two = RedisTokenCache(client), RedisTokenCache(client)
    assert await one.incr(KEY, 100, amount=0) == 0
    assert await client.exists(f"wxqr:count:{KEY}") == 0  # reading creates nothing
    assert await one.incr(KEY, 100) == 1
    ttl = await client.pttl(f"wxqr:count:{KEY}")
    assert 90_000 < ttl <= 100_000
    assert await two.incr(KEY, 5000) == 2  # another process, same counter
    assert await two.incr(KEY, 100, amount=0) == 2
    # the TTL is the creation's, not renewed by later increments
    assert await client.pttl(f"wxqr:count:{KEY}") <= ttl
    assert await one.incr(KEY, 100, amount=3) == 5


async def test_incr_keys_carry_the_prefix(client):
    cache = RedisTokenCache(client, prefix="app2")
    await cache.incr(KEY, 60)
    assert [key.decode() async for key in client.scan_iter("*")] == [f"app2:count:{KEY}"]


async def test_incr_with_redis_down(private_redis_server):
    client = Redis.from_url(private_redis_server.url)
    strict, lenient = RedisTokenCache(client), RedisTokenCache(client, fallback=True)
    await strict.incr(KEY, 60)
    private_redis_server.stop()
    with pytest.raises(TokenCacheError) as info:
        await strict.incr(KEY, 60)
    # Not chained to redis-py's exception (its traceback locals hold the command's arguments,
    # a token among them); the message names the failure instead.
    assert info.value.__cause__ is None
    assert "ConnectionError" in str(info.value)
    assert await lenient.incr(KEY, 60) == 1  # as if no cache: counting from 0
    assert await lenient.incr(KEY, 60, amount=0) == 0
    await client.aclose()
