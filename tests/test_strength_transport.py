"""Retry, backoff and redaction behaviours that no earlier test pinned down.

Time is patched, not waited for: ``random.uniform`` (the jitter) and ``anyio.sleep`` are
replaced by recorders, so an 8 s cap or a 60 s ``retry_after`` is checked in milliseconds.
Companion of ``tests/test_transport.py``.
"""

from __future__ import annotations

import asyncio
import logging
import random

import anyio
import httpx
import pytest
from mockwechat import APPID, PNG, SECRET, FakeWeChat, body_of, error, raises, token_of

import wxqr
from wxqr._transport import install_log_redaction, redact
from wxqr.caches._base import operation_bound

pytestmark = pytest.mark.anyio

KEY = "iTqRJFSEqk9RvPk"
PREFIX = "https://www.example.com/qr/"


@pytest.fixture
def sleeps(monkeypatch):
    """Record every ``anyio.sleep`` the SDK asks for, and return at once."""
    asked = []
    checkpoint = anyio.lowlevel.checkpoint

    async def fake_sleep(delay):
        asked.append(delay)
        await checkpoint()

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    return asked


@pytest.fixture
def jitter(monkeypatch):
    """Record the ranges the backoff draws from; the draw itself is the range's top."""
    ranges = []

    def fake_uniform(low, high):
        ranges.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", fake_uniform)
    return ranges


# -- backoff: retry_backoff * 2**n, capped at 8 s, full jitter --------------------------------


async def test_backoff_doubles_from_retry_backoff_and_is_capped_at_8_seconds(sleeps, jitter):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/shorten/fetch", error(-1))
    async with fake.client(retry_backoff=1.5, max_retries=5, rate_limits={}) as wx:
        with pytest.raises(wxqr.SystemBusyError):
            await wx.shorten.fetch(KEY)
    assert jitter == [(0, 1.5), (0, 3.0), (0, 6.0), (0, 8.0), (0, 8.0)]
    assert sleeps == [1.5, 3.0, 6.0, 8.0, 8.0]
    assert len(fake.api_requests) == 6


async def test_a_large_retry_backoff_is_still_capped(sleeps, jitter):
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", httpx.Response(502), httpx.Response(503))
    async with fake.client(retry_backoff=30.0, rate_limits={}) as wx:
        await wx.shorten.fetch(KEY)
    assert jitter == [(0, 8.0), (0, 8.0)]
    assert sleeps == [8.0, 8.0]


async def test_each_kind_of_transient_failure_backs_off(sleeps, jitter):
    fake = FakeWeChat()
    fake.reply(
        "wxa/getwxacode",
        raises(httpx.ConnectError),
        httpx.Response(500),
        PNG[:50],
        error(886001),
    )
    async with fake.client(retry_backoff=0.25, max_retries=4, rate_limits={}) as wx:
        assert await wx.wxacode.get(path="pages/a") == PNG
    assert sleeps == [0.25, 0.5, 1.0, 2.0]


# -- 44990 / 45011: wait retry_after within the budget ----------------------------------------


@pytest.mark.parametrize(
    ("errcode", "retry_after"),
    [pytest.param(45011, 60.0, id="45011-next-minute"), pytest.param(44990, 1.0, id="44990")],
)
async def test_a_rate_limited_call_waits_the_errcodes_retry_after(
    sleeps, jitter, errcode, retry_after
):
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", error(errcode))
    async with fake.client(max_rate_limit_wait=60.0, rate_limits={}) as wx:
        rules = await wx.qrcode_jump.get()
    assert isinstance(rules, wxqr.QrJumpRules)
    assert sleeps == [retry_after]  # exactly retry_after: no jittered backoff on top
    assert jitter == []
    assert len(fake.api_requests) == 2


async def test_a_wait_exactly_the_budget_is_taken_but_not_one_more(sleeps):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/wxopen/qrcodejumpget", error(44990))
    async with fake.client(max_rate_limit_wait=2.0, max_retries=10, rate_limits={}) as wx:
        with pytest.raises(wxqr.RateLimitError) as info:
            await wx.qrcode_jump.get()
    assert sleeps == [1.0, 1.0]  # 1 s + 1 s = the whole 2 s budget; a third would exceed it
    assert info.value.retry_after == 1.0
    assert len(fake.api_requests) == 3


