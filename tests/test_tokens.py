"""Access tokens: the fetch requests, caching, single-flight, cancellation and refresh-on-40001."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from mockwechat import APPID, SECRET, FakeWeChat, body_of, error, raises, token_of

import wxqr

pytestmark = pytest.mark.anyio

KEY = "iTqRJFSEqk9RvPk"


def api_tokens(fake):
    return [token_of(r) for r in fake.api_requests]


def token_bodies(fake):
    return [body_of(r) for r in fake.token_requests]


# -- the fetch requests [§1, §2] ---------------------------------------------------------------


async def test_stable_token_fetch_request():
    fake = FakeWeChat()
    async with fake.client() as wx:
        token = await wx.access_token()

    assert token == fake.issued[0]
    [request] = fake.requests
    assert request.method == "POST"
    assert request.url.host == "api.weixin.qq.com"
    assert request.url.path == "/cgi-bin/stable_token"
    assert request.url.query == b""  # no access_token, no secret in the URL
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}


async def test_classic_token_fetch_request():
    fake = FakeWeChat()
    async with fake.client(stable_token=False) as wx:
        token = await wx.access_token()

    assert token == fake.issued[0]
    [request] = fake.requests
    assert request.method == "GET"
    assert request.url.host == "api.weixin.qq.com"
    assert request.url.path == "/cgi-bin/token"
    assert dict(request.url.params) == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
    }
    assert request.content == b""


async def test_the_token_is_cached_with_its_absolute_expiry():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat(expires_in=7200)
    before = time.time()
    async with fake.client(token_cache=cache) as wx:
        token = await wx.access_token()
        cached = await cache.get(f"{APPID}:stable")
    assert cached is not None
    assert cached.value == token
    assert before + 7200 <= cached.expires_at <= time.time() + 7200


@pytest.mark.parametrize(
    ("answer", "expected", "requests"),
    [
        pytest.param(error(40125), wxqr.CredentialError, 1, id="40125-wrong-secret"),
        pytest.param(error(40164), wxqr.CredentialError, 1, id="40164-ip-whitelist"),
        pytest.param(error(40243), wxqr.CredentialError, 1, id="40243-secret-frozen"),
        pytest.param(error(89503), wxqr.AdminConfirmationError, 1, id="89503-admin-confirmation"),
        pytest.param(error(45009), wxqr.QuotaExceededError, 1, id="45009-token-quota"),
        # Transient: the token flight retries them (max_retries=2), then raises.
        pytest.param(error(-1), wxqr.SystemBusyError, 3, id="busy"),
        pytest.param({"expires_in": 7200}, wxqr.ResponseDecodeError, 3, id="no-access_token"),
        pytest.param({"access_token": "T"}, wxqr.ResponseDecodeError, 3, id="no-expires_in"),
        pytest.param(
            httpx.Response(200, text="<html>busy</html>", headers={"content-type": "text/html"}),
            wxqr.ResponseDecodeError,
            3,
            id="html",
        ),
        pytest.param(raises(httpx.ConnectError), wxqr.TransportError, 3, id="connect-error"),
    ],
)
async def test_failed_fetches_raise_typed_errors(answer, expected, requests):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", answer)
    async with fake.client(max_retries=2, retry_backoff=0) as wx:
        with pytest.raises(expected) as info:
            await wx.access_token()
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert len(fake.token_requests) == requests


async def test_one_transient_fetch_failure_is_retried_by_the_flight():
    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", error(-1))
    async with fake.client(retry_backoff=0) as wx:
        assert await wx.access_token() == fake.issued[0]
    assert len(fake.token_requests) == 2


# -- caching and the refresh margin ---------------------------------------------------------------


async def test_a_token_with_7200_seconds_is_reused():
    fake = FakeWeChat(expires_in=7200)
    async with fake.client() as wx:
        tokens = {await wx.access_token() for _ in range(3)}
        await wx.shorten.fetch(KEY)
        await wx.shorten.fetch(KEY)
    assert tokens == {fake.issued[0]}
    assert len(fake.token_requests) == 1
    assert api_tokens(fake) == [fake.issued[0]] * 2


@pytest.mark.parametrize(
    ("expires_in", "margin"),
    [
        pytest.param(300, 300.0, id="expires_in-equals-margin"),
        pytest.param(120, 300.0, id="expires_in-below-margin"),
        pytest.param(7200, 7199.0, id="margin-7199"),
    ],
)
async def test_a_token_issued_inside_the_refresh_margin_is_used_for_half_its_life(
    expires_in, margin
):
    clock = [1_000_000.0]
    fake = FakeWeChat(expires_in=expires_in)
    async with fake.client(refresh_margin=margin, stable_token=False) as wx:
        wx._tokens._clock = lambda: clock[0]
        first = await wx.access_token()
        clock[0] += expires_in / 2 - 1
        assert await wx.access_token() == first
        assert len(fake.token_requests) == 1
        clock[0] += 2
        second = await wx.access_token()
    assert len(fake.token_requests) == 2
    assert (first, second) == tuple(fake.issued)


async def test_a_token_just_outside_the_margin_is_reused():
    fake = FakeWeChat(expires_in=400)
    async with fake.client(refresh_margin=300.0) as wx:
        await wx.access_token()
        await wx.access_token()
    assert len(fake.token_requests) == 1


async def test_clients_sharing_a_cache_share_the_token():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat()
    async with fake.client(token_cache=cache) as a, fake.client(token_cache=cache) as b:
        assert await a.access_token() == await b.access_token()
    assert len(fake.token_requests) == 1


async def test_fetch_modes_do_not_share_tokens():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat()
    async with (
        fake.client(token_cache=cache) as stable,
        fake.client(token_cache=cache, stable_token=False) as classic,
    ):
        assert await stable.access_token() != await classic.access_token()
    assert [path.url.path for path in fake.token_requests] == [
        "/cgi-bin/stable_token",
        "/cgi-bin/token",
    ]


# -- single-flight --------------------------------------------------------------------------------


async def test_200_concurrent_access_token_calls_share_one_fetch():
    fake = FakeWeChat(token_delay=0.05)
    results = []
    async with fake.client() as wx:

        async def caller():
            results.append(await wx.access_token())

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(caller)

    assert len(fake.token_requests) == 1
    assert results == [fake.issued[0]] * 200


async def test_200_concurrent_api_calls_on_a_cold_cache_share_one_fetch():
    fake = FakeWeChat(token_delay=0.05)
    results = []
    async with fake.client() as wx:

        async def caller():
            results.append(await wx.shorten.fetch(KEY))

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(caller)

    assert len(fake.token_requests) == 1
    assert len(results) == 200
    assert api_tokens(fake) == [fake.issued[0]] * 200


async def until(condition, *, limit: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` holds: no guess of how long a loaded machine takes."""
    with anyio.fail_after(limit):
        while not condition():
            await anyio.sleep(0.002)


