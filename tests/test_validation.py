"""Every documented limit is checked before any I/O, with a message naming argument and range.

Each refused case asserts: ``wxqr.ValidationError`` (also a ``ValueError``), its ``argument``,
a fragment of the message (the allowed range or rule), and that WeChat saw no request at all —
not even a token fetch. Each boundary case asserts the value is sent unchanged.
"""

from __future__ import annotations

import math

import pytest
from mockwechat import APPID, SECRET, FakeWeChat, body_of

import wxqr

INT32 = "-2147483648..2147483647"
PREFIX = "https://www.example.com/qr/"
SERVICE_PREFIX = "http://weixin.qq.com/q/"
MP_APPID = "wxminiprogram00001"


def temp(**kw):
    kw.setdefault("expire_seconds", 3600)
    return lambda wx: wx.qrcode.create_temporary(**kw)


def perm(**kw):
    return lambda wx: wx.qrcode.create_permanent(**kw)


def raw(payload):
    return lambda wx: wx.qrcode.create(payload)


def scene_id_payload(action="QR_SCENE", scene_id=1, **extra):
    return {"action_name": action, "action_info": {"scene": {"scene_id": scene_id}}, **extra}


def jump_add(**kw):
    kw.setdefault("prefix", PREFIX)
    kw.setdefault("path", "pages/index/index")
    if "appid" not in kw:
        kw.setdefault("open_version", 3)
        kw.setdefault("permit_sub_rule", 1)
    return lambda wx: wx.qrcode_jump.add(**kw)


def jump_get(**kw):
    return lambda wx: wx.qrcode_jump.get(**kw)


def wxa_c(**kw):
    kw.setdefault("path", "pages/index/index")
    return lambda wx: wx.wxacode.create_qrcode(**kw)


def wxa_a(**kw):
    kw.setdefault("path", "pages/index/index")
    return lambda wx: wx.wxacode.get(**kw)


def wxa_b(**kw):
    kw.setdefault("scene", "a=1")
    return lambda wx: wx.wxacode.get_unlimited(**kw)