async def test_a_45011_wait_longer_than_the_budget_raises_at_once(sleeps):
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", error(45011))
    async with fake.client(max_rate_limit_wait=59.0, rate_limits={}) as wx:
        with pytest.raises(wxqr.RateLimitError) as info:
            await wx.qrcode_jump.get()
    assert info.value.retry_after == 60.0
    assert sleeps == []
    assert len(fake.api_requests) == 1


async def test_rate_limit_waits_use_up_max_retries(sleeps):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/wxopen/qrcodejumpget", error(44990))
    async with fake.client(max_rate_limit_wait=100.0, max_retries=2, rate_limits={}) as wx:
        with pytest.raises(wxqr.RateLimitError):
            await wx.qrcode_jump.get()
    assert sleeps == [1.0, 1.0]
    assert len(fake.api_requests) == 3


# -- the token is taken per attempt: a retry never resends a token refreshed meanwhile ----------


async def test_a_retry_carries_the_token_another_call_refreshed_meanwhile(sleeps):
    fake = FakeWeChat()
    async with fake.client(stable_token=False, rate_limits={}) as wx:
        first = await wx.access_token()

        async def busy_while_another_call_refreshes(request):
            # While this attempt is answered, WeChat rejects T1 and another call refreshes.
            fake.reject(first)
            await wx.qrcode.create_permanent(scene_id=7)  # 40001 -> refresh -> retried with T2
            return error(-1)

        fake.reply("cgi-bin/shorten/fetch", busy_while_another_call_refreshes)
        data = await wx.shorten.fetch(KEY)

    second = fake.issued[1]
    assert data.long_data == "loooooong data"
    assert [token_of(r) for r in fake.calls("cgi-bin/qrcode/create")] == [first, second]
    # the busy call's retry carried T2 at once: no second 40001, no third token
    assert [token_of(r) for r in fake.calls("cgi-bin/shorten/fetch")] == [first, second]
    assert len(fake.token_requests) == 2


async def test_a_rate_limit_retry_carries_the_current_token(sleeps):
    fake = FakeWeChat()
    async with fake.client(stable_token=False, rate_limits={}) as wx:
        first = await wx.access_token()

        async def limited_while_another_call_refreshes(request):
            fake.reject(first)
            await wx.shorten.fetch(KEY)
            return error(44990)

        fake.reply("cgi-bin/wxopen/qrcodejumpget", limited_while_another_call_refreshes)
        await wx.qrcode_jump.get()
    second = fake.issued[1]
    assert [token_of(r) for r in fake.calls("cgi-bin/wxopen/qrcodejumpget")] == [first, second]
    assert len(fake.token_requests) == 2


async def test_the_token_retry_is_one_extra_attempt_beyond_max_retries(sleeps):
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", error(-1), error(40001), error(-1))
    async with fake.client(max_retries=2, rate_limits={}) as wx:
        await wx.shorten.fetch(KEY)
    assert len(fake.api_requests) == 4  # 2 busy retries + 1 token retry + the call itself
    assert len(sleeps) == 2  # the token retry goes at once


async def test_a_second_token_error_after_the_refresh_is_raised(sleeps):
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", error(40014), error(-1), error(42001))
    async with fake.client(max_retries=3, rate_limits={}) as wx:
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.shorten.fetch(KEY)
    assert info.value.errcode == 42001
    assert len(fake.api_requests) == 3


async def test_calls_without_a_token_send_none(sleeps):
    fake = FakeWeChat()
    async with fake.client(rate_limits={}) as wx:
        image = await wx.qrcode.show("gQH47joAAAAA")  # mp.weixin.qq.com, no access_token
    assert image == PNG
    [request] = fake.requests
    assert request.url.host == "mp.weixin.qq.com"
    assert "access_token" not in request.url.params
    assert request.url.params["ticket"] == "gQH47joAAAAA"


# -- redaction: the log filter on every logger that may print a URL ---------------------------


@pytest.fixture
def records(caplog):
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    return caplog