async def test_cancelled_callers_leave_the_client_usable():
    fake = FakeWeChat(token_delay=30)  # the fetch stays in flight until everyone gives up
    async with fake.client() as wx:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(wx.access_token)
                await until(lambda: fake.token_requests)
                scope.cancel()
        assert scope.cancelled_caught
        assert len(fake.token_requests) == 1  # the one in flight when everyone gave up
        assert fake.issued == []

        fake.token_delay = 0
        token = await wx.access_token()
        await wx.shorten.fetch(KEY)

    assert token == fake.issued[0]
    assert len(fake.token_requests) == 2
    assert api_tokens(fake) == [token]


async def test_cancelling_the_fetching_caller_lets_a_waiter_fetch():
    fake = FakeWeChat(token_delay=30)  # the leader's fetch never ends by itself
    results = []
    async with fake.client() as wx:

        async def waiter():
            results.append(await wx.access_token())

        async with anyio.create_task_group() as tg:
            leader = anyio.CancelScope()

            async def lead():
                with leader:
                    await wx.access_token()

            tg.start_soon(lead)
            await until(lambda: fake.token_requests)  # the leader's fetch is in flight
            for _ in range(5):
                tg.start_soon(waiter)
            await anyio.sleep(0.02)  # the waiters join it (or, if later, share the next one)
            fake.token_delay = 0  # the next fetch answers at once
            leader.cancel()

    assert leader.cancelled_caught
    assert len(fake.token_requests) == 2  # the cancelled one, then exactly one more
    assert results == [fake.issued[0]] * 5


