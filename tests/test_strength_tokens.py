"""Token behaviours across processes and racing callers that no earlier test pinned down.

"Two processes" are two ``wxqr.Client``s (two ``TokenManager``s) on one shared cache, as two
workers on one Redis would be; the cache here is the memory cache, wrapped where a test needs
the cache to take time the way a Redis round-trip does. Companion of ``tests/test_tokens.py``.
"""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from mockwechat import APPID, SECRET, FakeWeChat, body_of, error, token_of

import wxqr
from wxqr._tokens import TokenManager

pytestmark = pytest.mark.anyio

KEY = "iTqRJFSEqk9RvPk"
STABLE = f"{APPID}:stable"
CLASSIC = f"{APPID}:classic"


def wire_of(http):
    """The wire wxqr itself builds around a caller's ``httpx.AsyncClient``."""
    return wxqr.Client(APPID, SECRET, http_client=http)._get_wire


def manager(http, *, cache=None, stable=True, clock=time.time, secret=SECRET, timeout=10.0):
    """One TokenManager (one "process") on ``cache``, with a clock the test may control."""
    return TokenManager(
        wire=wire_of(http),
        api_base_url="https://api.weixin.qq.com",
        appid=APPID,
        secret=secret,
        cache=cache if cache is not None else wxqr.MemoryTokenCache(),
        stable=stable,
        clock=clock,
        timeout=timeout,
    )


def api_tokens(fake):
    return [token_of(r) for r in fake.api_requests]


class HookedCache(wxqr.MemoryTokenCache):
    """A memory cache that runs ``hook`` in the middle of ``delete`` (a slow round-trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.before_delete = None
        self.after_delete = None

    async def delete(self, key, *, if_value=None):
        hook, self.before_delete = self.before_delete, None
        if hook is not None:
            await hook()
        deleted = await super().delete(key, if_value=if_value)
        hook, self.after_delete = self.after_delete, None
        if hook is not None:
            await hook()
        return deleted


class CountingCache(wxqr.MemoryTokenCache):
    """A memory cache that counts reads and lock acquisitions (each a round-trip on Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.locks = 0

    async def get(self, key):
        self.reads += 1
        return await super().get(key)

    def lock(self, key, *, timeout):
        self.locks += 1
        return super().lock(key, timeout=timeout)


class DownCache(wxqr.MemoryTokenCache):
    """A cache in fallback mode (Redis down): reads miss, writes vanish; the lock still works."""

    async def get(self, key):
        return None

    async def set(self, key, token):
        return None


# -- compare-and-delete through the manager ------------------------------------------------------


async def test_a_stale_40001_in_one_process_keeps_the_token_another_already_refreshed():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat()
    async with (
        fake.client(token_cache=cache, stable_token=False, retry_backoff=0) as a,
        fake.client(token_cache=cache, stable_token=False, retry_backoff=0) as b,
    ):
        first = await a.access_token()
        assert await b.access_token() == first
        fake.reject(first)
        await b.shorten.fetch(KEY)  # B hits 40001 first and refreshes: the cache holds T2
        second = fake.issued[1]
        assert (await cache.get(CLASSIC)).value == second

        await a.shorten.fetch(KEY)  # A still holds T1: its 40001 is stale news

        assert (await cache.get(CLASSIC)).value == second  # not deleted, not replaced
        assert await a.access_token() == second
        assert await b.access_token() == second
    # classic mode: one more fetch would have invalidated B's token for real
    assert len(fake.token_requests) == 2
    assert api_tokens(fake) == [first, second, first, second]


async def test_a_40001_for_the_cached_token_drops_it_from_the_shared_cache():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat()
    async with fake.client(token_cache=cache, retry_backoff=0) as a:
        first = await a.access_token()
        fake.reject(first)
        await a.shorten.fetch(KEY)
    async with fake.client(token_cache=cache) as b:  # the next process starts with the new one
        assert await b.access_token() == fake.issued[1] != first
    assert len(fake.token_requests) == 2


# -- the re-check of the shared cache under the cross-process lock -------------------------------


@pytest.mark.parametrize(
    "stable", [pytest.param(True, id="stable"), pytest.param(False, id="classic")]
)
async def test_two_processes_on_a_cold_cache_make_one_fetch(stable):
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat(token_delay=0.05)
    results = {}
    async with (
        fake.client(token_cache=cache, stable_token=stable) as a,
        fake.client(token_cache=cache, stable_token=stable) as b,
    ):

        async def fetch(name, wx):
            results[name] = await wx.access_token()

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch, "a", a)
            tg.start_soon(fetch, "b", b)  # reads the empty cache while A's fetch is in flight

    assert len(fake.token_requests) == 1
    assert results == {"a": fake.issued[0], "b": fake.issued[0]}


