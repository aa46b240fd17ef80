"""``wx.openapi``: every request as WeChat documents it, the models, validation, and the budgets.

Requests go through ``httpx.MockTransport`` (``FakeWeChat``); reference §9 and events §1.8.
"""

from __future__ import annotations

import logging
import pickle
import re
import traceback

import httpx
import pytest
from mockwechat import APPID, SECRET, FakeWeChat, body_of, error, fixture, raises, token_of

import wxqr
from wxqr.errors import CATALOGUE

pytestmark = pytest.mark.anyio

RID = "617682e0-09059ac5-34a8e2ea"
QUOTA_PATH = "/cgi-bin/qrcode/create"


def script(fake: FakeWeChat) -> None:
    """Documented example answers for the eight APIs."""
    fake.reply_always("cgi-bin/openapi/quota/get", fixture("openapi_quota_get"))
    fake.reply_always("cgi-bin/clear_quota", fixture("ok"))
    fake.reply_always("cgi-bin/clear_quota/v2", fixture("ok"))
    fake.reply_always("cgi-bin/openapi/quota/clear", fixture("ok"))
    fake.reply_always("cgi-bin/openapi/rid/get", fixture("openapi_rid_get"))
    fake.reply_always("cgi-bin/getcallbackip", fixture("getcallbackip"))
    fake.reply_always("cgi-bin/get_api_domain_ip", {"ip_list": ["101.226.90.149"]})
    fake.reply_always("cgi-bin/callback/check", fixture("callback_check"))


# -- the requests -----------------------------------------------------------------------------

REQUESTS = [
    pytest.param(
        lambda wx: wx.openapi.get_quota(QUOTA_PATH),
        "POST",
        "cgi-bin/openapi/quota/get",
        {"cgi_path": QUOTA_PATH},
        True,
        id="get_quota",
    ),
    pytest.param(
        lambda wx: wx.openapi.clear_quota(),
        "POST",
        "cgi-bin/clear_quota",
        {"appid": APPID},
        True,
        id="clear_quota",
    ),
    pytest.param(
        lambda wx: wx.openapi.clear_quota(appid="wx_authorised_merchant"),
        "POST",
        "cgi-bin/clear_quota",
        {"appid": "wx_authorised_merchant"},
        True,
        id="clear_quota-appid",
    ),
    pytest.param(
        lambda wx: wx.openapi.clear_quota_with_secret(),
        "POST",
        "cgi-bin/clear_quota/v2",
        {"appid": APPID, "appsecret": SECRET},
        False,
        id="clear_quota_with_secret",
    ),
    pytest.param(
        lambda wx: wx.openapi.clear_api_quota(QUOTA_PATH),
        "POST",
        "cgi-bin/openapi/quota/clear",
        {"cgi_path": QUOTA_PATH},
        True,
        id="clear_api_quota",
    ),
    pytest.param(
        lambda wx: wx.openapi.get_rid(RID),
        "POST",
        "cgi-bin/openapi/rid/get",
        {"rid": RID},
        True,
        id="get_rid",
    ),
    pytest.param(
        lambda wx: wx.openapi.callback_ips(),
        "GET",
        "cgi-bin/getcallbackip",
        None,
        True,
        id="callback_ips",
    ),
    pytest.param(
        lambda wx: wx.openapi.api_domain_ips(),
        "GET",
        "cgi-bin/get_api_domain_ip",
        None,
        True,
        id="api_domain_ips",
    ),
    pytest.param(
        lambda wx: wx.openapi.check_callback(action="ping", operator="UNICOM"),
        "POST",
        "cgi-bin/callback/check",
        {"action": "ping", "check_operator": "UNICOM"},
        True,
        id="check_callback",
    ),
]