REFUSED = [
    # -- qrcode.create_temporary [§3.1] -------------------------------------------------------
    pytest.param(temp(scene_id=0), "scene_id", "non-zero", id="temp-scene_id-zero"),
    pytest.param(temp(scene_id=2**31), "scene_id", INT32, id="temp-scene_id-over-int32"),
    pytest.param(temp(scene_id=-(2**31) - 1), "scene_id", INT32, id="temp-scene_id-under-int32"),
    pytest.param(temp(scene_id=True), "scene_id", INT32, id="temp-scene_id-bool"),
    pytest.param(temp(scene_id="7"), "scene_id", INT32, id="temp-scene_id-str"),
    pytest.param(temp(scene_str=""), "scene_str", "1..64", id="temp-scene_str-empty"),
    pytest.param(temp(scene_str="x" * 65), "scene_str", "1..64", id="temp-scene_str-65"),
    pytest.param(
        temp(scene_id=1, scene_str="a"), "scene_id/scene_str", "exactly one", id="temp-both"
    ),
    pytest.param(temp(), "scene_id/scene_str", "exactly one", id="temp-neither"),
    pytest.param(
        temp(scene_id=1, expire_seconds=0), "expire_seconds", "1..2592000", id="temp-expire-0"
    ),
    pytest.param(
        temp(scene_id=1, expire_seconds=2_592_001),
        "expire_seconds",
        "1..2592000",
        id="temp-expire-over-30-days",
    ),
    pytest.param(
        temp(scene_id=1, expire_seconds=None), "expire_seconds", "1..2592000", id="temp-expire-none"
    ),
    pytest.param(
        temp(scene_id=1, expire_seconds=60.5),
        "expire_seconds",
        "1..2592000",
        id="temp-expire-float",
    ),
    # -- qrcode.create_permanent [§3.1] -------------------------------------------------------
    pytest.param(perm(scene_id=0), "scene_id", "1..100000", id="perm-scene_id-0"),
    pytest.param(perm(scene_id=100_001), "scene_id", "1..100000", id="perm-scene_id-100001"),
    pytest.param(perm(scene_id=-5), "scene_id", "1..100000", id="perm-scene_id-negative"),
    pytest.param(perm(scene_str="x" * 65), "scene_str", "1..64", id="perm-scene_str-65"),
    pytest.param(perm(), "scene_id/scene_str", "exactly one", id="perm-neither"),
    # -- qrcode.create(payload) ------------------------------------------------------------------
    pytest.param(raw([("action_name", "QR_SCENE")]), "payload", "mapping", id="raw-not-a-mapping"),
    pytest.param(
        raw(scene_id_payload(expire_seconds=60, foo=1)), "payload", "unknown keys", id="raw-extra"
    ),
    pytest.param(
        raw(scene_id_payload("QR_FOO", expire_seconds=60)),
        "action_name",
        "'QR_SCENE', 'QR_STR_SCENE', 'QR_LIMIT_SCENE', 'QR_LIMIT_STR_SCENE'",
        id="raw-bad-action",
    ),
    pytest.param(
        raw({"action_name": "QR_LIMIT_SCENE"}), "action_info", "scene", id="raw-no-action-info"
    ),
    pytest.param(
        raw(
            {
                "action_name": "QR_LIMIT_SCENE",
                "action_info": {"scene": {"scene_id": 1, "scene_str": "a"}},
            }
        ),
        "action_info",
        "scene_id",
        id="raw-two-scenes",
    ),
    pytest.param(
        raw(scene_id_payload("QR_LIMIT_STR_SCENE")),
        "action_info.scene",
        "needs scene_str",
        id="raw-str-action-with-scene_id",
    ),
    pytest.param(
        raw({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_str": "a"}}}),
        "action_info.scene",
        "needs scene_id",
        id="raw-int-action-with-scene_str",
    ),
    pytest.param(
        raw(scene_id_payload("QR_LIMIT_SCENE", 100_001)),
        "scene_id",
        "1..100000",
        id="raw-permanent-scene_id-range",
    ),
    pytest.param(
        raw(scene_id_payload("QR_SCENE", 0, expire_seconds=60)),
        "scene_id",
        "non-zero",
        id="raw-temporary-scene_id-zero",
    ),
    pytest.param(
        raw(scene_id_payload("QR_LIMIT_SCENE", 1, expire_seconds=60)),
        "expire_seconds",
        "not allowed",
        id="raw-permanent-with-expiry",
    ),
    pytest.param(
        raw(scene_id_payload("QR_SCENE", 1)),
        "expire_seconds",
        "required",
        id="raw-temporary-without-expiry",
    ),
    pytest.param(
        raw(scene_id_payload("QR_SCENE", 1, expire_seconds=2_592_001)),
        "expire_seconds",
        "1..2592000",
        id="raw-expiry-range",
    ),
    pytest.param(
        raw(
            {
                "action_name": "QR_STR_SCENE",
                "action_info": {"scene": {"scene_str": "x" * 65}},
                "expire_seconds": 60,
            }
        ),
        "scene_str",
        "1..64",
        id="raw-scene_str-65",
    ),
    # -- qrcode.show ---------------------------------------------------------------------------
    pytest.param(lambda wx: wx.qrcode.show(""), "ticket", "1..1024", id="show-empty-ticket"),
    pytest.param(lambda wx: wx.qrcode.show("t" * 1025), "ticket", "1..1024", id="show-long-ticket"),
    pytest.param(lambda wx: wx.qrcode.show(123), "ticket", "string", id="show-int-ticket"),
    # -- shorten [§4] ----------------------------------------------------------------------------
    pytest.param(lambda wx: wx.shorten.gen(""), "long_data", "1..4096 bytes", id="gen-empty"),
    pytest.param(
        lambda wx: wx.shorten.gen("x" * 4097), "long_data", "1..4096 bytes", id="gen-4097-bytes"
    ),
    pytest.param(
        lambda wx: wx.shorten.gen("长" * 1366),  # 1366 characters, 4098 UTF-8 bytes
        "long_data",
        "got 4098 bytes",
        id="gen-multibyte-counted-in-bytes",
    ),
    pytest.param(lambda wx: wx.shorten.gen(None), "long_data", "string", id="gen-none"),
    pytest.param(
        lambda wx: wx.shorten.gen("d", expire_seconds=0),
        "expire_seconds",
        "1..2592000",
        id="gen-expire-0",
    ),
    pytest.param(
        lambda wx: wx.shorten.gen("d", expire_seconds=2_592_001),
        "expire_seconds",
        "1..2592000",
        id="gen-expire-over-30-days",
    ),
    pytest.param(lambda wx: wx.shorten.fetch(""), "short_key", "1..64", id="fetch-empty-key"),
    pytest.param(lambda wx: wx.shorten.fetch("iTqRJ-FSEq"), "short_key", "base62", id="fetch-dash"),
    pytest.param(lambda wx: wx.shorten.fetch("短链"), "short_key", "base62", id="fetch-non-ascii"),
    # -- qrcode_jump.add, ordinary rules [§5.1] ---------------------------------------------------
    pytest.param(jump_add(prefix="ftp://x/"), "prefix", "http://", id="add-prefix-scheme"),
    pytest.param(jump_add(path=""), "path", "1..1024", id="add-empty-path"),
    pytest.param(jump_add(open_version=None), "open_version", "1..3", id="add-no-open_version"),
    pytest.param(
        jump_add(permit_sub_rule=None), "permit_sub_rule", "1..2", id="add-no-permit_sub_rule"
    ),
    pytest.param(jump_add(open_version=4), "open_version", "1..3", id="add-open_version-4"),
    pytest.param(jump_add(permit_sub_rule=3), "permit_sub_rule", "1..2", id="add-permit-3"),
    pytest.param(
        jump_add(debug_url=[f"{PREFIX}{i}" for i in range(6)]),
        "debug_url",
        "at most 5",
        id="add-six-debug-urls",
    ),
    pytest.param(
        jump_add(debug_url=["https://other.example.com/x"]),
        "debug_url",
        "not under the prefix",
        id="add-debug-url-outside-prefix",
    ),
    pytest.param(
        jump_add(debug_url=f"{PREFIX}a"), "debug_url", "list", id="add-debug-url-a-string"
    ),
    pytest.param(jump_add(is_edit=1), "is_edit", "True or False", id="add-is_edit-int"),
    # -- qrcode_jump.add, service-account rules ---------------------------------------------------
    pytest.param(
        jump_add(appid=MP_APPID), "prefix", SERVICE_PREFIX, id="add-service-prefix-not-weixin-q"
    ),
    pytest.param(
        jump_add(appid=MP_APPID, prefix=SERVICE_PREFIX + "abc", open_version=3),
        "open_version",
        "not allowed for service-account",
        id="add-service-with-open_version",
    ),
    pytest.param(
        jump_add(appid=MP_APPID, prefix=SERVICE_PREFIX + "abc", permit_sub_rule=1),
        "permit_sub_rule",
        "not allowed for service-account",
        id="add-service-with-permit_sub_rule",
    ),
    pytest.param(
        jump_add(appid=MP_APPID, prefix=SERVICE_PREFIX + "abc", debug_url=[SERVICE_PREFIX + "a"]),
        "debug_url",
        "not allowed for service-account",
        id="add-service-with-debug_url",
    ),
    # -- qrcode_jump.get / delete / publish [§5.2-5.4] -----------------------------------------
    pytest.param(jump_get(get_type=1), "get_type", "service-account", id="get-type-without-appid"),
    pytest.param(jump_get(page_num=1), "page_num", "service-account", id="get-page-no-appid"),
    pytest.param(jump_get(appid=MP_APPID, get_type=3), "get_type", "0..2", id="get-type-3"),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=1), "prefix_list", "1..200", id="get-type-1-no-list"
    ),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=1, prefix_list=[f"{PREFIX}{i}" for i in range(201)]),
        "prefix_list",
        "at most 200",
        id="get-201-prefixes",
    ),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=0, prefix_list=[PREFIX]),
        "prefix_list",
        "get_type=1",
        id="get-prefix_list-without-type-1",
    ),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=2, page_num=1, page_size=201),
        "page_size",
        "1..200",
        id="get-page_size-201",
    ),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=2, page_num=0, page_size=10),
        "page_num",
        "1..",
        id="get-page_num-0",
    ),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=0, page_num=1),
        "page_num/page_size",
        "get_type=2",
        id="get-paging-without-type-2",
    ),
    pytest.param(lambda wx: wx.qrcode_jump.delete("nope"), "prefix", "http://", id="delete-prefix"),
    pytest.param(lambda wx: wx.qrcode_jump.publish(""), "prefix", "1..2048", id="publish-empty"),
    # -- wxacode C: createwxaqrcode [§6.1] -
    pytest.param(wxa_c(path=""), "path", "1..128 bytes", id="C-empty-path"),
    pytest.param(wxa_c(path="p" * 129), "path", "1..128 bytes", id="C-path-129"),
    pytest.param(
        wxa_c(path="页" * 43),  # 43 characters, 129 bytes
        "path",
        "got 129 bytes",
        id="C-path-counted-in-bytes",
    ),
    pytest.param(wxa_c(width=279), "width", "280..1280", id="C-width-279"),
    pytest.param(wxa_c(width=1281), "width", "280..1280", id="C-width-1281"),
    pytest.param(wxa_c(width=430.0), "width", "280..1280", id="C-width-float"),
    pytest.param(
        wxa_c(path="pages/a?scancode_time=1"), "path", "scancode_time", id="C-scancode_time"
    ),
    # -- wxacode A: getwxacode -----------------------------------------------------------------
    pytest.param(wxa_a(path="p" * 1025), "path", "1..1024", id="A-path-1025"),
    pytest.param(wxa_a(width=279), "width", "280..1280", id="A-width-279"),
    pytest.param(wxa_a(width=True), "width", "280..1280", id="A-width-bool"),
    pytest.param(
        wxa_a(env_version="prod"),
        "env_version",
        "'release', 'trial', 'develop'",
        id="A-env_version",
    ),
    pytest.param(wxa_a(line_color=(256, 0, 0)), "line_color.r", "0..255", id="A-red-256"),
    pytest.param(wxa_a(line_color=(0, -1, 0)), "line_color.g", "0..255", id="A-green-negative"),
    pytest.param(wxa_a(line_color=(0, 0, True)), "line_color.b", "0..255", id="A-blue-bool"),
    pytest.param(
        wxa_a(line_color={"r": 0, "g": 0}), "line_color", "'r', 'g', 'b'", id="A-color-missing-b"
    ),
    pytest.param(wxa_a(line_color=(0, 0)), "line_color", "(r, g, b)", id="A-color-two-parts"),
    pytest.param(
        wxa_a(auto_color=True, line_color=(1, 2, 3)),
        "line_color",
        "auto_color",
        id="A-color-with-auto_color",
    ),
    pytest.param(wxa_a(auto_color=1), "auto_color", "True or False", id="A-auto_color-int"),
    pytest.param(wxa_a(is_hyaline=0), "is_hyaline", "True or False", id="A-is_hyaline-int"),
    pytest.param(wxa_a(path="a?scancode_time=9"), "path", "scancode_time", id="A-scancode_time"),
    # -- wxacode B: getwxacodeunlimit -----------------------------------------------------------
    pytest.param(wxa_b(scene=""), "scene", "1..32", id="B-scene-empty"),
    pytest.param(wxa_b(scene="x" * 33), "scene", "1..32", id="B-scene-33"),
    pytest.param(wxa_b(scene="a%20b"), "scene", "'%'", id="B-scene-percent"),
    pytest.param(wxa_b(scene="a b"), "scene", "' '", id="B-scene-space"),
    pytest.param(wxa_b(scene="中文"), "scene", "non-ASCII", id="B-scene-chinese"),
    pytest.param(wxa_b(page="/pages/index/index"), "page", "'/'", id="B-page-leading-slash"),
    pytest.param(wxa_b(page="pages/index/index?a=1"), "page", "query", id="B-page-query"),
    pytest.param(wxa_b(page=""), "page", "1..1024", id="B-page-empty"),
    pytest.param(wxa_b(check_path=1), "check_path", "True or False", id="B-check_path-int"),
    pytest.param(wxa_b(env_version="Release"), "env_version", "'release'", id="B-env-case"),
    pytest.param(wxa_b(width=1281), "width", "280..1280", id="B-width-1281"),
    pytest.param(wxa_b(line_color=(0, 0, 300)), "line_color.b", "0..255", id="B-blue-300"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("call", "argument", "fragment"), REFUSED)