async def test_after_the_race_both_processes_serve_the_token_from_their_own_copy():
    cache = CountingCache()
    fake = FakeWeChat(token_delay=0.05)
    async with fake.http_client() as http:
        a, b = manager(http, cache=cache), manager(http, cache=cache)
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.get)
            tg.start_soon(b.get)  # waits for the lock, then finds A's token in the cache
        reads, locks = cache.reads, cache.locks
        assert [await a.get(), await b.get()] == [fake.issued[0]] * 2
        assert (cache.reads, cache.locks) == (reads, locks)  # no round-trip for warm tokens
    assert len(fake.token_requests) == 1


async def test_a_process_finding_a_warm_shared_cache_takes_no_lock():
    cache = CountingCache()
    fake = FakeWeChat()
    async with fake.http_client() as http:
        await manager(http, cache=cache).get()
        assert cache.locks == 1  # the fetch
        other = manager(http, cache=cache)
        assert await other.get() == fake.issued[0]
        assert await other.get() == fake.issued[0]
    assert cache.locks == 1  # the second process read the cache, took no lock
    assert cache.reads == 3  # first: before and under the lock; second: once, then its copy
    assert len(fake.token_requests) == 1


async def test_a_process_waiting_for_the_lock_uses_the_token_fetched_meanwhile():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat(token_delay=0.05)
    async with (
        fake.client(token_cache=cache, stable_token=False) as a,
        fake.client(token_cache=cache, stable_token=False) as b,
        fake.client(token_cache=cache, stable_token=False) as c,
        anyio.create_task_group() as tg,
    ):
        for wx in (a, b, c):
            for _ in range(3):
                tg.start_soon(wx.shorten.fetch, KEY)
    assert len(fake.token_requests) == 1
    assert api_tokens(fake) == [fake.issued[0]] * 9


# -- a refresh never hands back the token it was asked to replace ---------------------------------


async def test_a_get_racing_the_invalidation_does_not_make_the_retry_resend_the_bad_token():
    # WeChat rejects T1. While the manager is deleting T1 from the (slow, shared) cache, another
    # caller's get() still finds T1 there and puts it back in the manager's local copy. The
    # refresh that follows must not take that copy for the replacement it was asked for.
    cache = HookedCache()
    fake = FakeWeChat()
    seen = []
    async with fake.client(token_cache=cache, stable_token=False, retry_backoff=0) as wx:
        first = await wx.access_token()

        async def racing_get():  # runs once the manager has let go of its local copy of T1
            seen.append(await wx.access_token())

        cache.before_delete = racing_get
        fake.reject(first)
        data = await wx.shorten.fetch(KEY)

    assert seen == [first]  # the race happened: the racer got T1 from the cache
    assert data.long_data == "loooooong data"
    assert api_tokens(fake) == [first, fake.issued[1]]  # the retry carried the NEW token


async def test_a_lagging_stable_token_put_back_by_another_process_is_not_the_replacement():
    # Process A is told T1 is invalid and drops it. Before A refreshes, process B (cold) fetches
    # and WeChat's lagging stable_token hands B the same T1, which B stores in the shared cache.
    # A must not take T1 from the cache as its replacement: it fetches, gets T1 again, and
    # forces a refresh.
    cache = HookedCache()
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(token_cache=cache, retry_backoff=0) as a:
        first = await a.access_token()

        async def other_process_fetches():
            async with fake.client(token_cache=cache) as b:
                assert await b.access_token() == first

        cache.after_delete = other_process_fetches
        fake.reject(first)
        await a.shorten.fetch(KEY)

    second = fake.issued[1]
    assert api_tokens(fake) == [first, second]
    assert [body_of(r).get("force_refresh") for r in fake.token_requests] == [
        None,  # A's first token
        None,  # B's fetch: T1 again
        None,  # A's refresh: T1 again
        True,  # A's one forced refresh: T2
    ]
    assert (await cache.get(STABLE)).value == second


async def test_calls_starting_while_a_rejected_token_is_replaced_wait_for_the_new_one():
    fake = FakeWeChat()
    async with fake.client(stable_token=False, retry_backoff=0) as wx:
        first = await wx.access_token()
        fake.reject(first)
        fake.token_delay = 0.1  # the refresh takes a while
        async with anyio.create_task_group() as tg:
            tg.start_soon(wx.shorten.fetch, KEY)  # hits 40001, starts the refresh
            await anyio.sleep(0.05)  # the refresh is in flight
            for _ in range(5):
                tg.start_soon(wx.shorten.fetch, KEY)
    second = fake.issued[1]
    assert api_tokens(fake) == [first] + [second] * 6  # nobody else sent the rejected token
    assert len(fake.token_requests) == 2