# -- 40001 / 40014 / 42001: compare-and-delete, refetch, retry once --------------------------------


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_a_rejected_token_is_replaced_and_the_call_retried_once(errcode):
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat()
    async with fake.client(token_cache=cache, retry_backoff=0) as wx:
        old = await wx.access_token()
        fake.reply("cgi-bin/shorten/fetch", error(errcode))
        data = await wx.shorten.fetch(KEY)
        new = await wx.access_token()

    assert data.long_data == "loooooong data"
    assert new != old
    assert fake.issued == [old, new]
    assert api_tokens(fake) == [old, new]  # the retry carried the NEW token
    assert token_bodies(fake)[1] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
    }  # an ordinary fetch: no force_refresh needed
    assert (await cache.get(f"{APPID}:stable")).value == new


async def test_a_token_rejected_by_wechat_is_replaced():
    fake = FakeWeChat()
    async with fake.client() as wx:
        old = await wx.access_token()
        fake.reject(old)
        await wx.wxacode.get(path="pages/index/index")
    assert api_tokens(fake) == [old, fake.issued[1]]


@pytest.mark.parametrize(
    ("stable", "token_fetches"),
    [
        # classic: every fetch issues a new token: initial + one refetch
        pytest.param(False, 2, id="classic"),
        # stable: the refetch answers the same token, so one forced refresh follows
        pytest.param(True, 3, id="stable"),
    ],
)
async def test_persistent_40001_raises_after_one_refresh(stable, token_fetches):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/shorten/fetch", error(40001))
    async with fake.client(stable_token=stable, retry_backoff=0, max_retries=5) as wx:
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
    assert info.value.errcode == 40001
    assert len(fake.api_requests) == 2  # the call and ONE retry, whatever max_retries says
    assert len(fake.token_requests) == token_fetches
    assert api_tokens(fake) == fake.issued


async def test_concurrent_40001s_share_one_refresh():
    fake = FakeWeChat()
    async with fake.client() as wx:
        old = await wx.access_token()
        fake.reject(old)
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(wx.shorten.fetch, KEY)
    assert len(fake.token_requests) == 2  # compare-and-delete: one refresh for 20 failures
    assert api_tokens(fake).count(old) == 20
    assert api_tokens(fake).count(fake.issued[1]) == 20


async def test_a_stale_failure_does_not_delete_a_newer_token():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat()
    async with fake.client(token_cache=cache) as wx:
        await wx.access_token()
        # Another process already replaced the token in the shared cache.
        await cache.set(f"{APPID}:stable", wxqr.CachedToken("NEWER", time.time() + 7200))
        assert not await cache.delete(f"{APPID}:stable", if_value=fake.issued[0])
        assert (await cache.get(f"{APPID}:stable")).value == "NEWER"


async def test_stable_mode_returning_the_rejected_token_forces_one_refresh():
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client() as wx:
        old = await wx.access_token()
        fake.reject(old)
        await wx.shorten.fetch(KEY)

    new = fake.issued[1]
    assert api_tokens(fake) == [old, new]
    assert [body.get("force_refresh") for body in token_bodies(fake)] == [None, None, True]
    assert token_bodies(fake)[2] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": True,
    }


async def test_a_second_forced_refresh_within_30_seconds_is_refused():
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client() as wx:
        fake.reject(await wx.access_token())
        await wx.shorten.fetch(KEY)  # forced refresh no. 1
        fake.reject(fake.issued[1])
        with pytest.raises(wxqr.AccessTokenError, match="cooling down"):
            await wx.shorten.fetch(KEY)

    forced = [body for body in token_bodies(fake) if body.get("force_refresh")]
    assert len(forced) == 1
    assert len(fake.api_requests) == 3