@pytest.mark.parametrize(("call", "method", "path", "body", "with_token"), REQUESTS)
async def test_each_request_is_sent_as_documented(call, method, path, body, with_token):
    fake = FakeWeChat()
    script(fake)
    async with fake.client() as wx:
        await call(wx)
    (request,) = fake.calls(path)
    assert request.url.scheme == "https"
    assert request.url.host == "api.weixin.qq.com"
    assert request.method == method
    assert body_of(request) == body
    if with_token:
        assert set(request.url.params) == {"access_token"}
        assert token_of(request) == fake.issued[0]
    else:  # clear_quota/v2 needs no token: nothing in the query, no token fetched at all
        assert request.url.query == b""
        assert fake.token_requests == []


# -- the results ------------------------------------------------------------------------------


async def test_get_quota_returns_the_counters_and_rate_windows():
    fake = FakeWeChat()
    script(fake)
    async with fake.client() as wx:
        quota = await wx.openapi.get_quota(QUOTA_PATH)
    assert quota == wxqr.ApiQuota(
        daily_limit=100000,
        used=1234,
        remain=98766,
        rate_limit=wxqr.RateWindow(call_count=5000, refresh_second=60),
        component_rate_limit=wxqr.RateWindow(call_count=1000, refresh_second=60),
    )


async def test_get_quota_without_rate_windows_has_none():
    fake = FakeWeChat()
    fake.reply("cgi-bin/openapi/quota/get", {"quota": {"daily_limit": 0, "used": 0, "remain": 0}})
    async with fake.client() as wx:
        quota = await wx.openapi.get_quota("/wxa/getwxacodeunlimit")
    assert quota.rate_limit is None
    assert quota.component_rate_limit is None
    assert (quota.daily_limit, quota.used, quota.remain) == (0, 0, 0)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"errcode": 0, "errmsg": "ok"}, id="no-quota"),
        pytest.param({"quota": {"daily_limit": 1, "used": 0}}, id="no-remain"),
        pytest.param({"quota": {"daily_limit": "x", "used": 0, "remain": 0}}, id="not-a-number"),
        pytest.param({"quota": [1, 2, 3]}, id="quota-not-an-object"),
    ],
)
async def test_a_malformed_quota_answer_is_a_decode_error(answer):
    fake = FakeWeChat()
    fake.reply("cgi-bin/openapi/quota/get", answer)
    async with fake.client() as wx:
        with pytest.raises(wxqr.ResponseDecodeError, match="ApiQuota"):
            await wx.openapi.get_quota(QUOTA_PATH)


async def test_get_rid_returns_the_record_and_masks_the_token_in_repr():
    fake = FakeWeChat()
    script(fake)
    async with fake.client() as wx:
        info = await wx.openapi.get_rid(RID)
    assert info == wxqr.RidInfo(
        invoke_time=1635156704,
        cost_in_ms=30,
        request_url="access_token=50_Im7xxxx",
        request_body="",
        response_body=fixture("openapi_rid_get")["request"]["response_body"],
        client_ip="113.xx.70.51",
    )
    assert info.request_url == "access_token=50_Im7xxxx"  # the value itself is untouched
    assert "50_Im7xxxx" not in repr(info)
    assert "access_token=***" in repr(info)
    assert pickle.loads(pickle.dumps(info)) == info


def test_rid_info_repr_masks_a_secret_in_the_request_body():
    info = wxqr.RidInfo(1, 2, "", f'{{"appid":"{APPID}","secret":"{SECRET}"}}', "{}", "::1")
    assert SECRET not in repr(info)
    assert APPID in repr(info)


async def test_get_rid_without_a_request_object_is_a_decode_error():
    fake = FakeWeChat()
    fake.reply("cgi-bin/openapi/rid/get", {"errcode": 0, "errmsg": "ok"})
    async with fake.client() as wx:
        with pytest.raises(wxqr.ResponseDecodeError, match="RidInfo"):
            await wx.openapi.get_rid(RID)