TOKEN = "TOKEN7-q8Zr4Lm2Xw7Kp"


@pytest.mark.parametrize("name", ["httpx", "httpcore.http11", "aiohttp.client", "wxqr"])
def test_a_token_formatted_into_the_message_itself_is_masked(records, name):
    logging.getLogger(name).info(
        f"HTTP Request: POST https://api.weixin.qq.com/x?access_token={TOKEN}&a=1 200"
    )
    [record] = [r for r in records.records if r.name == name]
    assert record.getMessage() == (
        "HTTP Request: POST https://api.weixin.qq.com/x?access_token=***&a=1 200"
    )
    assert TOKEN not in records.text


def test_secrets_in_tuple_args_of_every_kind_are_masked(records):
    url = httpx.URL(f"https://api.weixin.qq.com/cgi-bin/token?appid={APPID}&secret={SECRET}")
    request = httpx.Request("GET", f"https://api.weixin.qq.com/x?access_token={TOKEN}")
    logging.getLogger("httpx").info(
        "%s %s %s %s %d", url, request, f"?access_token={TOKEN}".encode(), "plain", 7
    )
    [record] = [r for r in records.records if r.name == "httpx"]
    message = record.getMessage()
    assert SECRET not in message
    assert TOKEN not in message
    assert "secret=***" in message
    assert message.endswith(" plain 7")


def test_a_message_without_secrets_is_left_alone(records):
    logging.getLogger("httpx").info("done = fine, 100%")
    [record] = [r for r in records.records if r.name == "httpx"]
    assert record.getMessage() == "done = fine, 100%"


def test_installing_twice_adds_the_filter_once():
    install_log_redaction()
    install_log_redaction()
    for name in ("httpx", "httpcore", "wxqr.tokens", "wxqr.caches.redis", "aiohttp.internal"):
        assert len([f for f in logging.getLogger(name).filters if f.name == "wxqr.redact"]) == 1


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        pytest.param("?access_token=abc&x=1", "?access_token=***&x=1", id="token"),
        pytest.param("&SECRET=abc def", "&SECRET=*** def", id="upper"),
        pytest.param("appsecret=abc'", "appsecret=***'", id="appsecret"),
        pytest.param('secret=abc"', 'secret=***"', id="quote"),
        pytest.param("secret=a>b", "secret=***>b", id="angle"),
        pytest.param("no secrets here", "no secrets here", id="none"),
    ],
)
def test_redact_masks_each_secret_parameter(text, masked):
    assert redact(text) == masked


def test_a_record_whose_message_is_not_a_string_is_left_alone(records):
    logging.getLogger("httpx").info(12345)
    logging.getLogger("httpx").info(["access_token=kept-as-is"])
    messages = [r.getMessage() for r in records.records if r.name == "httpx"]
    assert messages == ["12345", "['access_token=kept-as-is']"]


# -- what each attempt sends -------------------------------------------------------------------


async def test_the_json_body_and_timeouts_reach_the_request():
    fake = FakeWeChat()
    async with fake.client(timeout=4.0, rate_limits={}) as wx:
        await wx.shorten.fetch(KEY)
        await wx.qrcode.create_temporary(scene_id=5, expire_seconds=60, timeout=1.5)
    fetch, create = fake.api_requests
    assert body_of(fetch) == {"short_key": KEY}
    assert fetch.extensions["timeout"]["read"] == 4.0
    assert body_of(create)["action_info"] == {"scene": {"scene_id": 5}}
    assert create.extensions["timeout"]["read"] == 1.5


async def test_requests_in_flight_are_counted_for_benchmarks():
    fake = FakeWeChat(delay=0.01)
    async with fake.client(max_concurrency=7, rate_limits={}) as wx:
        assert (wx._transport.in_flight, wx._transport.max_in_flight) == (0, 0)
        await wx.access_token()
        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(wx.shorten.fetch, KEY)
        transport = wx._transport
        assert transport.max_in_flight == 7
        assert transport.in_flight == 0
        fake.reply("cgi-bin/shorten/fetch", raises(httpx.ConnectError))
        await wx.shorten.fetch(KEY)  # a failed send is counted out too
        assert transport.in_flight == 0
        assert transport.max_in_flight == 7