async def test_a_replacement_is_never_the_rejected_token_even_when_still_fresh_locally():
    fake = FakeWeChat()
    async with fake.http_client() as http:
        tokens = manager(http, stable=False)
        first = await tokens.get()
        assert await tokens.replacement(first) == fake.issued[1] != first
        # A stale report about a token already replaced changes nothing.
        assert await tokens.replacement(first) == fake.issued[1]
        assert tokens.fetches == 2
    assert len(fake.token_requests) == 2


# -- expiry arithmetic with a patched clock ------------------------------------------------


async def test_the_margin_is_measured_from_the_fetch_start_with_the_managers_clock():
    now = [5_000.0]
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat(expires_in=7200)
    async with fake.http_client() as http:
        tokens = manager(http, cache=cache, stable=False, clock=lambda: now[0])
        first = await tokens.get()
        assert (await cache.get(CLASSIC)).expires_at == 5_000.0 + 7200
        now[0] = 5_000.0 + 7200 - 300 - 0.5  # half a second before the margin: reused
        assert await tokens.get() == first
        now[0] = 5_000.0 + 7200 - 300  # exactly at the margin: refreshed
        second = await tokens.get()
    assert second == fake.issued[1] != first


async def test_a_token_in_the_shared_cache_inside_the_margin_is_not_used():
    cache = wxqr.MemoryTokenCache()
    await cache.set(STABLE, wxqr.CachedToken("OLD-TOKEN-near-expiry", time.time() + 200))
    fake = FakeWeChat()
    async with fake.client(token_cache=cache, refresh_margin=300.0) as wx:
        assert await wx.access_token() == fake.issued[0]
    assert (await cache.get(STABLE)).value == fake.issued[0]


async def test_a_fresh_token_in_the_shared_cache_is_used_without_a_fetch():
    cache = wxqr.MemoryTokenCache()
    await cache.set(STABLE, wxqr.CachedToken("SHARED-TOKEN-from-elsewhere", time.time() + 7200))
    fake = FakeWeChat()
    fake.accepted.add("SHARED-TOKEN-from-elsewhere")
    async with fake.client(token_cache=cache) as wx:
        assert await wx.access_token() == "SHARED-TOKEN-from-elsewhere"
        await wx.shorten.fetch(KEY)
    assert fake.token_requests == []
    assert api_tokens(fake) == ["SHARED-TOKEN-from-elsewhere"]


# -- what a fetch sends and accepts --------------------------------------------------------


async def test_a_manager_defaults_to_stable_token_and_a_10_second_timeout():
    fake = FakeWeChat()
    async with fake.http_client() as http:
        tokens = TokenManager(
            wire=wire_of(http),
            api_base_url="https://api.weixin.qq.com",
            appid=APPID,
            secret=SECRET,
            cache=wxqr.MemoryTokenCache(),
        )
        await tokens.get()
    assert tokens.cache_key == STABLE
    [request] = fake.token_requests
    assert request.url.path == "/cgi-bin/stable_token"
    assert request.extensions["timeout"]["read"] == 10


@pytest.mark.parametrize(
    "stable", [pytest.param(True, id="stable"), pytest.param(False, id="classic")]
)
async def test_an_api_base_url_with_a_path_and_trailing_slash(stable):
    seen = []

    def handler(request):
        seen.append(str(request.url.copy_with(query=None)))
        return httpx.Response(200, json={"access_token": "T-0123456789abc", "expires_in": 7200})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        tokens = TokenManager(
            wire=wire_of(http),
            api_base_url="https://gateway.example/WX/",
            appid=APPID,
            secret=SECRET,
            cache=wxqr.MemoryTokenCache(),
            stable=stable,
        )
        assert await tokens.get() == "T-0123456789abc"
    path = "stable_token" if stable else "token"
    assert seen == [f"https://gateway.example/WX/cgi-bin/{path}"]


async def test_a_stable_fetch_uses_the_fetch_timeout():
    fake = FakeWeChat()
    async with fake.http_client() as http:
        await manager(http, timeout=2.5).get()
    [request] = fake.token_requests
    assert request.extensions["timeout"]["read"] == 2.5


async def test_a_provider_repeating_the_rejected_token_says_so():
    async def provider():
        return "PROVIDED-TOKEN-1"

    fake = FakeWeChat()
    async with fake.client(token_provider=provider) as wx:
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
    assert str(info.value) == (
        "token_provider: errcode 40001: token_provider returned the token WeChat just rejected"
    )
    assert info.value.errcode == 40001