async def test_callback_and_api_domain_ips_are_lists_of_strings():
    fake = FakeWeChat()
    script(fake)
    async with fake.client() as wx:
        assert await wx.openapi.callback_ips() == ["106.55.206.146", "106.55.206.211"]
        assert await wx.openapi.api_domain_ips() == ["101.226.90.149"]
        fake.reply("cgi-bin/getcallbackip", {"ip_list": "106.55.206.146"})
        with pytest.raises(wxqr.ResponseDecodeError):
            await wx.openapi.callback_ips()


async def test_check_callback_returns_dns_and_pings():
    fake = FakeWeChat()
    script(fake)
    async with fake.client() as wx:
        check = await wx.openapi.check_callback()
    (request,) = fake.calls("cgi-bin/callback/check")
    assert body_of(request) == {"action": "all", "check_operator": "DEFAULT"}
    assert check.dns[0] == wxqr.CallbackDns(ip="111.161.64.40", real_operator="UNICOM")
    assert check.ping[1] == wxqr.CallbackPing(
        ip="111.161.64.48", from_operator="UNICOM", package_loss="0%", time="21.434ms"
    )
    assert len(check.dns) == len(check.ping) == 2


# -- validation, before any I/O ---------------------------------------------------------------

BAD_CGI_PATHS = [
    pytest.param("cgi-bin/qrcode/create", "start with '/'", id="no-leading-slash"),
    pytest.param("https://api.weixin.qq.com/cgi-bin/qrcode/create", "without host", id="host"),
    pytest.param("//api.weixin.qq.com/cgi-bin/x", "without host", id="protocol-relative"),
    pytest.param("/cgi-bin/qrcode/create?access_token=x", "query", id="query"),
    pytest.param("/cgi-bin/qrcode/create#x", "fragment", id="fragment"),
    pytest.param("/cgi-bin/qr code", "no spaces", id="space"),
    pytest.param("/sns/userinfo", "/sns/", id="sns"),
    pytest.param("", "1..256", id="empty"),
    pytest.param("/" + "a" * 256, "1..256", id="too-long"),
    pytest.param(42, "string", id="not-a-string"),
]


@pytest.mark.parametrize(("value", "message"), BAD_CGI_PATHS)
@pytest.mark.parametrize("method", ["get_quota", "clear_api_quota"])
async def test_a_bad_cgi_path_is_refused_before_any_request(method, value, message):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await getattr(wx.openapi, method)(value)
    assert info.value.argument == "cgi_path"
    assert message in str(info.value)
    assert fake.requests == []  # not even a token fetch


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("617682e0-09059ac5", id="two-groups"),
        pytest.param("617682e0-09059ac5-34a8e2eg", id="not-hex"),
        pytest.param("vJOTwa0300ha57", id="old-hint"),
        pytest.param(" 617682e0-09059ac5-34a8e2ea", id="space"),
        pytest.param(617682, id="number"),
    ],
)
async def test_a_bad_rid_is_refused_before_any_request(value):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await wx.openapi.get_rid(value)
    assert info.value.argument == "rid"
    assert fake.requests == []


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        pytest.param({"action": "trace"}, "action", id="action"),
        pytest.param({"operator": "default"}, "operator", id="operator-case"),
        pytest.param({"operator": "CMCC"}, "operator", id="operator"),
    ],
)
async def test_check_callback_arguments_are_validated(kwargs, argument):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await wx.openapi.check_callback(**kwargs)
    assert info.value.argument == argument
    assert fake.requests == []


async def test_clear_quota_validates_an_explicit_appid():
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError, match="appid"):
            await wx.openapi.clear_quota(appid="")
    assert fake.requests == []


# -- the AppSecret call ------------------------------------------------------------------------