async def test_a_token_error_from_an_endpoint_without_token_is_not_a_token_refresh():
    # showqrcode (mp.weixin.qq.com) takes no access_token: a 40001 there cannot be cured by a
    # new token, so none is fetched and the error is raised as it came.
    fake = FakeWeChat()
    fake.reply("cgi-bin/showqrcode", error(40001))
    async with fake.client(rate_limits={}) as wx:
        with pytest.raises(wxqr.AccessTokenError) as info:
            await wx.qrcode.show("gQH47joAAAAA")
    assert info.value.endpoint == "cgi-bin/showqrcode"
    assert fake.token_requests == []
    assert len(fake.requests) == 1


def test_every_logger_that_may_print_a_url_gets_the_filter():
    names = (
        "httpx",
        "httpcore",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "aiohttp.client",
        "aiohttp.internal",
        "wxqr",
        "wxqr.tokens",
        "wxqr.caches.redis",
    )
    for name in names:  # start from bare loggers: the filter may be there from earlier clients
        log = logging.getLogger(name)
        for f in [f for f in log.filters if f.name == "wxqr.redact"]:
            log.removeFilter(f)
    install_log_redaction()
    for name in names:
        assert [f.name for f in logging.getLogger(name).filters].count("wxqr.redact") == 1, name


async def test_base_urls_with_a_trailing_slash_and_a_path():
    seen = []

    def handler(request):
        seen.append(str(request.url.copy_with(query=None)))
        if request.url.path.endswith("stable_token"):
            return httpx.Response(200, json={"access_token": "T-0123456789abc", "expires_in": 7200})
        if "showqrcode" in request.url.path:
            return httpx.Response(200, content=PNG, headers={"content-type": "image/jpg"})
        return httpx.Response(
            200, json={"long_data": "x", "create_time": 1, "expire_seconds": 2, "errcode": 0}
        )

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        wxqr.Client(
            APPID,
            SECRET,
            http_client=http,
            api_base_url="https://gateway.example/WX/",
            mp_base_url="https://mp.example/X/",
        ) as wx,
    ):
        await wx.shorten.fetch(KEY)
        await wx.qrcode.show("gQH47joAAAAA")
    assert seen == [
        "https://gateway.example/WX/cgi-bin/stable_token",
        "https://gateway.example/WX/cgi-bin/shorten/fetch",
        "https://mp.example/X/cgi-bin/showqrcode",
    ]


# -- what a retry logs: one INFO line per retry, naming the reason -------------------------------


async def test_each_retry_is_logged_with_its_reason_count_and_delay(records, sleeps, jitter):
    fake = FakeWeChat()
    fake.reply(
        "wxa/getwxacode",
        error(-1),
        httpx.Response(502),
        PNG[:50],
        raises(httpx.ConnectError),
    )
    async with fake.client(retry_backoff=0.25, max_retries=4, rate_limits={}) as wx:
        assert await wx.wxacode.get(path="pages/a") == PNG
    retries = [
        r.getMessage() for r in records.records if r.name == "wxqr" and "retry" in r.getMessage()
    ]
    assert retries == [
        "wxa/getwxacode: errcode -1, retry 1/4 in 0.25s",
        "wxa/getwxacode: HTTP 502, retry 2/4 in 0.50s",
        "wxa/getwxacode: undecodable answer, retry 3/4 in 1.00s",
        "wxa/getwxacode: ConnectError: boom (not sent), retry 4/4 in 2.00s",
    ]


def test_mapping_args_are_masked_too(records):
    logging.getLogger("httpx").info(
        "%(method)s %(url)s", {"method": "POST", "url": f"https://x/y?access_token={TOKEN}"}
    )
    [record] = [r for r in records.records if r.name == "httpx"]
    assert record.getMessage() == "POST https://x/y?access_token=***"


# -- one client, one event loop ----------------------------------------------------------------

SECOND_LOOP = (
    "this wxqr.Client is bound to the event loop it was first used in; create one "
    "Client per event loop (e.g. per asyncio.run() or per worker thread)"
)