async def test_a_forced_refresh_cooling_down_says_so():
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client() as wx:
        fake.reject(await wx.access_token())
        await wx.shorten.fetch(KEY)  # forced refresh no. 1
        fake.reject(fake.issued[1])
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
    assert str(info.value) == (
        "cgi-bin/stable_token: errcode 40001: WeChat rejected the token and no different token "
        "could be obtained (forced refresh cooling down)"
    )
    assert info.value.endpoint == "cgi-bin/stable_token"


async def test_the_forced_refresh_cooldown_is_per_account_on_a_shared_cache():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat(stable_repeats=True)
    async with (
        fake.client(token_cache=cache) as a,
        fake.client(token_cache=cache, appid="wx0000000000000002") as b,
    ):
        fake.reject(await a.access_token())
        await a.shorten.fetch(KEY)  # A's forced refresh
        fake.reject(await b.access_token())
        await b.shorten.fetch(KEY)  # B's own cooldown: its forced refresh is allowed too
    assert sum(1 for r in fake.token_requests if body_of(r).get("force_refresh")) == 2


async def test_fetches_are_counted_and_use_the_fetch_timeout():
    fake = FakeWeChat()
    async with fake.http_client() as http:
        tokens = manager(http, stable=False, timeout=3.5)
        await tokens.get()
        assert tokens.fetches == 1
        assert tokens.cache_key == CLASSIC
    [request] = fake.token_requests
    assert request.extensions["timeout"]["read"] == 3.5


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"access_token": "", "expires_in": 7200}, id="empty-token"),
        pytest.param({"access_token": 123, "expires_in": 7200}, id="numeric-token"),
        pytest.param({"access_token": "T", "expires_in": "7200"}, id="string-expiry"),
    ],
)
async def test_a_token_answer_without_a_usable_token_is_a_decode_error(answer):
    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", answer)
    async with fake.client(max_retries=0) as wx:
        with pytest.raises(wxqr.ResponseDecodeError, match="lacks access_token") as info:
            await wx.access_token()
    assert info.value.endpoint == "cgi-bin/stable_token"


async def test_a_float_expires_in_is_accepted():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat(expires_in=7200.5)
    before = time.time()
    async with fake.client(token_cache=cache) as wx:
        await wx.access_token()
    assert (await cache.get(STABLE)).expires_at >= before + 7200.5


async def test_a_manager_without_secret_or_provider_says_so():
    fake = FakeWeChat()
    async with fake.http_client() as http:
        with pytest.raises(wxqr.AccessTokenError) as info:
            await manager(http, secret=None).get()
    assert str(info.value) == (
        "cgi-bin/stable_token: errcode 41004: no secret and no token_provider"
    )
    assert info.value.errcode == 41004
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert fake.requests == []


async def test_the_forced_refresh_error_names_the_token_endpoint():
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(retry_backoff=0) as wx:
        first = await wx.access_token()
        # Even the forced refresh answers the rejected token: give up with a clear error.
        fake.reply_always(
            "cgi-bin/stable_token", lambda request: {"access_token": first, "expires_in": 7200}
        )
        fake.reject(first)
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
    assert str(info.value) == (
        "cgi-bin/stable_token: errcode 40001: forced refresh returned the rejected token"
    )
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert info.value.errcode == 40001
    assert [body_of(r).get("force_refresh") for r in fake.token_requests] == [None, None, True]


async def test_a_provider_token_is_never_cached_nor_invalidated():
    cache = wxqr.MemoryTokenCache()
    tokens = iter(["P1", "P2"])

    async def provider():
        return next(tokens)

    fake = FakeWeChat()
    fake.accepted.add("P2")
    async with fake.client(token_provider=provider, token_cache=cache) as wx:
        await wx.shorten.fetch(KEY)
        assert await cache.get(STABLE) is None
        await wx._tokens.invalidate("P2")  # a no-op for provided tokens
    assert api_tokens(fake) == ["P1", "P2"]


async def test_a_token_error_from_the_provider_path_names_the_provider():
    async def provider():
        return 42

    fake = FakeWeChat()
    async with fake.client(token_provider=provider) as wx:
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.access_token()
    assert (info.value.errcode, info.value.endpoint) == (41001, "token_provider")
    assert str(info.value) == "token_provider: errcode 41001: token_provider returned no token"


async def test_a_busy_token_endpoint_then_success_gives_the_token():
    fake = FakeWeChat()
    fake.reply("cgi-bin/token", error(-1))
    async with fake.client(stable_token=False, retry_backoff=0) as wx:
        await wx.shorten.fetch(KEY)
    assert len(fake.token_requests) == 2
    assert api_tokens(fake) == [fake.issued[0]]


