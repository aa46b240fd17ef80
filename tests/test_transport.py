"""The retry table of ``wxqr/_transport.py``, the concurrency bound and client-side rate limits.

Attempts are counted in the fake's request log: "1 attempt" means WeChat saw the call once.
"""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from mockwechat import PNG, FakeWeChat, error, raises, token_of

import wxqr

pytestmark = pytest.mark.anyio

KEY = "iTqRJFSEqk9RvPk"
PREFIX = "https://www.example.com/qr/"

# (call, path) pairs by idempotency
IDEMPOTENT = [
    pytest.param(lambda wx: wx.shorten.fetch(KEY), "cgi-bin/shorten/fetch", id="shorten.fetch"),
    pytest.param(
        lambda wx: wx.qrcode.create_temporary(scene_id=1, expire_seconds=60),
        "cgi-bin/qrcode/create",
        id="qrcode.create",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.delete(PREFIX),
        "cgi-bin/wxopen/qrcodejumpdelete",
        id="jump.delete",
    ),
    pytest.param(lambda wx: wx.wxacode.get(path="pages/a"), "wxa/getwxacode", id="wxacode.get"),
    pytest.param(lambda wx: wx.qrcode.show("ticket"), "cgi-bin/showqrcode", id="qrcode.show"),
]
NON_IDEMPOTENT = [
    pytest.param(lambda wx: wx.shorten.gen("data"), "cgi-bin/shorten/gen", id="shorten.gen"),
    pytest.param(
        lambda wx: wx.qrcode_jump.publish(PREFIX),
        "cgi-bin/wxopen/qrcodejumppublish",
        id="jump.publish",
    ),
]


def client(fake, **options):
    options.setdefault("retry_backoff", 0)
    options.setdefault("rate_limits", {})
    return fake.client(**options)


# -- system busy -


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param([error(-1)], id="-1-once"),
        pytest.param([error(-1), error(-1)], id="-1-twice"),
        pytest.param([error(886001)], id="886001-once"),
        pytest.param([error(-1), error(886001), error(-1)], id="busy-three-times"),
    ],
)
@pytest.mark.parametrize(("call", "path"), IDEMPOTENT[:4])
async def test_system_busy_is_retried_until_success(call, path, answers):
    fake = FakeWeChat()
    fake.reply(path, *answers)
    async with client(fake, max_retries=3) as wx:
        await call(wx)
    assert len(fake.calls(path)) == len(answers) + 1


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_system_busy_raises_after_max_retries(max_retries):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/shorten/fetch", error(-1))
    async with client(fake, max_retries=max_retries) as wx:
        with pytest.raises(wxqr.SystemBusyError):
            await wx.shorten.fetch(KEY)
    assert len(fake.api_requests) == max_retries + 1


@pytest.mark.parametrize(("call", "path"), NON_IDEMPOTENT)
async def test_system_busy_is_not_retried_for_non_idempotent_calls(call, path):
    fake = FakeWeChat()
    fake.reply(path, error(-1))
    async with client(fake) as wx:
        with pytest.raises(wxqr.SystemBusyError):
            await call(wx)
    assert len(fake.calls(path)) == 1


# -- HTTP 5xx -


@pytest.mark.parametrize(("call", "path"), IDEMPOTENT)
async def test_5xx_is_retried_for_idempotent_calls(call, path):
    fake = FakeWeChat()
    fake.reply(path, httpx.Response(502), httpx.Response(503, text="<html>busy</html>"))
    async with client(fake) as wx:
        await call(wx)
    assert len(fake.calls(path)) == 3


@pytest.mark.parametrize(("call", "path"), NON_IDEMPOTENT)
async def test_5xx_is_not_retried_for_non_idempotent_calls(call, path):
    fake = FakeWeChat()
    fake.reply(path, httpx.Response(502))
    async with client(fake) as wx:
        with pytest.raises(wxqr.HTTPStatusError) as info:
            await call(wx)
    assert info.value.status_code == 502
    assert len(fake.calls(path)) == 1


async def test_5xx_raises_after_max_retries():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/shorten/fetch", httpx.Response(500))
    async with client(fake, max_retries=2) as wx:
        with pytest.raises(wxqr.HTTPStatusError):
            await wx.shorten.fetch(KEY)
    assert len(fake.api_requests) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 429])
async def test_4xx_is_not_retried(status):
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", httpx.Response(status))
    async with client(fake) as wx:
        with pytest.raises(wxqr.HTTPStatusError):
            await wx.shorten.fetch(KEY)
    assert len(fake.api_requests) == 1