def test_a_call_from_a_second_asyncio_loop_is_refused_before_sending():
    fake = FakeWeChat()
    wx = fake.client(rate_limits={})
    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(wx.shorten.fetch(KEY))
        with pytest.raises(RuntimeError) as info:
            asyncio.run(wx.shorten.fetch(KEY))
        assert str(info.value) == SECOND_LOOP
        first.run_until_complete(wx.shorten.fetch(KEY))  # still fine in its own loop
    finally:
        first.run_until_complete(wx.aclose())
        first.close()
    assert len(fake.api_requests) == 2


def test_a_call_from_a_second_trio_run_is_refused_before_sending():
    trio = pytest.importorskip("trio")
    fake = FakeWeChat()
    wx = fake.client(rate_limits={})

    async def fetch():
        return await wx.shorten.fetch(KEY)

    trio.run(fetch)
    with pytest.raises(RuntimeError) as info:
        trio.run(fetch)
    assert str(info.value) == SECOND_LOOP
    trio.run(wx.aclose)
    assert len(fake.api_requests) == 1


# -- deadline=: the whole call is bounded ------------------------------------------------------


async def test_a_call_past_its_deadline_raises_transport_error_naming_it():
    fake = FakeWeChat()
    never = anyio.Event()

    async def hang(request):
        await never.wait()

    fake.reply("cgi-bin/shorten/fetch", hang)
    async with fake.client(deadline=0.05, rate_limits={}) as wx:
        await wx.access_token()
        with anyio.fail_after(2), pytest.raises(wxqr.TransportError) as info:
            await wx.shorten.fetch(KEY)
    assert info.value.endpoint == "cgi-bin/shorten/fetch"
    assert str(info.value) == "cgi-bin/shorten/fetch: call deadline of 0.05s exceeded"
    assert len(fake.api_requests) == 1


async def test_a_call_within_its_deadline_sends_its_body_params_and_timeout():
    fake = FakeWeChat()
    async with fake.client(deadline=30.0, timeout=4.0, rate_limits={}) as wx:
        data = await wx.shorten.fetch(KEY)
        await wx.qrcode.create_temporary(scene_id=5, expire_seconds=60, timeout=1.5)
        image = await wx.qrcode.show("gQH47joAAAAA")
    assert data.long_data == "loooooong data"
    assert image == PNG
    [fetch] = fake.calls("cgi-bin/shorten/fetch")
    [create] = fake.calls("cgi-bin/qrcode/create")
    [show] = fake.calls("cgi-bin/showqrcode")
    assert body_of(fetch) == {"short_key": KEY}
    assert fetch.extensions["timeout"]["read"] == 4.0
    assert create.extensions["timeout"]["read"] == 1.5
    assert show.url.params["ticket"] == "gQH47joAAAAA"


# -- what goes on the wire -----------------------------------------------------------------------


async def test_a_get_sends_no_body_and_a_post_sends_json():
    fake = FakeWeChat()
    async with fake.client(rate_limits={}) as wx:
        await wx.qrcode.show("gQH47joAAAAA")
        await wx.shorten.fetch(KEY)
    show, fetch = fake.requests[0], fake.calls("cgi-bin/shorten/fetch")[0]
    assert show.method == "GET"
    assert show.content == b""
    assert "content-type" not in show.headers
    assert fetch.method == "POST"
    assert fetch.headers["content-type"] == "application/json"
    assert fetch.content == b'{"short_key":"iTqRJFSEqk9RvPk"}'


async def test_a_tokenless_call_posts_to_the_bare_url_without_fetching_a_token():
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/clear_quota/v2", {"errcode": 0, "errmsg": "ok"})
    async with fake.client(rate_limits={}) as wx:
        await wx.openapi.clear_quota_with_secret()
        await wx.openapi.clear_quota_with_secret()  # the second through the prepared URL
    assert fake.token_requests == []
    requests = fake.calls("cgi-bin/clear_quota/v2")
    assert len(requests) == 2
    for request in requests:
        assert request.method == "POST"
        assert str(request.url) == "https://api.weixin.qq.com/cgi-bin/clear_quota/v2"
        assert body_of(request) == {"appid": APPID, "appsecret": SECRET}