async def test_the_forced_refresh_cooldown_is_shared_through_the_cache():
    cache = wxqr.MemoryTokenCache()
    fake = FakeWeChat(stable_repeats=True)
    async with fake.client(token_cache=cache) as first:
        fake.reject(await first.access_token())
        await first.shorten.fetch(KEY)  # forces a refresh, claims the cooldown in the cache

    fake.reject(fake.issued[1])
    async with fake.client(token_cache=cache) as second:
        with pytest.raises(wxqr.AccessTokenError):
            await second.shorten.fetch(KEY)
    async with fake.client() as unrelated:  # its own cache: its own cooldown
        await unrelated.shorten.fetch(KEY)

    assert sum(1 for body in token_bodies(fake) if body.get("force_refresh")) == 2


async def test_classic_mode_never_forces_a_refresh():
    fake = FakeWeChat()
    fake.reply("cgi-bin/token", lambda request: {"access_token": "SAME", "expires_in": 7200})
    fake.reply("cgi-bin/token", lambda request: {"access_token": "SAME", "expires_in": 7200})
    fake.check_tokens = False
    fake.reply("cgi-bin/shorten/fetch", error(40001))
    async with fake.client(stable_token=False) as wx:
        with pytest.raises(wxqr.AccessTokenError):
            await wx.shorten.fetch(KEY)
    assert len(fake.token_requests) == 2
    assert len(fake.api_requests) == 1


# -- token_provider ----------------------------------------------------------------------------


async def test_a_token_provider_replaces_fetching():
    calls = []

    async def provider():
        calls.append(1)
        return "PROVIDED-TOKEN-1"

    fake = FakeWeChat()
    fake.accepted.add("PROVIDED-TOKEN-1")
    async with fake.client(token_provider=provider) as wx:
        assert await wx.access_token() == "PROVIDED-TOKEN-1"
        await wx.shorten.fetch(KEY)
    assert fake.token_requests == []
    assert api_tokens(fake) == ["PROVIDED-TOKEN-1"]


async def test_a_provider_returning_the_rejected_token_raises():
    async def provider():
        return "PROVIDED-TOKEN-1"

    fake = FakeWeChat()  # never accepts the provided token: every call answers 40001
    async with fake.client(token_provider=provider) as wx:
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
    assert info.value.endpoint == "token_provider"
    assert len(fake.api_requests) == 1
    assert fake.token_requests == []


async def test_a_provider_with_a_new_token_gets_one_retry():
    tokens = iter(["P1", "P2", "P2", "P2"])

    async def provider():
        return next(tokens)

    fake = FakeWeChat()
    fake.accepted.add("P2")
    async with fake.client(token_provider=provider) as wx:
        await wx.shorten.fetch(KEY)
    assert api_tokens(fake) == ["P1", "P2"]


@pytest.mark.parametrize("value", [pytest.param("", id="empty"), pytest.param(None, id="none")])
async def test_a_provider_returning_nothing_raises(value):
    async def provider():
        return value

    fake = FakeWeChat()
    async with fake.client(token_provider=provider) as wx:
        with pytest.raises(wxqr.AccessTokenError):
            await wx.access_token()
    assert fake.requests == []


async def test_waiters_share_a_fetch_even_when_the_token_is_short_lived():
    # A token answered with expires_in <= refresh_margin (stable_token near its rotation, or a
    # large refresh_margin) is still valid: callers queued behind its fetch should use it rather
    # than each fetching again, one after the other.
    fake = FakeWeChat(expires_in=200, token_delay=0.01)
    results = []
    async with fake.client(refresh_margin=300.0) as wx:

        async def caller():
            results.append(await wx.access_token())

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(caller)
    assert len(fake.token_requests) == 1
    assert len(results) == 20