async def test_put_secret_puts_the_appsecret_in_a_body_masked_in_reprs():
    fake = FakeWeChat()
    async with fake.client() as wx:
        body = {"appid": APPID}
        wx._tokens.put_secret(body, "appsecret")
    assert body == {"appid": APPID, "appsecret": SECRET}
    assert SECRET not in repr(body)
    assert fake.requests == []  # nothing was fetched for it


async def test_put_secret_without_an_appsecret_names_the_argument():
    async def provider():
        return "P1"

    async with FakeWeChat().client(token_provider=provider) as wx:
        body = {}
        with pytest.raises(wxqr.ValidationError) as info:
            wx._tokens.put_secret(body, "appsecret")
    assert info.value.argument == "secret"
    assert str(info.value) == "secret: this client has no AppSecret (token_provider)"
    assert body == {}


DAY = 2 * 86400.0  # how long a day's forced-refresh counter is kept


class BudgetCache(wxqr.MemoryTokenCache):
    """A memory cache that notes every counter operation (key, ttl, amount); with
    ``race=True`` other processes spend the whole day's budget between our read and our count."""

    def __init__(self, *, race: bool = False) -> None:
        super().__init__()
        self.counts: list[tuple[str, float, int]] = []
        self.race = race

    async def incr(self, key, ttl, *, amount=1):
        self.counts.append((key, ttl, amount))
        if amount == 0 and self.race:
            self.race = False
            await super().incr(key, ttl, amount=20)
            return 19  # what our read saw just before
        return await super().incr(key, ttl, amount=amount)


def forced_sent(fake):
    return sum(1 for r in fake.token_requests if (body_of(r) or {}).get("force_refresh") is True)


def next_1630_utc():
    """The next 16:30 UTC: 00:30 of the following day in Beijing. Returns (time, Beijing day)."""
    now = time.time()
    midnight = now - now % 86400
    at = midnight + 16.5 * 3600
    if at < now:
        at += 86400
    return at, time.strftime("%Y%m%d", time.gmtime(at - 16.5 * 3600 + 86400))


async def test_the_forced_refresh_budget_is_counted_under_the_beijing_day(monkeypatch):
    at, beijing_day = next_1630_utc()
    cache = BudgetCache()
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(token_cache=cache) as wx:
        monkeypatch.setattr(wx._tokens, "_clock", lambda: at)
        fake.reject(await wx.access_token())
        await wx.shorten.fetch(KEY)  # 40001, the same token again, one forced refresh
        assert await wx.forced_refreshes() == 1
    assert forced_sent(fake) == 1
    assert {amount for _, _, amount in cache.counts} == {0, 1}
    assert {(key, ttl) for key, ttl, _ in cache.counts} == {(f"{STABLE}:forced:{beijing_day}", DAY)}


BUDGET_SPENT = (
    "cgi-bin/stable_token: errcode 40001: WeChat rejected the token, and today's 20 forced "
    "stable_token refreshes are spent (refused without asking WeChat)"
)


async def test_with_exactly_20_spent_the_next_is_refused_before_counting_or_cooling_down():
    cache = BudgetCache()
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(token_cache=cache) as wx:
        key = wx._tokens._forced_key()
        await cache.incr(key, DAY, amount=20)  # other processes spent today's budget
        fake.reject(await wx.access_token())
        cache.counts.clear()
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
        assert await wx.forced_refreshes() == 20
    assert (info.value.errcode, info.value.endpoint) == (40001, "cgi-bin/stable_token")
    assert str(info.value) == BUDGET_SPENT
    assert forced_sent(fake) == 0
    assert {amount for _, _, amount in cache.counts} == {0}  # only read, never counted
    # Nor did it take the shared 30 s cooldown: another process may still force tomorrow's.
    assert await cache.claim(f"{STABLE}:force-refresh", 30.0)


async def test_a_count_lost_to_a_race_is_taken_back_in_the_same_day_counter():
    cache = BudgetCache(race=True)
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(token_cache=cache) as wx:
        key = wx._tokens._forced_key()
        fake.reject(await wx.access_token())
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
        assert await wx.forced_refreshes() == 20
    assert str(info.value) == BUDGET_SPENT
    assert forced_sent(fake) == 0
    assert (key, DAY, 1) in cache.counts
    assert (key, DAY, -1) in cache.counts
    assert all(ttl == DAY for _, ttl, _ in cache.counts)


async def test_a_token_providers_client_reads_no_budget_from_the_cache():
    async def provider():
        return "P1"

    cache = BudgetCache()
    async with FakeWeChat().client(token_provider=provider, token_cache=cache) as wx:
        assert await wx.forced_refreshes() == 0
    assert cache.counts == []


