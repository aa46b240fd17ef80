"""WeChat allows 20 forced ``stable_token`` refreshes a day: wxqr counts them and refuses the 21st.

The count lives in the token cache (``TokenCache.incr``), so every client sharing the cache --
every process sharing a Redis -- spends one budget (``tests/caches/test_forced_refresh_redis.py``
runs two OS processes on a real redis-server).
"""

from __future__ import annotations

import time

import pytest
from mockwechat import FakeWeChat, body_of, error

import wxqr

pytestmark = pytest.mark.anyio

KEY = "iTqRJFSEqk9RvPk"


def forced(fake: FakeWeChat) -> int:
    return sum(1 for r in fake.token_requests if (body_of(r) or {}).get("force_refresh") is True)


class Clock:
    """The cache's clock, moved by hand past the 30 s cooldown between forced refreshes."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_the_21st_forced_refresh_is_refused_without_asking_wechat():
    clock = Clock()
    cache = wxqr.MemoryTokenCache(clock=clock)
    fake = FakeWeChat(stable_repeats=True)  # a normal re-fetch keeps answering the bad token
    async with fake.client(token_cache=cache) as wx:
        for spent in range(1, 21):
            fake.reject(await wx.access_token())
            await wx.shorten.fetch(KEY)  # 40001, same token again, forced refresh, retry
            assert await wx.forced_refreshes() == spent
            clock.now += 31  # past the cooldown
        assert forced(fake) == 20

        fake.reject(await wx.access_token())
        token_requests = len(fake.token_requests)
        with pytest.raises(wxqr.AccessTokenError, match="20 forced stable_token refreshes"):
            await wx.shorten.fetch(KEY)
        assert forced(fake) == 20  # the 21st was never sent
        assert len(fake.token_requests) == token_requests + 1  # only the normal re-fetch
        assert await wx.forced_refreshes() == 20


async def test_clients_sharing_a_cache_share_the_budget():
    clock = Clock()
    cache = wxqr.MemoryTokenCache(clock=clock)
    fake = FakeWeChat(stable_repeats=True)
    first = fake.client(token_cache=cache)
    second = fake.client(token_cache=cache)
    for wx in (first, second):  # 10 forced refreshes each
        for _ in range(10):
            fake.reject(await wx.access_token())
            await wx.shorten.fetch(KEY)
            clock.now += 31
    assert await first.forced_refreshes() == await second.forced_refreshes() == 20
    fake.reject(await second.access_token())
    with pytest.raises(wxqr.AccessTokenError, match="spent"):
        await second.shorten.fetch(KEY)
    assert forced(fake) == 20
    await first.aclose()
    await second.aclose()


async def test_a_40001_blip_with_a_new_token_on_refetch_forces_nothing():
    fake = FakeWeChat()  # stable_token hands out a new token once the old one is rejected
    async with fake.client() as wx:
        old = await wx.access_token()
        fake.reject(old)
        await wx.shorten.fetch(KEY)
        assert await wx.access_token() != old
        assert await wx.forced_refreshes() == 0
    assert forced(fake) == 0
    assert len(fake.token_requests) == 2


async def test_a_transient_40001_whose_refetch_differs_costs_no_forced_refresh():
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", error(40001))  # a blip: the token itself is fine
    fake.reply(
        "cgi-bin/stable_token",
        {"access_token": "TOKEN1-q8Zr4Lm2Xw7Kp", "expires_in": 7200},  # first fetch
        {"access_token": "TOKEN-ROTATED-0001", "expires_in": 7200},  # the re-fetch differs
    )
    fake.accepted |= {"TOKEN1-q8Zr4Lm2Xw7Kp", "TOKEN-ROTATED-0001"}
    async with fake.client() as wx:
        await wx.shorten.fetch(KEY)
        assert await wx.forced_refreshes() == 0
    assert forced(fake) == 0


async def test_classic_mode_and_token_providers_report_zero():
    async def provider() -> str:
        return "PROVIDED"

    fake = FakeWeChat()
    async with (
        fake.client(stable_token=False) as classic,
        fake.client(token_provider=provider) as p,
    ):
        assert await classic.forced_refreshes() == 0
        assert await p.forced_refreshes() == 0


async def test_memory_counters_count_expire_and_read():
    clock = Clock()
    cache = wxqr.MemoryTokenCache(clock=clock)
    assert await cache.incr("k", 10, amount=0) == 0
    assert await cache.incr("k", 10) == 1
    assert await cache.incr("k", 10, amount=2) == 3
    assert await cache.incr("other", 10) == 1
    clock.now += 9
    assert await cache.incr("k", 10, amount=0) == 3
    clock.now += 2  # 11 s after the counter was created
    assert await cache.incr("k", 10, amount=0) == 0
    assert await cache.incr("k", 10) == 1


class RacingCache(wxqr.MemoryTokenCache):
    """A cache where other processes spend the whole budget between our check and our count."""

    raced = False

    async def incr(self, key: str, ttl: float, *, amount: int = 1) -> int:
        if amount == 0 and not self.raced:
            self.raced = True
            await super().incr(key, ttl, amount=20)  # meanwhile, elsewhere: all 20 spent
            return 19  # what our read saw just before
        return await super().incr(key, ttl, amount=amount)


async def test_losing_the_race_for_the_last_refresh_sends_nothing_and_undoes_the_count():
    cache = RacingCache()
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(token_cache=cache) as wx:
        fake.reject(await wx.access_token())
        with pytest.raises(wxqr.AccessTokenError, match="spent"):
            await wx.shorten.fetch(KEY)
        assert await wx.forced_refreshes() == 20  # not 21: our count was taken back
    assert cache.raced
    assert forced(fake) == 0