# -- network failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ConnectError, id="ConnectError"),
        pytest.param(httpx.ConnectTimeout, id="ConnectTimeout"),
        pytest.param(httpx.PoolTimeout, id="PoolTimeout"),
    ],
)
@pytest.mark.parametrize(("call", "path"), IDEMPOTENT[:2] + NON_IDEMPOTENT)
async def test_failures_before_sending_are_retried_for_every_call(call, path, failure):
    fake = FakeWeChat()
    fake.reply(path, raises(failure))
    async with client(fake) as wx:
        await call(wx)
    assert len(fake.calls(path)) == 2


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ReadTimeout, id="ReadTimeout"),
        pytest.param(httpx.ReadError, id="ReadError"),
        pytest.param(httpx.WriteError, id="WriteError"),
        pytest.param(httpx.RemoteProtocolError, id="RemoteProtocolError"),
    ],
)
@pytest.mark.parametrize(("call", "path"), IDEMPOTENT[:2])
async def test_failures_after_sending_are_retried_for_idempotent_calls(call, path, failure):
    fake = FakeWeChat()
    fake.reply(path, raises(failure))
    async with client(fake) as wx:
        await call(wx)
    assert len(fake.calls(path)) == 2


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ReadTimeout, id="ReadTimeout"),
        pytest.param(httpx.ReadError, id="ReadError"),
        pytest.param(httpx.RemoteProtocolError, id="RemoteProtocolError"),
    ],
)
@pytest.mark.parametrize(("call", "path"), NON_IDEMPOTENT)
async def test_failures_after_sending_are_never_retried_for_non_idempotent_calls(
    call, path, failure
):
    fake = FakeWeChat()
    fake.reply(path, raises(failure))
    async with client(fake, max_retries=5) as wx:
        with pytest.raises(wxqr.TransportError) as info:
            await call(wx)
    assert info.value.endpoint == path
    assert failure.__name__ in str(info.value)
    assert len(fake.calls(path)) == 1


async def test_network_failures_raise_transport_error_after_max_retries():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/shorten/fetch", raises(httpx.ConnectError))
    async with client(fake, max_retries=2) as wx:
        with pytest.raises(wxqr.TransportError):
            await wx.shorten.fetch(KEY)
    assert len(fake.api_requests) == 3


async def test_transport_errors_do_not_carry_the_url_with_the_token():
    fake = FakeWeChat()
    fake.reply_always(
        "cgi-bin/shorten/fetch",
        lambda request: raises(httpx.ConnectError, f"cannot reach {request.url}")(request),
    )
    async with client(fake, max_retries=0) as wx:
        with pytest.raises(wxqr.TransportError) as info:
            await wx.shorten.fetch(KEY)
    token = fake.issued[0]
    assert token not in str(info.value)
    assert token not in repr(info.value)
    assert "access_token=***" in str(info.value)
    assert info.value.__cause__ is None


# -- a failing token fetch: the API request was never sent, so every call may retry ----------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(raises(httpx.ConnectError), id="connect-error"),
        pytest.param(raises(httpx.ReadTimeout), id="read-timeout"),
        pytest.param(error(-1), id="token-endpoint-busy"),
        pytest.param(httpx.Response(502), id="token-endpoint-5xx"),
    ],
)
@pytest.mark.parametrize(("call", "path"), IDEMPOTENT[:1] + NON_IDEMPOTENT)
async def test_a_failed_token_fetch_is_retried_for_every_call(call, path, failure):
    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", failure)
    async with client(fake) as wx:
        await call(wx)
    assert len(fake.token_requests) == 2
    assert len(fake.calls(path)) == 1


async def test_a_token_fetch_failing_every_time_raises_after_max_retries():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", raises(httpx.ConnectError))
    async with client(fake, max_retries=2) as wx:
        with pytest.raises(wxqr.TransportError) as info:
            await wx.shorten.gen("data")
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert len(fake.token_requests) == 3
    assert fake.api_requests == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(error(40125), wxqr.CredentialError, id="40125-wrong-secret"),
        pytest.param(error(40001), wxqr.CredentialError, id="40001-wrong-secret"),
        pytest.param(error(40164), wxqr.CredentialError, id="40164-ip-whitelist"),
    ],
)
async def test_a_credential_error_from_the_token_endpoint_is_not_retried(answer, expected):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", answer)
    async with client(fake, max_retries=3) as wx:
        with pytest.raises(expected):
            await wx.shorten.fetch(KEY)
    assert len(fake.token_requests) == 1
    assert fake.api_requests == []


# -- undecodable answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(PNG[:60], id="truncated-png"),
        pytest.param(
            httpx.Response(
                200, text="<!DOCTYPE html><html>", headers={"content-type": "text/html"}
            ),
            id="html-page",
        ),
    ],
)
@pytest.mark.parametrize(("call", "path"), IDEMPOTENT[3:])
async def test_undecodable_images_are_retried_for_idempotent_image_endpoints(call, path, bad):
    fake = FakeWeChat()
    fake.reply(path, bad)
    async with client(fake) as wx:
        image = await call(wx)
    assert image == PNG
    assert len(fake.calls(path)) == 2