@pytest.mark.parametrize(
    ("options", "bound"),
    [
        # 4 attempts of 10 s, plus the backoffs 0.5 + 1 + 2 between them.
        pytest.param({}, 43.5, id="defaults"),
        # 6 attempts of 2 s, plus 1 + 2 + 4 + 8 + 8 (the 8 s cap).
        pytest.param({"timeout": 2.0, "max_retries": 5, "retry_backoff": 1.0}, 35.0, id="capped"),
    ],
)
async def test_the_refresh_lock_is_held_at_most_the_whole_fetch_bound(options, bound):
    locks = []

    class LockCache(wxqr.MemoryTokenCache):
        def lock(self, key, *, timeout):
            locks.append((key, timeout))
            return super().lock(key, timeout=timeout)

    async with FakeWeChat().client(token_cache=LockCache(), **options) as wx:
        await wx.access_token()
        assert wx._tokens.fetch_bound == bound
    assert locks == [(STABLE, bound)]


@pytest.mark.parametrize(
    ("status", "requests"),
    [
        pytest.param(500, 2, id="500-retried"),
        pytest.param(599, 2, id="599-retried"),
        pytest.param(600, 1, id="600-not"),
        pytest.param(499, 1, id="499-not"),
    ],
)
async def test_a_token_fetch_is_retried_after_a_5xx_only(status, requests):
    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", httpx.Response(status, text="busy"))
    async with fake.client(retry_backoff=0) as wx:
        if requests == 2:
            assert await wx.access_token() == fake.issued[0]
        else:
            with pytest.raises(wxqr.HTTPStatusError) as info:
                await wx.access_token()
            assert info.value.status_code == status
    assert len(fake.token_requests) == requests


async def test_a_too_large_token_answer_is_not_retried():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", {"access_token": "T" * 4096, "expires_in": 7200})
    async with fake.client(retry_backoff=0, max_response_bytes=1024) as wx:
        with pytest.raises(wxqr.ResponseTooLargeError) as info:
            await wx.access_token()
    assert (info.value.limit, info.value.endpoint) == (1024, "cgi-bin/stable_token")
    assert "announces" in str(info.value)  # the Content-Length said so before any read
    assert len(fake.token_requests) == 1


@pytest.mark.parametrize(
    ("expires_in", "life"),
    [
        pytest.param(1, 1.0, id="one-second"),
        pytest.param(10**9, 72000.0, id="capped-at-10-lifetimes"),
    ],
)
async def test_a_tokens_life_is_what_wechat_says_within_reason(expires_in, life):
    now = 1_900_000_000.0
    cache = wxqr.MemoryTokenCache(clock=lambda: now)
    fake = FakeWeChat()
    fake.reply(
        "cgi-bin/stable_token", {"access_token": "T-0123456789abc", "expires_in": expires_in}
    )
    async with fake.http_client() as http:
        tokens = manager(http, cache=cache, clock=lambda: now)
        assert await tokens.get() == "T-0123456789abc"
    assert (await cache.get(STABLE)).expires_at == now + life


async def test_a_token_answer_with_zero_expires_in_is_a_decode_error():
    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", {"access_token": "T-0123456789abc", "expires_in": 0})
    async with fake.client(max_retries=0) as wx:
        with pytest.raises(wxqr.ResponseDecodeError) as info:
            await wx.access_token()
    assert str(info.value) == "cgi-bin/stable_token: token answer lacks access_token/expires_in"


async def test_a_classic_token_request_is_a_get_without_a_json_content_type():
    fake = FakeWeChat()
    async with fake.client(stable_token=False) as wx:
        await wx.access_token()
    [request] = fake.token_requests
    assert request.method == "GET"
    assert "content-type" not in request.headers
    assert "content-length" not in request.headers  # no body at all, not an empty one


async def test_a_token_fetch_that_fails_on_the_wire_is_a_transport_error_of_the_endpoint():
    fake = FakeWeChat()

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    fake.reply("cgi-bin/stable_token", refuse)
    async with fake.client(max_retries=0) as wx:
        with pytest.raises(wxqr.TransportError) as info:
            await wx.access_token()
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert str(info.value).startswith("cgi-bin/stable_token: token fetch failed: ")
    assert not isinstance(info.value, wxqr.ResponseDecodeError)


async def test_a_token_answer_that_does_not_decompress_is_a_decode_error_of_the_endpoint():
    fake = FakeWeChat()
    fake.reply(
        "cgi-bin/stable_token",
        httpx.Response(
            200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip at all")
        ),
    )
    async with fake.client(max_retries=0) as wx:
        with pytest.raises(wxqr.ResponseDecodeError) as info:
            await wx.access_token()
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert str(info.value) == "cgi-bin/stable_token: gzip body does not decompress"


