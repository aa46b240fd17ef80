"""``wx.openapi`` and ``wxqr.Image`` end to end: the real client, the sandbox on a loopback socket.

A call fails with a rid and ``get_rid(exc.rid)`` returns that very request's record; quotas and
clears move the sandbox's counters; ``Num-Used`` reaches ``wxqr.Image``. Runs on asyncio
(aiohttp transport) and trio (httpcore).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import wxqr
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, served
from wxqr.sandbox._openapi import CALLBACK_IPS

pytestmark = pytest.mark.anyio


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=11)


@pytest.fixture
def base_url(state: SandboxState) -> Iterator[str]:
    with served(state) as url:
        yield url


def client(base_url: str) -> wxqr.Client:
    return wxqr.Client(
        DEFAULT_APPID,
        DEFAULT_SECRET,
        api_base_url=base_url,
        mp_base_url=base_url,
        retry_backoff=0.01,
    )


async def test_an_error_leads_to_its_own_record(base_url, state):
    async with client(base_url) as wx:
        with pytest.raises(wxqr.InvalidRequestError) as info:
            # a page the released Mini Program does not have: only WeChat can know
            await wx.wxacode.get_unlimited(scene="order=9", page="pages/missing/missing")
        exc = info.value
        assert exc.errcode == 41030
        assert exc.rid is not None
        record = await wx.openapi.get_rid(exc.rid)
        token = await wx.access_token()

    assert isinstance(record, wxqr.RidInfo)
    assert json.loads(record.response_body)["errcode"] == 41030
    assert exc.rid in record.response_body
    assert json.loads(record.request_body)["scene"] == "order=9"
    assert record.request_url == f"access_token={token}"  # sensitive, as documented ...
    assert token not in repr(record)  # ... and masked in repr
    assert record.client_ip == "127.0.0.1"
    (failed,) = state.requests_to("wxa/getwxacodeunlimit")
    assert record.invoke_time == int(failed.time)


async def test_quota_counters_and_clears_over_the_socket(base_url, state):
    state.default_account.daily_limits["cgi-bin/qrcode/create"] = 2
    async with client(base_url) as wx:
        for _ in range(2):
            await wx.qrcode.create_temporary(scene_id=5, expire_seconds=60)
        assert await wx.openapi.get_quota("/cgi-bin/qrcode/create") == wxqr.ApiQuota(
            daily_limit=2,
            used=2,
            remain=0,
            rate_limit=wxqr.RateWindow(0, 0),
            component_rate_limit=wxqr.RateWindow(0, 0),
        )
        with pytest.raises(wxqr.QuotaExceededError) as info:
            await wx.qrcode.create_temporary(scene_id=5, expire_seconds=60)
        assert "wx.openapi.clear_quota()" in info.value.meaning

        await wx.openapi.clear_api_quota("/cgi-bin/qrcode/create")
        assert (await wx.openapi.get_quota("/cgi-bin/qrcode/create")).used == 0
        await wx.qrcode.create_temporary(scene_id=5, expire_seconds=60)
        await wx.openapi.clear_quota()
        await wx.openapi.clear_quota_with_secret()

        state.default_account.clear_quota_limit = 2
        with pytest.raises(wxqr.QuotaExceededError) as info:
            await wx.openapi.clear_quota()
        assert info.value.errcode == 48006

        assert await wx.openapi.callback_ips() == list(CALLBACK_IPS)
        check = await wx.openapi.check_callback(action="all", operator="CAP")
        assert check.ping[0].package_loss == "0%"

    month = state.clock.month()
    assert state.default_account.used("clear_quota", month) == 2
    assert state.default_account.used("clear_api_quota", month) == 1
    assert len(state.requests_to("cgi-bin/clear_quota")) == 2  # the refused one: not resent
    (v2,) = state.requests_to("cgi-bin/clear_quota/v2")
    assert v2.query == {}  # the secret travelled in the body only
    assert v2.json == {"appid": DEFAULT_APPID, "appsecret": DEFAULT_SECRET}


async def test_num_used_reaches_the_image(base_url, state):
    async with client(base_url) as wx:
        a = await wx.wxacode.get(path="pages/index/index?id=1")
        c = await wx.wxacode.create_qrcode(path="pages/index/index?id=2")
        b = await wx.wxacode.get_unlimited(scene="id=3")
        ticket = await wx.qrcode.create_temporary(scene_id=9, expire_seconds=60)
        shown = await wx.qrcode.show(ticket)
    assert (a.num_used, c.num_used) == (1, 2)
    assert b.num_used is None
    assert shown.num_used is None
    for image in (a, c, b, shown):
        assert isinstance(image, wxqr.Image)
        assert image.kind == "png"
        assert image.content_type == "image/png"
        assert image.startswith(b"\x89PNG")
    assert state.default_account.wxacode_used == 2