async def test_refused_before_any_request(call, argument, fragment):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await call(wx)

    assert isinstance(info.value, ValueError)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: ")
    assert fragment in str(info.value)
    assert fake.requests == []


# -- boundary values are accepted and sent as given --------------------------------------------

ALLOWED = [
    pytest.param(
        temp(scene_id=-(2**31)),
        "cgi-bin/qrcode/create",
        {"action_info": {"scene": {"scene_id": -(2**31)}}},
        id="temp-scene_id-int32-min",
    ),
    pytest.param(
        temp(scene_id=2**31 - 1),
        "cgi-bin/qrcode/create",
        {"action_info": {"scene": {"scene_id": 2**31 - 1}}},
        id="temp-scene_id-int32-max",
    ),
    pytest.param(
        temp(scene_str="x" * 64, expire_seconds=1),
        "cgi-bin/qrcode/create",
        {"action_info": {"scene": {"scene_str": "x" * 64}}, "expire_seconds": 1},
        id="temp-scene_str-64-expire-1",
    ),
    pytest.param(
        temp(scene_id=1, expire_seconds=2_592_000),
        "cgi-bin/qrcode/create",
        {"expire_seconds": 2_592_000},
        id="temp-expire-30-days",
    ),
    pytest.param(
        perm(scene_id=1),
        "cgi-bin/qrcode/create",
        {"action_info": {"scene": {"scene_id": 1}}},
        id="perm-scene_id-1",
    ),
    pytest.param(
        perm(scene_id=100_000),
        "cgi-bin/qrcode/create",
        {"action_info": {"scene": {"scene_id": 100_000}}},
        id="perm-scene_id-100000",
    ),
    pytest.param(
        lambda wx: wx.shorten.gen("长" * 1365 + "x"),  # exactly 4096 bytes
        "cgi-bin/shorten/gen",
        {"long_data": "长" * 1365 + "x"},
        id="gen-4096-bytes",
    ),
    pytest.param(
        jump_add(debug_url=[f"{PREFIX}{i}" for i in range(5)]),
        "cgi-bin/wxopen/qrcodejumpadd",
        {"debug_url": [f"{PREFIX}{i}" for i in range(5)]},
        id="add-five-debug-urls",
    ),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=2, page_num=1, page_size=200),
        "cgi-bin/wxopen/qrcodejumpget",
        {"page_num": 1, "page_size": 200},
        id="get-page_size-200",
    ),
    pytest.param(
        jump_get(appid=MP_APPID, get_type=1, prefix_list=[f"{PREFIX}{i}" for i in range(200)]),
        "cgi-bin/wxopen/qrcodejumpget",
        {"get_type": 1},
        id="get-200-prefixes",
    ),
    pytest.param(
        wxa_c(path="页" * 42 + "ab", width=280),  # 128 bytes
        "cgi-bin/wxaapp/createwxaqrcode",
        {"path": "页" * 42 + "ab", "width": 280},
        id="C-path-128-bytes-width-280",
    ),
    pytest.param(
        wxa_a(path="p" * 1024, width=1280),
        "wxa/getwxacode",
        {"path": "p" * 1024, "width": 1280},
        id="A-path-1024-width-1280",
    ),
    pytest.param(
        wxa_a(line_color=(0, 128, 255)),
        "wxa/getwxacode",
        {"line_color": {"r": 0, "g": 128, "b": 255}},
        id="A-color-extremes",
    ),
    pytest.param(
        wxa_b(scene="!#$&'()*+,/:;=?@-._~0123456789aZ"),
        "wxa/getwxacodeunlimit",
        {"scene": "!#$&'()*+,/:;=?@-._~0123456789aZ"},
        id="B-scene-32-every-special-char",
    ),
    pytest.param(
        wxa_b(page="pages/index/index", width=280),
        "wxa/getwxacodeunlimit",
        {"page": "pages/index/index", "width": 280},
        id="B-page-width-280",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("call", "path", "expected"), ALLOWED)