async def test_an_account_refusal_fails_fast_for_the_cooldown_then_asks_again():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", error(40013))
    async with fake.client(refusal_cooldown=1.0) as wx:
        with pytest.raises(wxqr.CredentialError) as first:
            await wx.access_token()
        with pytest.raises(wxqr.CredentialError) as again:
            await wx.access_token()  # within the second: failed fast, not asked
        assert len(fake.token_requests) == 1
        # A copy for each caller (its own traceback), saying the same thing.
        assert again.value is not first.value
        assert (again.value.errcode, str(again.value)) == (first.value.errcode, str(first.value))
        await anyio.sleep(1.2)
        with pytest.raises(wxqr.CredentialError):
            await wx.access_token()  # the cooldown is over: WeChat is asked again
        assert len(fake.token_requests) == 2


async def test_without_a_refusal_cooldown_every_call_asks_again():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", error(40013))
    async with fake.client(refusal_cooldown=0) as wx:
        for _ in range(2):
            with pytest.raises(wxqr.CredentialError):
                await wx.access_token()
    assert len(fake.token_requests) == 2


async def test_a_rejected_token_is_no_account_refusal():
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(refusal_cooldown=60.0) as wx:
        fake.reject(await wx.access_token())
        await wx.shorten.fetch(KEY)  # forced refresh: fine
        fake.reject(await wx.access_token())
        with pytest.raises(wxqr.AccessTokenError, match="cooling down"):
            await wx.shorten.fetch(KEY)  # a second forced refresh within 30 s: refused
        requests = len(fake.token_requests)
        # That AccessTokenError started no fail-fast cooldown: the next call asks WeChat.
        assert await wx.access_token() in fake.issued
        assert len(fake.token_requests) == requests + 1


async def test_token_fetch_retries_back_off_by_doubling_from_retry_backoff(monkeypatch):
    spans = []

    def uniform(low, high):
        spans.append((low, high))
        return 0.0

    monkeypatch.setattr("wxqr._tokens.random.uniform", uniform)
    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", *[httpx.Response(503, text="busy")] * 3)
    async with fake.client(retry_backoff=0.75, max_retries=3) as wx:
        assert await wx.access_token() == fake.issued[0]
    assert spans == [(0, 0.75), (0, 1.5), (0, 3.0)]
    assert len(fake.token_requests) == 4


async def test_a_token_fetch_without_an_answer_ends_at_the_fetch_bound():
    fake = FakeWeChat()
    fake.token_delay = 3.0
    async with fake.client(timeout=0.2, max_retries=0) as wx:
        with anyio.fail_after(2.5), pytest.raises(wxqr.TransportError) as info:
            await wx.access_token()  # ends well before the answer would come
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert str(info.value) == "cgi-bin/stable_token: token fetch got no answer within 0.2 s"


@pytest.mark.parametrize("fails", [False, True], ids=["success", "failure"])
async def test_concurrent_callers_share_one_fetch_and_its_outcome(fails):
    fake = FakeWeChat()
    fake.token_delay = 0.1
    if fails:
        fake.reply_always("cgi-bin/stable_token", error(-1))
    outcomes = []

    async def call(wx):
        try:
            outcomes.append(await wx.access_token())
        except wxqr.SystemBusyError as exc:
            outcomes.append(exc)

    async with (
        fake.client(max_retries=0, refusal_cooldown=0) as wx,
        anyio.create_task_group() as tg,
    ):
        for _ in range(3):
            tg.start_soon(call, wx)
    assert len(fake.token_requests) == 1
    if fails:
        assert all(isinstance(o, wxqr.SystemBusyError) for o in outcomes)
        assert len({id(o) for o in outcomes}) == 3  # each its own copy
    else:
        assert outcomes == [fake.issued[0]] * 3


async def test_a_token_another_process_cached_is_masked_and_keeps_its_refresh_time():
    now = time.time()
    cache = CountingCache()
    # Another process stored a token issued inside the refresh margin: used until refresh_at.
    await cache.set(STABLE, wxqr.CachedToken("TOKEN-OTHER-PROCESS-1", now + 200, now + 100))
    fake = FakeWeChat()
    fake.accepted.add("TOKEN-OTHER-PROCESS-1")
    async with fake.client(token_cache=cache) as wx:
        token = await wx.access_token()
        reads = cache.reads
        assert await wx.access_token() == token  # from memory: no cache round-trip
        assert cache.reads == reads
        held = wx._tokens._local.value  # what traceback locals would show
    assert token == "TOKEN-OTHER-PROCESS-1"
    assert repr(held) == "'***SS-1'"
    assert fake.token_requests == []