async def test_undecodable_answers_raise_after_max_retries():
    fake = FakeWeChat()
    fake.reply_always("wxa/getwxacode", PNG[:60])
    async with client(fake, max_retries=1) as wx:
        with pytest.raises(wxqr.ResponseDecodeError):
            await wx.wxacode.get(path="pages/a")
    assert len(fake.api_requests) == 2


@pytest.mark.parametrize(("call", "path"), NON_IDEMPOTENT)
async def test_undecodable_answers_are_not_retried_for_non_idempotent_calls(call, path):
    fake = FakeWeChat()
    fake.reply(path, httpx.Response(200, text="<html>", headers={"content-type": "text/html"}))
    async with client(fake) as wx:
        with pytest.raises(wxqr.ResponseDecodeError):
            await call(wx)
    assert len(fake.calls(path)) == 1


# -- errcodes that are never retried -


@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        pytest.param(45009, wxqr.QuotaExceededError, id="45009-daily-quota"),
        pytest.param(45029, wxqr.QuotaExceededError, id="45029-count-limit"),
        pytest.param(48001, wxqr.PermissionDeniedError, id="48001-unauthorized"),
        pytest.param(40053, wxqr.InvalidRequestError, id="40053-bad-scene"),
        pytest.param(40164, wxqr.CredentialError, id="40164-ip-whitelist"),
        pytest.param(89503, wxqr.AdminConfirmationError, id="89503-admin"),
        pytest.param(77777, wxqr.APIError, id="unknown-errcode"),
    ],
)
async def test_other_errcodes_are_raised_at_once(errcode, expected):
    fake = FakeWeChat()
    fake.reply("cgi-bin/qrcode/create", error(errcode))
    async with client(fake, max_retries=5) as wx:
        with pytest.raises(expected) as info:
            await wx.qrcode.create_permanent(scene_id=1)
    assert type(info.value) is expected
    assert info.value.errcode == errcode
    assert info.value.endpoint == "cgi-bin/qrcode/create"
    assert len(fake.api_requests) == 1


# -- rate limits: wait retry_after within a budget --------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "retry_after"),
    [pytest.param(44990, 1.0, id="44990"), pytest.param(45011, 60.0, id="45011")],
)
async def test_rate_limited_without_budget_raises_with_retry_after(errcode, retry_after):
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", error(errcode))
    async with client(fake, max_rate_limit_wait=0) as wx:
        with pytest.raises(wxqr.RateLimitError) as info:
            await wx.qrcode_jump.get()
    assert info.value.retry_after == retry_after
    assert len(fake.api_requests) == 1


async def test_a_wait_longer_than_the_budget_is_not_started():
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", error(44990))
    started = time.monotonic()
    async with client(fake, max_rate_limit_wait=0.5) as wx:
        with pytest.raises(wxqr.RateLimitError):
            await wx.qrcode_jump.get()
    assert time.monotonic() - started < 0.5
    assert len(fake.api_requests) == 1


async def test_rate_limit_waits_count_against_max_retries():
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", error(44990))
    async with client(fake, max_retries=0) as wx:
        with pytest.raises(wxqr.RateLimitError):
            await wx.qrcode_jump.get()
    assert len(fake.api_requests) == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # one real 1 s wait for the whole suite
async def test_rate_limited_call_waits_retry_after_then_succeeds(anyio_backend):
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", error(44990))
    async with client(fake, max_rate_limit_wait=1.5) as wx:
        rules = await wx.qrcode_jump.get()
    first, second = fake.sent_at
    assert second - first >= 0.95  # 44990's retry_after is 1 s
    assert isinstance(rules, wxqr.QrJumpRules)
    assert len(fake.api_requests) == 2


# -- concurrency bound ---------------------------------------------------------------------------


async def test_max_concurrency_bounds_requests_in_flight():
    fake = FakeWeChat(delay=0.001)
    results = []
    async with client(fake, max_concurrency=10) as wx:

        async def one():
            results.append(await wx.shorten.fetch(KEY))

        async with anyio.create_task_group() as tg:
            for _ in range(500):
                tg.start_soon(one)

    assert len(results) == 500
    assert len(fake.api_requests) == 500
    # The bound is never exceeded; how close a loaded machine gets to it is timing, not
    # behaviour (it once saw 9), so only "more than one at a time" is asserted below it.
    assert 2 <= fake.max_in_flight <= 10
    assert len(fake.token_requests) == 1


# -- client-side rate limits ----------------------------------------------------------------------


