"""The real wxqr.Client against the sandbox served by uvicorn on a loopback socket.

Every endpoint end to end (images decoded with a real QR decoder), token expiry and rotation
driven by the sandbox's virtual clock, ticket and short-key expiry. Runs on asyncio (wxqr's
aiohttp transport) and trio (httpcore).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import zxingcpp
from PIL import Image

import wxqr
from wxqr.caches import MemoryTokenCache
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, served

pytestmark = pytest.mark.anyio


def decode_qr(image: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(image)).convert("RGBA"))
    assert len(results) == 1, "expected exactly one QR code in the image"
    return str(results[0].text)


def _has_transparency(png: bytes) -> bool:
    picture = Image.open(io.BytesIO(png))
    return "A" in picture.mode or "transparency" in picture.info


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(seed=7)


@pytest.fixture
def base_url(state: SandboxState) -> Iterator[str]:
    with served(state) as url:
        yield url


def client(base_url: str, **options: object) -> wxqr.Client:
    return wxqr.Client(
        DEFAULT_APPID,
        DEFAULT_SECRET,
        api_base_url=base_url,
        mp_base_url=base_url,
        retry_backoff=0.01,
        **options,  # type: ignore[arg-type]
    )


async def test_official_account_qr_codes_end_to_end(base_url, state):
    async with client(base_url) as wx:
        temporary = await wx.qrcode.create_temporary(scene_id=123, expire_seconds=3600)
        by_string = await wx.qrcode.create_temporary(scene_str="order/9?x=*", expire_seconds=60)
        permanent = await wx.qrcode.create_permanent(scene_id=42)
        raw = await wx.qrcode.create(
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "vip"}}}
        )
        assert temporary.expire_seconds == 3600
        assert permanent.expire_seconds is None
        for ticket in (temporary, by_string, permanent, raw):
            image = await wx.qrcode.show(ticket)
            assert wxqr.image_kind(image) == "png"
            assert decode_qr(image) == ticket.url
        # Tickets carry '+', '/' and '=': show_url must encode them for WeChat to find them.
        assert "+" not in wx.qrcode.show_url(temporary).split("?", 1)[1]
    assert state.token_fetches["stable_token"] == 1
    assert state.calls["cgi-bin/qrcode/create"] == 4
    assert state.calls["cgi-bin/showqrcode"] == 4


async def test_short_keys_end_to_end_with_ttl_on_the_virtual_clock(base_url, state):
    async with client(base_url) as wx:
        key = await wx.shorten.gen("日本語 and a long payload " * 20, expire_seconds=100)
        assert len(key) == 15
        assert key.isalnum()
        state.clock.advance(40)
        data = await wx.shorten.fetch(key)
        assert data.long_data == "日本語 and a long payload " * 20
        assert 55 <= data.expire_seconds <= 60
        state.clock.advance(61)
        with pytest.raises(wxqr.InvalidRequestError) as info:
            await wx.shorten.fetch(key)
        assert info.value.errcode == 9410012
        assert info.value.rid is not None


async def test_jump_rules_end_to_end(base_url, state):
    prefix = "https://example.com/p/"
    async with client(base_url) as wx:
        await wx.qrcode_jump.add(
            prefix=prefix,
            path="pages/index/index",
            open_version=3,
            permit_sub_rule=1,
            debug_url=[prefix + "1", prefix + "2"],
        )
        with pytest.raises(wxqr.InvalidRequestError) as info:
            await wx.qrcode_jump.add(
                prefix=prefix, path="pages/index/index", open_version=3, permit_sub_rule=1
            )
        assert info.value.errcode == 85071
        rules = await wx.qrcode_jump.get()
        assert [(r.prefix, r.state) for r in rules.rule_list] == [(prefix, 1)]
        assert rules.rule_list[0].debug_url == (prefix + "1", prefix + "2")
        quota = rules.qrcodejump_pub_quota
        download = await wx.qrcode_jump.download()
        assert download.file_name
        assert download.file_content
        await wx.qrcode_jump.publish(prefix)
        rules = await wx.qrcode_jump.get()
        assert rules.rule_list[0].state == 2
        assert quota is not None
        assert rules.qrcodejump_pub_quota == quota - 1
        await wx.qrcode_jump.delete(prefix)
        assert (await wx.qrcode_jump.get()).rule_list == ()

        service_prefix = "http://weixin.qq.com/q/abc"
        await wx.qrcode_jump.add(prefix=service_prefix, path="pages/a/a", appid="wxmini")
        listed = await wx.qrcode_jump.get(appid="wxmini", get_type=1, prefix_list=[service_prefix])
        assert [(r.prefix, r.path) for r in listed.rule_list] == [(service_prefix, "pages/a/a")]
        await wx.qrcode_jump.delete(service_prefix, appid="wxmini")


async def test_mini_program_codes_end_to_end(base_url, state):
    async with client(base_url) as wx:
        square = await wx.wxacode.create_qrcode(path="pages/index/index?from=c", width=280)
        assert decode_qr(square) == "pages/index/index?from=c"
        code = await wx.wxacode.get(path="pages/index/index?id=7", line_color=(10, 20, 30))
        assert decode_qr(code) == "pages/index/index?id=7"
        unlimited = await wx.wxacode.get_unlimited(scene="a=1&b=2", page="pages/index/index")
        assert decode_qr(unlimited) == "pages/index/index?scene=a=1&b=2"
        transparent = await wx.wxacode.get_unlimited(scene="t", is_hyaline=True, width=1280)
        assert _has_transparency(transparent)
        assert not _has_transparency(unlimited)
        assert Image.open(io.BytesIO(transparent)).width >= 1000
        with pytest.raises(wxqr.InvalidRequestError) as info:
            await wx.wxacode.get_unlimited(scene="x", page="pages/not/released")
        assert info.value.errcode == 41030
        unreleased = await wx.wxacode.get_unlimited(
            scene="x", page="pages/not/released", check_path=False, env_version="develop"
        )
        assert decode_qr(unreleased) == "pages/not/released?scene=x"


async def test_expired_token_is_refreshed_once_and_the_call_retried(base_url, state):
    async with client(base_url) as wx:
        await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
        first = await wx.access_token()
        # WeChat's clock moves past the token's life; the client's own clock has not.
        state.clock.advance(7300)
        ticket = await wx.qrcode.create_temporary(scene_id=2, expire_seconds=60)
        assert ticket.ticket
        assert await wx.access_token() != first
    answers = [r.errcode or 0 for r in state.requests_to("cgi-bin/qrcode/create")]
    assert answers == [0, 42001, 0]
    assert state.token_fetches["stable_token"] == 2


async def test_classic_tokens_rotate_and_the_superseded_one_keeps_five_minutes(base_url, state):
    # Two processes without a shared cache: each classic fetch supersedes the other's token.
    one = client(base_url, stable_token=False, token_cache=MemoryTokenCache())
    two = client(base_url, stable_token=False, token_cache=MemoryTokenCache())
    async with one, two:
        await one.qrcode.create_permanent(scene_id=1)
        await two.qrcode.create_permanent(scene_id=2)  # rotates: one's token now has 300 s
        state.clock.advance(200)
        await one.qrcode.create_permanent(scene_id=3)  # still inside the overlap
        state.clock.advance(101)
        await one.qrcode.create_permanent(scene_id=4)  # 40001, refetch, retried once
    answers = [r.errcode or 0 for r in state.requests_to("cgi-bin/qrcode/create")]
    assert answers == [0, 0, 0, 40001, 0]
    assert state.token_fetches["token"] == 3


async def test_temporary_ticket_expires_on_the_virtual_clock(base_url, state):
    async with client(base_url) as wx:
        ticket = await wx.qrcode.create_temporary(scene_id=5, expire_seconds=60)
        assert decode_qr(await wx.qrcode.show(ticket)) == ticket.url
        state.clock.advance(61)
        with pytest.raises(wxqr.TicketNotFoundError):
            await wx.qrcode.show(ticket)