async def test_clear_quota_with_secret_refuses_a_token_provider_client():
    async def provider() -> str:
        return "PROVIDED"

    fake = FakeWeChat()
    async with fake.client(token_provider=provider) as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await wx.openapi.clear_quota_with_secret()
    assert info.value.argument == "secret"
    assert "token_provider" in str(info.value)
    assert fake.requests == []


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(error(48006), id="48006"),
        pytest.param(error(40125), id="40125"),
        pytest.param(httpx.Response(502), id="http-502"),
        pytest.param(raises(httpx.ReadTimeout), id="read-timeout"),
    ],
)
async def test_the_secret_never_leaves_the_body(answer, caplog):
    fake = FakeWeChat()
    fake.reply("cgi-bin/clear_quota/v2", answer)
    with caplog.at_level(logging.DEBUG):
        async with fake.client(retry_backoff=0) as wx:
            with pytest.raises(wxqr.WxqrError) as info:
                await wx.openapi.clear_quota_with_secret()
    (request,) = fake.calls("cgi-bin/clear_quota/v2")
    assert SECRET in request.content.decode()  # it is sent, in the body ...
    assert SECRET not in str(request.url)  # ... and nowhere else
    shown = [
        str(info.value),
        repr(info.value),
        # a traceback with every frame's locals, as Sentry or rich would print it
        "".join(
            traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
        ),
        *(record.getMessage() for record in caplog.records),
    ]
    assert not [text for text in shown if SECRET in text]


# -- budgets: the clears are never resent -------------------------------------------------------

CLEARS = [
    pytest.param(lambda wx: wx.openapi.clear_quota(), "cgi-bin/clear_quota", id="clear_quota"),
    pytest.param(
        lambda wx: wx.openapi.clear_quota_with_secret(),
        "cgi-bin/clear_quota/v2",
        id="clear_quota_with_secret",
    ),
    pytest.param(
        lambda wx: wx.openapi.clear_api_quota(QUOTA_PATH),
        "cgi-bin/openapi/quota/clear",
        id="clear_api_quota",
    ),
]


@pytest.mark.parametrize(("call", "path"), CLEARS)
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(error(-1), wxqr.SystemBusyError, id="busy"),
        pytest.param(httpx.Response(503), wxqr.HTTPStatusError, id="http-503"),
        pytest.param(raises(httpx.ReadError), wxqr.TransportError, id="dropped"),
        pytest.param(b"<html>oops</html>", wxqr.ResponseDecodeError, id="html"),
    ],
)
async def test_a_clear_that_may_have_reached_wechat_is_not_resent(call, path, answer, expected):
    fake = FakeWeChat()
    script(fake)
    fake.reply(path, answer)
    async with fake.client(retry_backoff=0, max_retries=5) as wx:
        with pytest.raises(expected):
            await call(wx)
    assert len(fake.calls(path)) == 1


@pytest.mark.parametrize(("call", "path"), CLEARS)
async def test_a_clear_that_never_left_is_retried(call, path):
    fake = FakeWeChat()
    script(fake)
    fake.reply(path, raises(httpx.ConnectError))
    async with fake.client(retry_backoff=0) as wx:
        await call(wx)
    assert len(fake.calls(path)) == 2


async def test_the_quota_queries_are_retried_when_busy():
    fake = FakeWeChat()
    script(fake)
    fake.reply("cgi-bin/openapi/quota/get", error(-1))
    fake.reply("cgi-bin/openapi/rid/get", error(-1))
    async with fake.client(retry_backoff=0) as wx:
        await wx.openapi.get_quota(QUOTA_PATH)
        await wx.openapi.get_rid(RID)
    assert len(fake.calls("cgi-bin/openapi/quota/get")) == 2
    assert len(fake.calls("cgi-bin/openapi/rid/get")) == 2


@pytest.mark.parametrize(("call", "path"), CLEARS[:2])
async def test_48006_is_a_quota_error(call, path):
    fake = FakeWeChat()
    fake.reply(path, error(48006))
    async with fake.client() as wx:
        with pytest.raises(wxqr.QuotaExceededError) as info:
            await call(wx)
    assert info.value.errcode == 48006
    assert info.value.rid == RID
    assert "10 quota clears" in info.value.meaning