async def test_rate_limits_space_the_sends():
    fake = FakeWeChat()
    limits = {"qrcodejump": wxqr.RateLimit(5, 0.2)}
    async with client(fake, rate_limits=limits) as wx, anyio.create_task_group() as tg:
        for _ in range(11):
            tg.start_soon(wx.qrcode_jump.delete, PREFIX)

    sent = sorted(fake.sent_at)
    assert len(sent) == 11
    windows = [sent[i + 5] - sent[i] for i in range(len(sent) - 5)]
    # Never 6 sends within 0.2 s (the tolerance absorbs scheduling delay on a loaded machine;
    # without the limiter all 11 would arrive within a few milliseconds).
    assert min(windows) >= 0.2 - 0.05
    assert sent[-1] - sent[0] >= 0.4 - 0.05


async def test_rate_limits_apply_per_bucket():
    fake = FakeWeChat()
    limits = {"qrcodejump": wxqr.RateLimit(1, 5.0)}
    async with client(fake, rate_limits=limits) as wx:
        await wx.qrcode_jump.delete(PREFIX)
        with anyio.fail_after(1):  # other endpoints are not held back by the jump bucket
            await wx.shorten.fetch(KEY)
            await wx.wxacode.get_unlimited(scene="a=1")


async def test_empty_rate_limits_switch_limiting_off():
    fake = FakeWeChat()
    async with fake.client(rate_limits={}) as wx:
        with anyio.fail_after(0.5):
            for _ in range(12):  # the default would be 5 per second
                await wx.qrcode_jump.delete(PREFIX)
    assert len(fake.api_requests) == 12


def test_default_rate_limits_are_the_documented_ones():
    assert dict(wxqr.DEFAULT_RATE_LIMITS) == {
        "getwxacodeunlimit": wxqr.RateLimit(5000, 60.0),
        "qrcodejump": wxqr.RateLimit(5, 1.0),
        "wxalink": wxqr.RateLimit(100, 1.0),
    }


class RecordingLimiter:
    def __init__(self):
        self.acquired = []

    async def acquire(self, key, limit):
        self.acquired.append((key, limit))


async def test_a_custom_rate_limiter_sees_every_limited_call():
    limiter = RecordingLimiter()
    assert isinstance(limiter, wxqr.RateLimiter)
    fake = FakeWeChat()
    async with fake.client(rate_limiter=limiter) as wx:
        await wx.qrcode_jump.get()
        await wx.wxacode.get_unlimited(scene="a=1")
        await wx.shorten.fetch(KEY)  # no documented rate limit
    assert limiter.acquired == [
        ("wx1a2b3c4d5e6f7a8b:qrcodejump", wxqr.RateLimit(5, 1.0)),
        ("wx1a2b3c4d5e6f7a8b:getwxacodeunlimit", wxqr.RateLimit(5000, 60.0)),
    ]


async def test_memory_rate_limiter_holds_back_the_extra_call():
    limiter = wxqr.MemoryRateLimiter()
    limit = wxqr.RateLimit(3, 0.1)
    times = []
    for _ in range(7):
        await limiter.acquire("app:bucket", limit)
        times.append(time.monotonic())
    assert times[2] - times[0] < 0.05  # the first three go at once
    assert all(times[i + 3] - times[i] >= 0.1 - 0.005 for i in range(4))


async def test_memory_rate_limiter_keys_are_independent():
    limiter = wxqr.MemoryRateLimiter()
    limit = wxqr.RateLimit(2, 10.0)
    with anyio.fail_after(0.5):
        for key in ("wxA:qrcodejump", "wxB:qrcodejump", "wxA:getwxacodeunlimit"):
            await limiter.acquire(key, limit)
            await limiter.acquire(key, limit)


async def test_memory_rate_limiter_waits_rather_than_exceeding():
    limiter = wxqr.MemoryRateLimiter()
    limit = wxqr.RateLimit(1, 10.0)
    await limiter.acquire("k", limit)
    with anyio.move_on_after(0.05) as scope:
        await limiter.acquire("k", limit)
    assert scope.cancelled_caught


# -- the token is injected per attempt -------------------------------------------------------------


async def test_each_attempt_carries_the_current_token():
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", error(-1), error(40001))
    async with client(fake) as wx:
        await wx.shorten.fetch(KEY)
    first, second = fake.issued
    assert [token_of(r) for r in fake.api_requests] == [first, first, second]


async def test_calls_waiting_for_rate_budget_do_not_hold_concurrency_slots():
    # Two jump calls wait ~5 s for the jump bucket; a shorten.fetch must not queue behind them.
    fake = FakeWeChat()
    limits = {"qrcodejump": wxqr.RateLimit(1, 5.0)}
    async with client(fake, max_concurrency=2, rate_limits=limits) as wx:
        await wx.access_token()
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(wx.qrcode_jump.delete, PREFIX)
            await anyio.sleep(0.05)
            with anyio.fail_after(1):
                await wx.shorten.fetch(KEY)
            tg.cancel_scope.cancel()
    assert len(fake.calls("cgi-bin/shorten/fetch")) == 1