class Chunks(httpx.AsyncByteStream):
    """A body the wire reads chunk by chunk (as from a socket), not one built in memory."""

    def __init__(self, *chunks):
        self.chunks = chunks

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk


def not_gzip():
    return httpx.Response(
        200, headers={"content-encoding": "gzip"}, stream=Chunks(b"not gzip at all")
    )


async def test_a_body_that_does_not_decompress_is_retried_for_an_idempotent_call(sleeps):
    fake = FakeWeChat()
    fake.reply("wxa/getwxacode", lambda request: not_gzip())
    async with fake.client(rate_limits={}) as wx:
        assert await wx.wxacode.get(path="pages/a") == PNG
    assert len(fake.api_requests) == 2


async def test_a_body_that_does_not_decompress_is_a_decode_error_naming_the_endpoint(sleeps):
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/gen", lambda request: not_gzip())
    async with fake.client(rate_limits={}) as wx:
        with pytest.raises(wxqr.ResponseDecodeError) as info:
            await wx.shorten.gen("data")
    assert type(info.value) is wxqr.ResponseDecodeError
    assert info.value.endpoint == "cgi-bin/shorten/gen"
    assert str(info.value) == "cgi-bin/shorten/gen: gzip body does not decompress"
    assert len(fake.api_requests) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            httpx.Response(200, content=b"x" * 10, headers={"content-length": "5000"}),
            "answer over max_response_bytes=2,000: announces 5,000 bytes",
            id="declared",
        ),
        pytest.param(
            lambda request: httpx.Response(200, stream=Chunks(b"x" * 1500, b"x" * 1500)),
            "answer over max_response_bytes=2,000: streamed past it",
            id="streamed",
        ),
    ],
)
async def test_an_answer_over_max_response_bytes_is_raised_at_once(sleeps, answer, message):
    fake = FakeWeChat()
    fake.reply("wxa/getwxacode", answer)
    async with fake.client(max_response_bytes=2000, max_retries=3, rate_limits={}) as wx:
        with pytest.raises(wxqr.ResponseTooLargeError) as info:
            await wx.wxacode.get(path="pages/a")
    assert info.value.limit == 2000
    assert info.value.endpoint == "wxa/getwxacode"
    assert str(info.value) == f"wxa/getwxacode: {message}"
    assert len(fake.api_requests) == 1


@pytest.mark.parametrize(
    ("status", "attempts"),
    [pytest.param(599, 2, id="599-retried"), pytest.param(600, 1, id="600-raised")],
)
async def test_only_500_to_599_are_retried(sleeps, status, attempts):
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", httpx.Response(status))
    async with fake.client(rate_limits={}) as wx:
        if attempts == 1:
            with pytest.raises(wxqr.HTTPStatusError) as info:
                await wx.shorten.fetch(KEY)
            assert info.value.status_code == status
        else:
            await wx.shorten.fetch(KEY)
    assert len(fake.api_requests) == attempts


# -- a failing token fetch: already retried by the token flight, not again by the call ----------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(error(-1), wxqr.SystemBusyError, id="busy"),
        pytest.param(httpx.Response(502), wxqr.HTTPStatusError, id="5xx"),
        pytest.param(
            httpx.Response(200, text="<html>", headers={"content-type": "text/html"}),
            wxqr.ResponseDecodeError,
            id="html",
        ),
    ],
)
async def test_a_token_fetch_failing_every_time_is_not_retried_again_by_the_call(
    sleeps, answer, expected
):
    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", answer)
    async with fake.client(max_retries=2, rate_limits={}) as wx:
        with pytest.raises(expected) as info:
            await wx.shorten.fetch(KEY)
    assert info.value.endpoint == "cgi-bin/stable_token"
    assert len(fake.token_requests) == 3  # the flight's own 1 + 2 retries, nothing more
    assert fake.api_requests == []


async def test_calls_queued_for_slots_share_one_failing_token_fetch():
    fake = FakeWeChat(token_delay=0.01)
    fake.reply_always("cgi-bin/stable_token", raises(httpx.ConnectError))
    failures = []
    async with fake.client(max_concurrency=2, max_retries=0, rate_limits={}) as wx:

        async def one():
            with pytest.raises(wxqr.TransportError) as info:
                await wx.shorten.fetch(KEY)
            failures.append(info.value.endpoint)

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
    assert failures == ["cgi-bin/stable_token"] * 6
    assert len(fake.token_requests) == 1  # not one per wave of 2 slot holders
    assert fake.api_requests == []


