"""``wxqr.Client``: lifecycle, ownership of the HTTP client, and keeping secrets out of sight."""

from __future__ import annotations

import logging

import httpx
import pytest
from mockwechat import APPID, SECRET, FakeWeChat, error, raises

import wxqr

pytestmark = pytest.mark.anyio

KEY = "iTqRJFSEqk9RvPk"


# -- lifecycle ------------------------------------------------------------------------------------


async def test_async_context_manager_opens_and_closes():
    fake = FakeWeChat()
    wx = fake.client()
    assert not wx.is_closed
    async with wx as entered:
        assert entered is wx
        assert isinstance(await wx.access_token(), str)
    assert wx.is_closed


async def test_aclose_is_idempotent():
    fake = FakeWeChat()
    wx = fake.client()
    await wx.access_token()
    await wx.aclose()
    await wx.aclose()
    assert wx.is_closed


async def test_a_borrowed_http_client_is_never_closed():
    fake = FakeWeChat()
    http = fake.http_client()
    async with fake.client(http_client=http) as wx:
        await wx.shorten.fetch(KEY)
    await wx.aclose()
    assert http.is_closed is False
    response = await http.post("https://api.weixin.qq.com/cgi-bin/stable_token", json={})
    assert response.status_code == 200  # still usable by its owner
    await http.aclose()


async def test_many_clients_can_share_one_http_client():
    fake = FakeWeChat()
    http = fake.http_client()
    async with fake.client(http_client=http) as a, fake.client(http_client=http, appid="wxother"):
        await a.shorten.fetch(KEY)
    async with fake.client(http_client=http) as b:  # the first ones' close left it open
        await b.shorten.fetch(KEY)
    assert not http.is_closed
    await http.aclose()


@pytest.fixture
def created_transports(monkeypatch):
    """Make the httpx transport wxqr creates for itself (``wire="httpx"``) answer from a
    FakeWeChat, and record it."""
    fake = FakeWeChat()
    created = []

    class Recording(httpx.MockTransport):
        def __init__(self, **kwargs):
            super().__init__(fake)
            self.closed = False
            created.append(self)

        async def aclose(self):
            self.closed = True

    monkeypatch.setattr(httpx, "AsyncHTTPTransport", Recording)
    return fake, created


async def test_an_owned_wire_is_created_once_and_closed(created_transports):
    fake, created = created_transports
    async with wxqr.Client(APPID, SECRET, wire="httpx") as wx:
        assert created == []  # created lazily, on first use
        for _ in range(3):
            await wx.shorten.fetch(KEY)
        await wx.access_token()
    assert len(created) == 1  # one connection pool for every call
    assert created[0].closed
    assert len(fake.api_requests) == 3


async def test_a_client_closed_before_use_creates_nothing(created_transports):
    _, created = created_transports
    wx = wxqr.Client(APPID, SECRET, wire="httpx")
    await wx.aclose()
    assert created == []


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda wx: wx.access_token(), id="access_token"),
        pytest.param(lambda wx: wx.shorten.fetch(KEY), id="api-call-with-warm-token"),
        pytest.param(lambda wx: wx.qrcode.show("ticket"), id="showqrcode"),
    ],
)
async def test_calls_after_close_raise(call):
    fake = FakeWeChat()
    async with fake.client() as wx:
        await wx.access_token()  # warm: the failure must not depend on a fetch
    sent = len(fake.requests)
    with pytest.raises(RuntimeError, match="closed"):
        await call(wx)
    assert len(fake.requests) == sent


async def test_a_closed_client_cannot_be_reopened():
    fake = FakeWeChat()
    wx = fake.client()
    await wx.aclose()
    with pytest.raises(RuntimeError):
        async with wx:
            pass


async def test_aclose_closes_the_token_cache_once():
    class Cache(wxqr.MemoryTokenCache):
        closed = 0

        async def aclose(self):
            Cache.closed += 1

    fake = FakeWeChat()
    wx = fake.client(token_cache=Cache())
    await wx.access_token()
    await wx.aclose()
    await wx.aclose()
    assert Cache.closed == 1