async def test_45009_from_clear_api_quota_means_the_monthly_50():
    fake = FakeWeChat()
    fake.reply("cgi-bin/openapi/quota/clear", error(45009))
    async with fake.client() as wx:
        with pytest.raises(wxqr.QuotaExceededError) as info:
            await wx.openapi.clear_api_quota(QUOTA_PATH)
    assert "50 clear_api_quota" in info.value.meaning
    assert len(fake.calls("cgi-bin/openapi/quota/clear")) == 1


# -- from an error to its record ----------------------------------------------------------------


async def test_an_api_error_leads_to_its_record():
    fake = FakeWeChat()
    script(fake)
    fake.reply("cgi-bin/qrcode/create", error(45009))
    async with fake.client() as wx:
        with pytest.raises(wxqr.APIError) as info:
            await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
        record = await wx.openapi.get_rid(info.value.rid)
    (request,) = fake.calls("cgi-bin/openapi/rid/get")
    assert body_of(request) == {"rid": info.value.rid}
    assert info.value.rid in record.response_body


# -- 45009 by endpoint, and the catalogue ---------------------------------------------------------


def test_45009_means_a_minute_limit_on_getwxacodeunlimit_only():
    daily = wxqr.QuotaExceededError(45009, "x", endpoint="cgi-bin/qrcode/create")
    minute = wxqr.QuotaExceededError(45009, "x", endpoint="wxa/getwxacodeunlimit")
    assert "daily quota" in daily.meaning
    assert "5,000 calls/minute" in minute.meaning
    assert "clear" not in minute.meaning.split(";")[0]
    assert minute.meaning != daily.meaning


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_wx_method_the_catalogue_recommends_exists(code):
    row = CATALOGUE[code]
    client = wxqr.Client(APPID, SECRET)
    for text in (row.meaning, *row.per_endpoint.values()):
        for resource, method in re.findall(r"\bwx\.(\w+)\.(\w+)\(", text):
            assert callable(getattr(getattr(client, resource), method)), (code, resource, method)
    # per_endpoint keys are endpoint names as APIError.endpoint has them (no leading '/')
    assert not [endpoint for endpoint in row.per_endpoint if endpoint.startswith("/")]


def test_the_45009_advice_names_the_openapi_methods():
    meaning = CATALOGUE[45009].meaning
    assert "wx.openapi.clear_quota()" in meaning
    assert "wx.openapi.get_quota(" in meaning
    assert "clear_api_quota(" in meaning


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        pytest.param(40166, wxqr.InvalidRequestError, id="40166-invalid-appid-param"),
        pytest.param(40201, wxqr.InvalidRequestError, id="40201-no-callback-url"),
        pytest.param(40202, wxqr.InvalidRequestError, id="40202-bad-action"),
        pytest.param(40203, wxqr.InvalidRequestError, id="40203-bad-operator"),
        pytest.param(48006, wxqr.QuotaExceededError, id="48006-clear-limit"),
        pytest.param(76001, wxqr.InvalidRequestError, id="76001-rid-not-found"),
        pytest.param(76002, wxqr.InvalidRequestError, id="76002-rid-malformed"),
        pytest.param(76003, wxqr.InvalidRequestError, id="76003-rid-not-yours"),
        pytest.param(76004, wxqr.InvalidRequestError, id="76004-rid-too-old"),
        pytest.param(76021, wxqr.InvalidRequestError, id="76021-cgi-path-unknown"),
        pytest.param(76022, wxqr.InvalidRequestError, id="76022-cgi-path-not-yours"),
        pytest.param(85076, wxqr.InvalidRequestError, id="85076-undocumented-jump"),
    ],
)
async def test_openapi_and_new_errcodes_raise_their_class(code, error_class):
    fake = FakeWeChat()
    fake.reply("cgi-bin/wxopen/qrcodejumpget", error(code))
    async with fake.client() as wx:
        with pytest.raises(error_class) as info:
            await wx.qrcode_jump.get()
    assert type(info.value) is error_class
    assert info.value.errcode == code
    assert not info.value.retryable
    assert len(fake.calls("cgi-bin/wxopen/qrcodejumpget")) == 1
