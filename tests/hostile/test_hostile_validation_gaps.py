"""Validation completeness: bad per-call timeouts, lone surrogates and loose Client options.

Rows of issue 12: "per-call timeout=-1, 0, nan: not validated: -1 sent 4 requests and
shorten.gen created a key the caller was told had failed; 0/NaN disabled the timeout" and
"lone surrogate in a scene_str: passed validation, a token fetch went out, then a foreign
UnicodeEncodeError". Each case: ``ValidationError`` naming the argument, and 0 requests --
the token fetch included.
"""

from __future__ import annotations

import inspect
import math

import pytest
from mockwechat import APPID, SECRET, FakeWeChat

import wxqr
from wxqr.resources import QrCode, QrCodeJump, Shorten, WxaCode

pytestmark = pytest.mark.anyio

KEY = "iTqRJFSEqk9RvPk"
PREFIX = "https://example.com/q/"
LONE = "\ud800"  # a lone surrogate: a valid Python str that no UTF-8 encoder accepts

#: Every endpoint method, with valid arguments.
CALLS = {
    "qrcode.create_temporary": lambda wx, **kw: wx.qrcode.create_temporary(
        scene_id=1, expire_seconds=60, **kw
    ),
    "qrcode.create_permanent": lambda wx, **kw: wx.qrcode.create_permanent(scene_id=1, **kw),
    "qrcode.create": lambda wx, **kw: wx.qrcode.create(
        {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 1}}}, **kw
    ),
    "qrcode.show": lambda wx, **kw: wx.qrcode.show("gQH47joAAAAAAAAAASxodHRw", **kw),
    "shorten.gen": lambda wx, **kw: wx.shorten.gen("long data", **kw),
    "shorten.fetch": lambda wx, **kw: wx.shorten.fetch(KEY, **kw),
    "qrcode_jump.add": lambda wx, **kw: wx.qrcode_jump.add(
        prefix=PREFIX, path="pages/index/index", open_version=1, permit_sub_rule=1, **kw
    ),
    "qrcode_jump.get": lambda wx, **kw: wx.qrcode_jump.get(**kw),
    "qrcode_jump.delete": lambda wx, **kw: wx.qrcode_jump.delete(PREFIX, **kw),
    "qrcode_jump.publish": lambda wx, **kw: wx.qrcode_jump.publish(PREFIX, **kw),
    "qrcode_jump.download": lambda wx, **kw: wx.qrcode_jump.download(**kw),
    "wxacode.create_qrcode": lambda wx, **kw: wx.wxacode.create_qrcode(
        path="pages/index/index", **kw
    ),
    "wxacode.get": lambda wx, **kw: wx.wxacode.get(path="pages/index/index", **kw),
    "wxacode.get_unlimited": lambda wx, **kw: wx.wxacode.get_unlimited(scene="a=1", **kw),
}

BAD_TIMEOUTS = [
    pytest.param(-1, id="negative"),
    pytest.param(0, id="zero"),
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param("5", id="str"),
    pytest.param(True, id="bool"),
]


def test_the_table_covers_every_endpoint_method():
    groups = {"qrcode": QrCode, "shorten": Shorten, "qrcode_jump": QrCodeJump, "wxacode": WxaCode}
    methods = {
        f"{name}.{attr}"
        for name, cls in groups.items()
        for attr, member in vars(cls).items()
        if inspect.iscoroutinefunction(member)
    }
    assert methods == set(CALLS)
    for name in methods:
        group, attr = name.split(".")
        assert "timeout" in inspect.signature(getattr(groups[group], attr)).parameters, name


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS)
@pytest.mark.parametrize("method", sorted(CALLS))
async def test_a_bad_per_call_timeout_is_refused_before_any_request(method, timeout):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await CALLS[method](wx, timeout=timeout)
    assert info.value.argument == "timeout"
    assert "finite number of seconds > 0" in str(info.value)
    assert fake.requests == []  # no token fetch either


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_a_good_per_call_timeout_is_accepted(method):
    fake = FakeWeChat()
    async with fake.client(rate_limits={}) as wx:
        await CALLS[method](wx, timeout=2.5)
    assert fake.api_requests