# -- rate buckets: slots held while waiting for budget, the limiter's bound ---------------------


class HoldingLimiter:
    """A rate limiter that admits nobody until ``release`` is set; counts who waits."""

    def __init__(self):
        self.waiting = 0
        self.most_waiting = 0
        self.release = None

    async def acquire(self, key, limit):
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            await self.release.wait()
        finally:
            self.waiting -= 1


@pytest.mark.parametrize(
    ("max_concurrency", "calls", "held"),
    [
        pytest.param(7, 10, 3, id="half-of-7-slots"),
        pytest.param(3, 5, 1, id="at-least-1-of-3-slots"),
        pytest.param(10, 2, 2, id="the-limits-2-calls"),
    ],
)
async def test_a_bucket_waiting_for_budget_holds_min_of_its_calls_and_half_the_slots(
    max_concurrency, calls, held
):
    limiter = HoldingLimiter()
    limiter.release = anyio.Event()
    fake = FakeWeChat()
    limits = {"qrcodejump": wxqr.RateLimit(calls, 1.0)}
    async with fake.client(
        max_concurrency=max_concurrency, rate_limits=limits, rate_limiter=limiter
    ) as wx:
        await wx.access_token()
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(wx.qrcode_jump.delete, PREFIX)
            await anyio.wait_all_tasks_blocked()
            assert limiter.waiting == held
            with anyio.fail_after(1):  # the other slots stay free for other endpoints
                await wx.shorten.fetch(KEY)
            limiter.release.set()
    assert limiter.most_waiting == held
    assert len(fake.calls("cgi-bin/wxopen/qrcodejumpdelete")) == 12


class BoundLimiter:
    """A rate limiter that records the bound a shared (Redis) limiter would apply."""

    def __init__(self):
        self.bounds = []

    async def acquire(self, key, limit):
        self.bounds.append(operation_bound(100.0))


async def test_a_rate_limiters_checks_are_bounded_by_the_calls_timeout():
    limiter = BoundLimiter()
    fake = FakeWeChat()
    async with fake.client(timeout=4.0, rate_limiter=limiter) as wx:
        await wx.qrcode_jump.get()
        await wx.qrcode_jump.get(timeout=1.5)
    assert limiter.bounds == [4.0, 1.5]
    assert operation_bound(100.0) == 100.0  # set for the check only


async def test_retries_queued_for_slots_share_one_failing_token_fetch(monkeypatch):
    # Three calls back off after a busy answer; meanwhile another call's 40001 throws the token
    # away and its refresh fails. The three retries then need a new token: they join one fetch
    # before queueing for the only slot, rather than fetching once per slot holder.
    parked = True
    go = None
    checkpoint = anyio.lowlevel.checkpoint

    async def fake_sleep(delay):
        if parked:
            await go.wait()
        else:
            await checkpoint()

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    go = anyio.Event()
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", error(-1), error(-1), error(-1))
    failures = []
    async with fake.client(max_concurrency=1, max_retries=1, rate_limits={}) as wx:
        first = await wx.access_token()

        async def one():
            with pytest.raises(wxqr.TransportError) as info:
                await wx.shorten.fetch(KEY)
            failures.append(info.value.endpoint)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one)
            await anyio.wait_all_tasks_blocked()  # all three are backing off
            assert len(fake.calls("cgi-bin/shorten/fetch")) == 3
            parked = False
            fake.reply_always("cgi-bin/stable_token", raises(httpx.ConnectError))
            fake.reject(first)
            with pytest.raises(wxqr.TransportError):
                await wx.qrcode.create_permanent(scene_id=1)  # 40001, then the refresh fails
            before = len(fake.token_requests)
            go.set()
    assert failures == ["cgi-bin/stable_token"] * 3
    assert len(fake.token_requests) - before == 2  # one fetch (and its one retry) for all three
    assert len(fake.calls("cgi-bin/shorten/fetch")) == 3