async def test_boundary_values_are_accepted(call, path, expected):
    fake = FakeWeChat()
    async with fake.client() as wx:
        await call(wx)

    [request] = fake.calls(path)
    body = body_of(request)
    assert {key: body[key] for key in expected} == expected


# -- Client options --------------------------------------------------------------------------


def _provider():
    async def provide():
        return "TOKEN"

    return provide


@pytest.mark.parametrize(
    ("args", "options", "argument", "fragment"),
    [
        pytest.param(("",), {"secret": SECRET}, "appid", "non-empty", id="empty-appid"),
        pytest.param((None,), {"secret": SECRET}, "appid", "non-empty", id="no-appid"),
        pytest.param((APPID,), {}, "secret", "token_provider", id="no-secret-no-provider"),
        pytest.param(
            (APPID,),
            {"secret": SECRET, "token_provider": _provider()},
            "token_provider",
            "either",
            id="secret-and-provider",
        ),
        pytest.param((APPID,), {"timeout": -1}, "timeout", "> 0", id="negative-timeout"),
        pytest.param((APPID,), {"timeout": 0}, "timeout", "> 0", id="zero-timeout"),
        pytest.param((APPID,), {"timeout": "10"}, "timeout", "> 0", id="timeout-str"),
        pytest.param(
            (APPID,), {"refresh_margin": -1}, "refresh_margin", ">= 0", id="negative-margin"
        ),
        pytest.param(
            (APPID,), {"retry_backoff": -0.1}, "retry_backoff", ">= 0", id="negative-backoff"
        ),
        pytest.param(
            (APPID,),
            {"max_rate_limit_wait": -1},
            "max_rate_limit_wait",
            ">= 0",
            id="negative-rate-wait",
        ),
        pytest.param((APPID,), {"max_retries": -1}, "max_retries", ">= 0", id="negative-retries"),
        pytest.param((APPID,), {"max_retries": True}, "max_retries", ">= 0", id="retries-bool"),
        pytest.param((APPID,), {"max_retries": 1.5}, "max_retries", ">= 0", id="retries-float"),
        pytest.param(
            (APPID,), {"max_concurrency": 0}, "max_concurrency", ">= 1", id="zero-concurrency"
        ),
        pytest.param(
            (APPID,),
            {"rate_limits": {"qrcodejump": (5, 1.0)}},
            "rate_limits['qrcodejump']",
            "wxqr.RateLimit",
            id="rate-limit-tuple",
        ),
        pytest.param((APPID,), {"timeout": math.nan}, "timeout", "> 0", id="nan-timeout"),
        pytest.param(
            (APPID,), {"refresh_margin": math.nan}, "refresh_margin", ">= 0", id="nan-margin"
        ),
    ],
)
def test_client_options_are_validated(args, options, argument, fragment):
    fake = FakeWeChat()
    if argument not in ("secret", "token_provider"):
        options.setdefault("secret", SECRET)
    with pytest.raises(wxqr.ValidationError) as info:
        wxqr.Client(*args, http_client=fake.http_client(), **options)
    assert isinstance(info.value, ValueError)
    assert info.value.argument == argument
    assert fragment in str(info.value)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("calls", "period"),
    [
        pytest.param(0, 1.0, id="zero-calls"),
        pytest.param(5, 0, id="zero-period"),
        pytest.param(5, -1.0, id="negative-period"),
    ],
)
def test_rate_limit_values_are_checked(calls, period):
    with pytest.raises(ValueError):
        wxqr.RateLimit(calls, period)
