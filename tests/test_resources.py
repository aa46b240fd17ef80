"""Every endpoint's exact request (host, method, path, query, JSON body) and its result.

The expected bodies are written out in full: a renamed field (``long_url`` for ``long_data``), a
missing default or an extra key fails here.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from mockwechat import APPID, PNG, SECRET, FakeWeChat, body_of, fixture, make_png

import wxqr

API = "api.weixin.qq.com"
MP = "mp.weixin.qq.com"
TICKET = fixture("qrcode_create_temporary")["ticket"]  # ends in "==": needs URL-encoding
PREFIX = "https://www.example.com/qr/"
MP_APPID = "wxminiprogram00001"

TEMP_TICKET = wxqr.QrTicket(
    ticket=TICKET, url="http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI", expire_seconds=60
)
PERM_TICKET = wxqr.QrTicket(ticket=TICKET, url="http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI")
DEFAULT_STYLE = {"width": 430, "auto_color": False, "is_hyaline": False, "env_version": "release"}

ENDPOINTS = [
    # -- Official Account QR codes [§3] -----------------------------------------------------------
    pytest.param(
        lambda wx: wx.qrcode.create_temporary(scene_id=123, expire_seconds=604800),
        "POST",
        "cgi-bin/qrcode/create",
        {
            "expire_seconds": 604800,
            "action_name": "QR_SCENE",
            "action_info": {"scene": {"scene_id": 123}},
        },
        TEMP_TICKET,
        id="qrcode.create_temporary-scene_id",
    ),
    pytest.param(
        lambda wx: wx.qrcode.create_temporary(scene_str="order-9", expire_seconds=3600),
        "POST",
        "cgi-bin/qrcode/create",
        {
            "expire_seconds": 3600,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": "order-9"}},
        },
        TEMP_TICKET,
        id="qrcode.create_temporary-scene_str",
    ),
    pytest.param(
        lambda wx: wx.qrcode.create_permanent(scene_id=42),
        "POST",
        "cgi-bin/qrcode/create",
        {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 42}}},
        PERM_TICKET,
        id="qrcode.create_permanent-scene_id",
    ),
    pytest.param(
        lambda wx: wx.qrcode.create_permanent(scene_str="shop-1"),
        "POST",
        "cgi-bin/qrcode/create",
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "shop-1"}}},
        PERM_TICKET,
        id="qrcode.create_permanent-scene_str",
    ),
    pytest.param(
        lambda wx: wx.qrcode.create(
            {
                "action_name": "QR_STR_SCENE",
                "expire_seconds": 60,
                "action_info": {"scene": {"scene_str": "raw"}},
            }
        ),
        "POST",
        "cgi-bin/qrcode/create",
        {
            "expire_seconds": 60,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": "raw"}},
        },
        TEMP_TICKET,
        id="qrcode.create-raw-payload",
    ),
    # -- shorten [§4] ----------------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.shorten.gen("loooooong data"),
        "POST",
        "cgi-bin/shorten/gen",
        {"long_data": "loooooong data", "expire_seconds": 2592000},
        "iTqRJFSEqk9RvPk",
        id="shorten.gen-default-expiry",
    ),
    pytest.param(
        lambda wx: wx.shorten.gen("长数据", expire_seconds=86400),
        "POST",
        "cgi-bin/shorten/gen",
        {"long_data": "长数据", "expire_seconds": 86400},
        "iTqRJFSEqk9RvPk",
        id="shorten.gen-expiry",
    ),
    pytest.param(
        lambda wx: wx.shorten.fetch("iTqRJFSEqk9RvPk"),
        "POST",
        "cgi-bin/shorten/fetch",
        {"short_key": "iTqRJFSEqk9RvPk"},
        wxqr.ShortenData(long_data="loooooong data", create_time=1611047541, expire_seconds=86300),
        id="shorten.fetch",
    ),
    # -- jump rules [§5] -
    pytest.param(
        lambda wx: wx.qrcode_jump.add(
            prefix=PREFIX,
            path="pages/index/index",
            open_version=3,
            permit_sub_rule=1,
            debug_url=[PREFIX + "a?x=1"],
        ),
        "POST",
        "cgi-bin/wxopen/qrcodejumpadd",
        {
            "prefix": PREFIX,
            "path": "pages/index/index",
            "open_version": 3,
            "permit_sub_rule": 1,
            "debug_url": [PREFIX + "a?x=1"],
            "is_edit": 0,
        },
        None,
        id="qrcode_jump.add-ordinary",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.add(
            prefix=PREFIX, path="pages/a", open_version=1, permit_sub_rule=2, is_edit=True
        ),
        "POST",
        "cgi-bin/wxopen/qrcodejumpadd",
        {
            "prefix": PREFIX,
            "path": "pages/a",
            "open_version": 1,
            "permit_sub_rule": 2,
            "debug_url": [],
            "is_edit": 1,
        },
        None,
        id="qrcode_jump.add-ordinary-is_edit",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.add(
            prefix="http://weixin.qq.com/q/abc", path="pages/index/index", appid=MP_APPID
        ),
        "POST",
        "cgi-bin/wxopen/qrcodejumpadd",
        {
            "prefix": "http://weixin.qq.com/q/abc",
            "path": "pages/index/index",
            "appid": MP_APPID,
            "is_edit": 0,
        },
        None,
        id="qrcode_jump.add-service-account",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.get(),
        "POST",
        "cgi-bin/wxopen/qrcodejumpget",
        {},
        wxqr.QrJumpRules(
            rule_list=(
                wxqr.QrJumpRule(
                    prefix="https://www.example.com/qrcodejump/",
                    path="pages/index/index",
                    state=1,
                    permit_sub_rule=1,
                    open_version=1,
                    debug_url=("https://www.example.com/qrcodejump/a?x=1",),
                ),
            ),
            qrcodejump_open=1,
            qrcodejump_pub_quota=100,
            list_size=1,
        ),
        id="qrcode_jump.get-ordinary-empty-body",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.get(appid=MP_APPID),
        "POST",
        "cgi-bin/wxopen/qrcodejumpget",
        {"appid": MP_APPID, "get_type": 0},
        None,
        id="qrcode_jump.get-service-type-0",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.get(appid=MP_APPID, get_type=1, prefix_list=[PREFIX]),
        "POST",
        "cgi-bin/wxopen/qrcodejumpget",
        {"appid": MP_APPID, "get_type": 1, "prefix_list": [PREFIX]},
        None,
        id="qrcode_jump.get-service-type-1",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.get(appid=MP_APPID, get_type=2, page_num=3, page_size=50),
        "POST",
        "cgi-bin/wxopen/qrcodejumpget",
        {"appid": MP_APPID, "get_type": 2, "page_num": 3, "page_size": 50},
        None,
        id="qrcode_jump.get-service-type-2",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.delete(PREFIX),
        "POST",
        "cgi-bin/wxopen/qrcodejumpdelete",
        {"prefix": PREFIX},
        None,
        id="qrcode_jump.delete",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.delete("http://weixin.qq.com/q/abc", appid=MP_APPID),
        "POST",
        "cgi-bin/wxopen/qrcodejumpdelete",
        {"prefix": "http://weixin.qq.com/q/abc", "appid": MP_APPID},
        None,
        id="qrcode_jump.delete-service-account",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.publish(PREFIX),
        "POST",
        "cgi-bin/wxopen/qrcodejumppublish",
        {"prefix": PREFIX},
        None,
        id="qrcode_jump.publish",
    ),
    pytest.param(
        lambda wx: wx.qrcode_jump.download(),
        "POST",
        "cgi-bin/wxopen/qrcodejumpdownload",
        {},
        wxqr.QrJumpFile(file_name="xxx", file_content="xxxxxx"),
        id="qrcode_jump.download",
    ),
    # -- Mini Program codes [§6] ------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.wxacode.create_qrcode(path="pages/index/index?x=1"),
        "POST",
        "cgi-bin/wxaapp/createwxaqrcode",
        {"path": "pages/index/index?x=1", "width": 430},
        PNG,
        id="wxacode.create_qrcode",
    ),
    pytest.param(
        lambda wx: wx.wxacode.get(path="pages/index/index?x=1"),
        "POST",
        "wxa/getwxacode",
        {"path": "pages/index/index?x=1", **DEFAULT_STYLE},
        PNG,
        id="wxacode.get-defaults",
    ),
    pytest.param(
        lambda wx: wx.wxacode.get(
            path="pages/a",
            width=1280,
            line_color=(12, 34, 56),
            is_hyaline=True,
            env_version="trial",
        ),
        "POST",
        "wxa/getwxacode",
        {
            "path": "pages/a",
            "width": 1280,
            "auto_color": False,
            "line_color": {"r": 12, "g": 34, "b": 56},
            "is_hyaline": True,
            "env_version": "trial",
        },
        PNG,
        id="wxacode.get-styled",
    ),
    pytest.param(
        lambda wx: wx.wxacode.get_unlimited(scene="a=1"),
        "POST",
        "wxa/getwxacodeunlimit",
        {"scene": "a=1", "check_path": True, **DEFAULT_STYLE},
        PNG,
        id="wxacode.get_unlimited-defaults",
    ),
    pytest.param(
        lambda wx: wx.wxacode.get_unlimited(
            scene="id=7&k=v",
            page="pages/detail/detail",
            check_path=False,
            env_version="develop",
            width=280,
            line_color={"r": 255, "g": 0, "b": 1},
        ),
        "POST",
        "wxa/getwxacodeunlimit",
        {
            "scene": "id=7&k=v",
            "page": "pages/detail/detail",
            "check_path": False,
            "width": 280,
            "auto_color": False,
            "line_color": {"r": 255, "g": 0, "b": 1},
            "is_hyaline": False,
            "env_version": "develop",
        },
        PNG,
        id="wxacode.get_unlimited-everything",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("call", "method", "path", "body", "result"), ENDPOINTS)
async def test_endpoint_request_and_result(call, method, path, body, result):
    fake = FakeWeChat()
    if path == "cgi-bin/qrcode/create" and "expire_seconds" not in body:
        fake.reply(path, fixture("qrcode_create_permanent"))
    if body.get("appid") and path.endswith("qrcodejumpget"):
        fake.reply(path, fixture("qrcodejump_get_service"))
    async with fake.client() as wx:
        answer = await call(wx)
        token = await wx.access_token()

    [request] = fake.api_requests
    assert request.method == method
    assert request.url.scheme == "https"
    assert request.url.host == API
    assert request.url.path == f"/{path}"
    assert dict(request.url.params) == {"access_token": token}
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == body
    if result is not None:
        assert answer == result
    elif path.endswith("qrcodejumpget"):
        assert isinstance(answer, wxqr.QrJumpRules)
    else:
        assert answer is None


@pytest.mark.anyio
async def test_service_account_rules_are_structured():
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", fixture("qrcodejump_get_service"))
    async with fake.client() as wx:
        rules = await wx.qrcode_jump.get(appid=MP_APPID, get_type=0)
    assert rules == wxqr.QrJumpRules(
        rule_list=(
            wxqr.QrJumpRule(
                prefix="http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI",
                path="pages/index/index",
                state=2,
            ),
        ),
        list_size=1,
        total_count=1,
    )


# -- showqrcode: another host, no token, URL-encoded ticket [§3.2] --------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "ticket",
    [
        pytest.param(TICKET, id="str"),
        pytest.param(TEMP_TICKET, id="QrTicket"),
        pytest.param("a+b/c==", id="plus-slash-equals"),
    ],
)
async def test_show_fetches_the_image_without_a_token(ticket):
    png = make_png("a real QR image")
    fake = FakeWeChat()
    fake.reply(
        "cgi-bin/showqrcode",
        httpx.Response(200, content=png, headers={"content-type": "image/jpg"}),
    )
    async with fake.client() as wx:
        image = await wx.qrcode.show(ticket)

    assert image == png
    assert fake.token_requests == []  # no token needed, none fetched
    [request] = fake.requests
    value = ticket.ticket if isinstance(ticket, wxqr.QrTicket) else ticket
    assert request.method == "GET"
    assert request.url.host == MP
    assert request.url.path == "/cgi-bin/showqrcode"
    assert dict(request.url.params) == {"ticket": value}  # '+' survived as '+', not ' '
    assert b"+" not in request.url.query  # a literal '+' would decode to a space
    assert request.content == b""


@pytest.mark.parametrize(
    ("ticket", "query"),
    [
        pytest.param("a+b/c==", "a%2Bb%2Fc%3D%3D", id="plus-slash-equals"),
        pytest.param(TICKET, quote(TICKET, safe=""), id="doc-ticket"),
    ],
)
def test_show_url_encodes_the_ticket(ticket, query):
    wx = wxqr.Client(APPID, SECRET)
    assert (
        wx.qrcode.show_url(ticket) == f"https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={query}"
    )
    assert wx.qrcode.show_url(wxqr.QrTicket(ticket=ticket, url="u")) == wx.qrcode.show_url(ticket)


def test_show_url_follows_a_custom_mp_base_url():
    wx = wxqr.Client(APPID, SECRET, mp_base_url="http://127.0.0.1:8080/")
    assert wx.qrcode.show_url("t") == "http://127.0.0.1:8080/cgi-bin/showqrcode?ticket=t"


@pytest.mark.anyio
async def test_custom_api_base_url_is_used_for_api_and_token_calls():
    seen = []

    async def handler(request):
        seen.append(request.url)
        if request.url.path.endswith("stable_token"):
            return httpx.Response(200, json={"access_token": "T", "expires_in": 7200})
        return httpx.Response(200, json=fixture("shorten_fetch"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with wxqr.Client(APPID, SECRET, http_client=http, api_base_url="http://sandbox:9/") as wx:
        await wx.shorten.fetch("iTqRJFSEqk9RvPk")
    assert [str(url) for url in seen] == [
        "http://sandbox:9/cgi-bin/stable_token",
        "http://sandbox:9/cgi-bin/shorten/fetch?access_token=T",
    ]


# -- results that do not fit the model ---------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "path", "answer"),
    [
        pytest.param(
            lambda wx: wx.qrcode.create_permanent(scene_id=1),
            "cgi-bin/qrcode/create",
            {"url": "http://weixin.qq.com/q/x"},
            id="ticket-missing",
        ),
        pytest.param(
            lambda wx: wx.shorten.fetch("iTqRJFSEqk9RvPk"),
            "cgi-bin/shorten/fetch",
            {"errcode": 0, "errmsg": "ok", "long_data": "x", "create_time": "soon"},
            id="shorten-fetch-bad-shape",
        ),
        pytest.param(
            lambda wx: wx.shorten.gen("x"),
            "cgi-bin/shorten/gen",
            {"errcode": 0, "errmsg": "ok"},
            id="shorten-gen-no-key",
        ),
        pytest.param(
            lambda wx: wx.qrcode_jump.download(),
            "cgi-bin/wxopen/qrcodejumpdownload",
            {"errcode": 0, "errmsg": "ok", "file_name": "x"},
            id="download-no-content",
        ),
    ],
)
async def test_unexpected_answer_shapes_are_decode_errors(call, path, answer):
    fake = FakeWeChat()
    fake.reply(path, answer)
    async with fake.client(max_retries=0) as wx:
        with pytest.raises(wxqr.ResponseDecodeError) as info:
            await call(wx)
    assert info.value.endpoint == path


@pytest.mark.anyio
async def test_extra_keys_in_answers_are_tolerated():
    fake = FakeWeChat()
    fake.reply("cgi-bin/shorten/fetch", {**fixture("shorten_fetch"), "new_field": [1, 2]})
    async with fake.client() as wx:
        data = await wx.shorten.fetch("iTqRJFSEqk9RvPk")
    assert data.long_data == "loooooong data"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "path"),
    [
        pytest.param(lambda wx: wx.qrcode_jump.publish(PREFIX), "cgi-bin/wxopen/qrcodejumppublish"),
        pytest.param(lambda wx: wx.wxacode.get(path="pages/a"), "wxa/getwxacode"),
    ],
)
async def test_a_per_call_timeout_reaches_the_request(call, path):
    fake = FakeWeChat()
    async with fake.client(timeout=10.0) as wx:
        await call(wx)
        await wx.shorten.fetch("iTqRJFSEqk9RvPk", timeout=1.5)
    [request] = fake.calls(path)
    assert request.extensions["timeout"]["read"] == 10.0
    [fetch] = fake.calls("cgi-bin/shorten/fetch")
    assert fetch.extensions["timeout"]["read"] == 1.5