SURROGATES = {
    "scene_str": lambda wx: wx.qrcode.create_temporary(scene_str=f"a{LONE}", expire_seconds=60),
    "action_info.scene.scene_str": lambda wx: wx.qrcode.create(
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": LONE}}}
    ),
    "ticket": lambda wx: wx.qrcode.show(f"gQH{LONE}"),
    "long_data": lambda wx: wx.shorten.gen(f"data{LONE}"),
    "short_key": lambda wx: wx.shorten.fetch(f"{KEY}{LONE}"),
    "path": lambda wx: wx.qrcode_jump.add(
        prefix=PREFIX, path=f"pages/{LONE}", open_version=1, permit_sub_rule=1
    ),
    "prefix": lambda wx: wx.qrcode_jump.delete(f"{PREFIX}{LONE}"),
    "debug_url": lambda wx: wx.qrcode_jump.add(
        prefix=PREFIX,
        path="pages/index/index",
        open_version=1,
        permit_sub_rule=1,
        debug_url=[f"{PREFIX}{LONE}"],
    ),
    "appid": lambda wx: wx.qrcode_jump.get(appid=f"wx{LONE}"),
    "prefix_list": lambda wx: wx.qrcode_jump.get(
        appid="wx123", get_type=1, prefix_list=[f"{PREFIX}{LONE}"]
    ),
    "wxacode path": lambda wx: wx.wxacode.get(path=f"pages/{LONE}"),
    "wxacode C path": lambda wx: wx.wxacode.create_qrcode(path=f"pages/{LONE}"),
    "page": lambda wx: wx.wxacode.get_unlimited(scene="a=1", page=f"pages/{LONE}"),
    "scene": lambda wx: wx.wxacode.get_unlimited(scene=f"a{LONE}"),
}


@pytest.mark.parametrize("case", sorted(SURROGATES))
async def test_a_lone_surrogate_is_refused_before_any_request(case):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await SURROGATES[case](wx)
    assert info.value.argument == case.split()[-1].split(".")[-1]
    assert fake.requests == []  # was: a token fetch, then a foreign UnicodeEncodeError


class _NotACache:
    pass


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        pytest.param({"secret": SECRET.encode()}, "secret", id="secret-bytes"),
        pytest.param({"secret": 12345}, "secret", id="secret-int"),
        pytest.param({"secret": ""}, "secret", id="secret-empty"),
        pytest.param({"secret": f"S{LONE}"}, "secret", id="secret-surrogate"),
        pytest.param({"stable_token": "false"}, "stable_token", id="stable-str"),
        pytest.param({"stable_token": 0}, "stable_token", id="stable-int"),
        pytest.param({"stable_token": None}, "stable_token", id="stable-none"),
        pytest.param({"api_base_url": "api.weixin.qq.com"}, "api_base_url", id="api-no-scheme"),
        pytest.param({"api_base_url": "ftp://x.example"}, "api_base_url", id="api-ftp"),
        pytest.param({"api_base_url": 443}, "api_base_url", id="api-int"),
        pytest.param({"mp_base_url": "http://"}, "mp_base_url", id="mp-no-host"),
        pytest.param({"rate_limits": None}, "rate_limits", id="rate-limits-none"),
        pytest.param(
            {"rate_limits": [("qrcodejump", wxqr.RateLimit(5, 1.0))]},
            "rate_limits",
            id="rate-limits-list",
        ),
        pytest.param({"rate_limits": {1: wxqr.RateLimit(5, 1.0)}}, "rate_limits", id="bucket-int"),
        pytest.param({"token_cache": _NotACache()}, "token_cache", id="cache-object"),
        pytest.param({"rate_limiter": _NotACache()}, "rate_limiter", id="limiter-object"),
        pytest.param({"timeout": math.inf}, "timeout", id="timeout-inf"),
        pytest.param({"retry_backoff": math.inf}, "retry_backoff", id="backoff-inf"),
        pytest.param({"refusal_cooldown": -1}, "refusal_cooldown", id="cooldown-negative"),
        pytest.param({"refusal_cooldown": "10"}, "refusal_cooldown", id="cooldown-str"),
    ],
)
def test_loose_client_options_are_a_validation_error(options, argument):
    options.setdefault("secret", SECRET)
    with pytest.raises(wxqr.ValidationError) as info:
        wxqr.Client(APPID, **options)
    assert info.value.argument == argument
    assert SECRET not in str(info.value)


def test_a_lone_surrogate_in_the_appid_is_refused():
    with pytest.raises(wxqr.ValidationError) as info:
        wxqr.Client(f"wx{LONE}", SECRET)
    assert info.value.argument == "appid"


def test_a_provider_that_is_not_callable_is_refused():
    with pytest.raises(wxqr.ValidationError) as info:
        wxqr.Client(APPID, token_provider="TOKEN")
    assert info.value.argument == "token_provider"