async def test_retries_that_all_fail_back_off_between_attempts_only(monkeypatch):
    spans = []

    def uniform(low, high):
        spans.append((low, high))
        return 0.0

    monkeypatch.setattr("wxqr._tokens.random.uniform", uniform)
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", httpx.Response(503, text="busy"))
    async with fake.client(retry_backoff=0.75, max_retries=1) as wx:
        with pytest.raises(wxqr.HTTPStatusError):
            await wx.access_token()
    assert spans == [(0, 0.75)]  # no backoff after the last attempt
    assert len(fake.token_requests) == 2


async def test_a_fetch_bound_ending_in_a_backoff_raises_the_last_failure(monkeypatch):
    monkeypatch.setattr("wxqr._tokens.random.uniform", lambda low, high: 5.0)  # a long wait
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", httpx.Response(503, text="busy"))
    async with fake.client(timeout=0.1, max_retries=1, retry_backoff=0.1) as wx:
        assert wx._tokens.fetch_bound == pytest.approx(0.3)
        with anyio.fail_after(3), pytest.raises(wxqr.HTTPStatusError) as info:
            await wx.access_token()  # the bound ends the 5 s backoff
    assert info.value.status_code == 503
    assert len(fake.token_requests) == 1


async def test_warm_refreshes_a_token_that_is_due():
    now = [time.time()]
    fake = FakeWeChat()
    async with fake.http_client() as http:
        tokens = manager(http, clock=lambda: now[0])
        await tokens.warm()
        await tokens.warm()  # still fresh: nothing fetched
        assert len(fake.token_requests) == 1
        now[0] += 7200  # past its refresh time
        await tokens.warm()
    assert len(fake.token_requests) == 2


# -- waiters take the flight's token; an expired refusal is gone for good -------------------------


@pytest.mark.parametrize("stable", [True, False], ids=["stable_token", "classic"])
async def test_with_the_shared_cache_down_concurrent_callers_still_share_one_fetch(stable):
    # In fallback mode (Redis down) the cache neither keeps nor finds a token: a caller that
    # waited for the flight must take the flight's token, not fetch one of its own (with the
    # classic API each fetch would also end the previous token's life).
    fake = FakeWeChat(token_delay=0.05)
    async with (
        fake.client(token_cache=DownCache(), stable_token=stable) as wx,
        anyio.create_task_group() as tg,
    ):
        for _ in range(4):
            tg.start_soon(wx.shorten.fetch, KEY)
    assert len(fake.token_requests) == 1
    assert api_tokens(fake) == [fake.issued[0]] * 4


async def test_callers_waiting_for_a_flight_make_no_cache_round_trip_of_their_own():
    cache = CountingCache()
    fake = FakeWeChat(token_delay=0.05)
    async with fake.client(token_cache=cache) as wx, anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(wx.access_token)
    assert (cache.reads, cache.locks) == (2, 1)  # the leader's: before and under the lock
    assert len(fake.token_requests) == 1


async def test_after_a_refusal_expires_every_later_call_asks_again():
    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", error(40013), error(-1), error(-1))
    async with fake.client(refusal_cooldown=0.05, max_retries=0) as wx:
        with pytest.raises(wxqr.CredentialError):
            await wx.access_token()
        await anyio.sleep(0.1)  # the cooldown is over
        with pytest.raises(wxqr.SystemBusyError):
            await wx.access_token()  # asked again: busy, which is no refusal
        with pytest.raises(wxqr.SystemBusyError):
            await wx.access_token()  # asked again, not failed fast (nor crashed)
        assert await wx.access_token() == fake.issued[0]
    assert len(fake.token_requests) == 4


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("wire", ["aiohttp", "httpx"])
async def test_a_classic_token_request_on_a_real_socket_has_no_body_on_either_wire(
    anyio_backend, wire
):
    # What reaches the server, on loopback: aiohttp would send an empty str body as
    # "Content-Type: text/plain" with "Content-Length: 0" on the GET.
    if wire == "aiohttp":
        pytest.importorskip("aiohttp")
    import asyncio
    import json

    heads = []
    answer = json.dumps({"access_token": "LOOPBACK_TOKEN_1", "expires_in": 7200}).encode()

    async def serve(reader, writer):
        heads.append((await reader.readuntil(b"\r\n\r\n")).decode("latin-1"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(answer), answer)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with (
        server,
        wxqr.Client(
            APPID, SECRET, api_base_url=f"http://127.0.0.1:{port}", stable_token=False, wire=wire
        ) as wx,
    ):
        assert await wx.access_token() == "LOOPBACK_TOKEN_1"
    [head] = heads
    request_line, *fields = head.rstrip("\r\n").split("\r\n")
    assert request_line.startswith("GET /cgi-bin/token?grant_type=client_credential&")
    names = {field.split(":", 1)[0].lower() for field in fields}
    assert not names & {"content-length", "content-type", "transfer-encoding"}