def test_resources_are_created_once():
    wx = wxqr.Client(APPID, SECRET)
    assert wx.qrcode is wx.qrcode
    assert wx.shorten is wx.shorten
    assert wx.qrcode_jump is wx.qrcode_jump
    assert wx.wxacode is wx.wxacode


async def test_repr_names_the_account_but_no_secret_or_token():
    fake = FakeWeChat()
    async with fake.client() as wx:
        token = await wx.access_token()
        text = repr(wx)
    assert APPID in text
    assert SECRET not in text
    assert token not in text
    assert "closed" in repr(wx)


# -- secrets never leak: logs, exceptions, reprs -


@pytest.mark.parametrize(
    "stable", [pytest.param(True, id="stable_token"), pytest.param(False, id="classic-token")]
)
async def test_secrets_and_tokens_never_appear_in_logs_errors_or_reprs(caplog, stable):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="wxqr")
    fake = FakeWeChat(stable_repeats=stable)
    fake.reply("cgi-bin/shorten/fetch", httpx.Response(502))  # a logged retry
    errors = []
    async with fake.client(stable_token=stable, retry_backoff=0, max_retries=1) as wx:
        await wx.shorten.fetch(KEY)  # token fetch + retried call
        await wx.wxacode.get(path="pages/index/index")
        await wx.qrcode.show("gQH47joAAAAA")
        fake.reject(fake.issued[0])
        await wx.shorten.fetch(KEY)  # 40001 -> refresh (forced in stable mode) -> retry
        fake.reply("wxa/getwxacode", error(45009))
        fake.reply_always(
            "cgi-bin/shorten/gen",
            lambda request: raises(httpx.ReadTimeout, f"timed out: {request.url}")(request),
        )
        fake.reply("cgi-bin/qrcode/create", error(40001), error(40001))
        for failing in (
            wx.wxacode.get(path="pages/index/index"),
            wx.shorten.gen("data"),
            wx.qrcode.create_permanent(scene_id=1),
        ):
            try:
                await failing
            except wxqr.WxqrError as exc:
                errors.append(exc)
        client_repr = repr(wx)
        cache_repr = repr(wx._token_cache)

    tokens = list(fake.issued)
    assert len(tokens) >= 2  # the first one, and the one that replaced it after 40001
    assert [type(e) for e in errors] == [
        wxqr.QuotaExceededError,
        wxqr.TransportError,
        wxqr.AccessTokenError,
    ]
    messages = [record.getMessage() for record in caplog.records]
    assert any("access_token=***" in m for m in messages)  # httpx did log the URLs, masked
    if not stable:
        assert any("secret=***" in m for m in messages)
    texts = [*messages, *map(str, errors), *map(repr, errors), client_repr, cache_repr]
    for text in texts:
        assert SECRET not in text
        for token in tokens:
            assert token not in text


async def test_a_failed_classic_token_fetch_does_not_show_the_secret():
    fake = FakeWeChat()
    fake.reply_always(
        "cgi-bin/token",
        lambda request: raises(httpx.ConnectError, f"cannot connect: {request.url}")(request),
    )
    async with fake.client(stable_token=False, retry_backoff=0) as wx:
        with pytest.raises(wxqr.TransportError) as info:
            await wx.access_token()
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None  # the httpx error (with the URL) is not kept


def test_cached_token_repr_masks_the_token():
    token = wxqr.CachedToken("TOKEN1-q8Zr4Lm2Xw7Kp", 1e9)
    assert "TOKEN1-q8Zr4Lm2Xw7Kp" not in repr(token)


def test_log_redaction_keeps_records_with_mapping_args_intact(caplog):
    # logging supports ``logger.info("%(url)s", {"url": ...})``; the redacting filter on the
    # httpx logger must neither break such a record nor let its token through.
    wxqr.Client(APPID, SECRET)  # installs the filter
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info(
        "request to %(url)s", {"url": "https://api.weixin.qq.com/x?access_token=TOKEN-SECRET-1"}
    )
    [record] = [r for r in caplog.records if r.name == "httpx"]
    assert record.getMessage() == "request to https://api.weixin.qq.com/x?access_token=***"
