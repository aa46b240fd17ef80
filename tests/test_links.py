"""``wx.links``: every request body, every model, every limit, the rate bucket and the errcodes.

Bodies are written out in full (a missing ``expire_type`` or a stray ``is_expire`` fails here);
every refused argument asserts ``ValidationError``, its argument name, the rule, and that WeChat
saw no request at all, not even a token fetch.
"""

from __future__ import annotations

import inspect
import time
import types
import warnings
from datetime import datetime, timedelta, timezone

import anyio
import pytest
from mockwechat import FakeWeChat, body_of, error

import wxqr
from wxqr.resources import Links

pytestmark = pytest.mark.anyio

API = "api.weixin.qq.com"
OPENLINK = "weixin://dl/business/?t=XTSkBZlzqmn"
URL_LINK = "https://wxaurl.cn/BQZRrcFCPvg"
SHORT_LINK = "#小程序://小程序示例/示例页面/9pZvnVw3KMCQpVp"
OK = {"errcode": 0, "errmsg": "ok"}
DAY = 86400


def in_seconds(seconds: int) -> int:
    return int(time.time()) + seconds


FIXED_AT = in_seconds(7 * DAY)  # an expires_at every test run accepts (7 days ahead)
FIXED_DT = datetime.fromtimestamp(FIXED_AT, tz=timezone(timedelta(hours=8)))

SCHEME_ANSWER = {**OK, "openlink": OPENLINK}
URL_LINK_ANSWER = {**OK, "url_link": URL_LINK}
SHORT_LINK_ANSWER = {**OK, "link": SHORT_LINK}
# The official queryscheme example, plus the fields older revisions returned (links.md §3, L6).
SCHEME_INFO_ANSWER = {
    **OK,
    "scheme_info": {
        "appid": "wx7f8a9b0c1d2e3f40",
        "path": "pages/index/index",
        "query": "a=1",
        "create_time": 611928113,
        "expire_time": 0,
        "env_version": "release",
    },
    "visit_openid": "",
    "scheme_quota": {"long_time_used": 100, "long_time_limit": 100000},
}
URL_LINK_INFO_ANSWER = {
    **OK,
    "url_link_info": {
        "appid": "wx7f8a9b0c1d2e3f40",
        "path": "pages/index/index",
        "query": "a=hello",
        "create_time": 1611928113,
        "expire_time": 1612928113,
        "env_version": "trial",
        "cloud_base": {
            "env": "cloud-1",
            "doamin": "cloud-1.tcloudbaseapp.com",  # sic, as in the official example
            "path": "/jump-mp.html",
            "query": "a=b",
            "resource_appid": "",
        },
    },
    "visit_openid": "",
}

ENDPOINTS = [
    # -- generatescheme: the expire_type mapping ----------------------------------------------
    pytest.param(
        lambda wx: wx.links.generate_scheme(),
        "wxa/generatescheme",
        {},
        SCHEME_ANSWER,
        wxqr.Scheme(openlink=OPENLINK),
        id="scheme-defaults-nothing-sent",
    ),
    pytest.param(
        lambda wx: wx.links.generate_scheme(
            path="pages/index/index", query="id=7", env_version="release", expires_in_days=30
        ),
        "wxa/generatescheme",
        {
            "jump_wxa": {"path": "pages/index/index", "query": "id=7", "env_version": "release"},
            "expire_type": 1,
            "expire_interval": 30,
        },
        SCHEME_ANSWER,
        wxqr.Scheme(openlink=OPENLINK),
        id="scheme-expires_in_days-type-1",
    ),
    pytest.param(
        lambda wx: wx.links.generate_scheme(
            path="/pages/a/a", query="k=%E4%BD%A0&x=!#$&'()*+,/:;=?@-._~", expires_at=FIXED_AT
        ),
        "wxa/generatescheme",
        {
            "jump_wxa": {"path": "/pages/a/a", "query": "k=%E4%BD%A0&x=!#$&'()*+,/:;=?@-._~"},
            "expire_type": 0,
            "expire_time": FIXED_AT,
        },
        SCHEME_ANSWER,
        wxqr.Scheme(openlink=OPENLINK),
        id="scheme-expires_at-int-type-0",
    ),
    pytest.param(
        lambda wx: wx.links.generate_scheme(env_version="trial", expires_at=FIXED_DT),
        "wxa/generatescheme",
        {"jump_wxa": {"env_version": "trial"}, "expire_type": 0, "expire_time": FIXED_AT},
        SCHEME_ANSWER,
        wxqr.Scheme(openlink=OPENLINK),
        id="scheme-expires_at-datetime-in-seconds",
    ),
    # -- queryscheme --------------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.links.query_scheme(OPENLINK + "&cq=a%3Dhello"),
        "wxa/queryscheme",
        {"scheme": OPENLINK + "&cq=a%3Dhello", "query_type": 0},
        SCHEME_INFO_ANSWER,
        wxqr.SchemeInfo(
            appid="wx7f8a9b0c1d2e3f40",
            path="pages/index/index",
            query="a=1",
            create_time=611928113,
            expire_time=0,
            env_version="release",
        ),
        id="query_scheme-tolerates-visit_openid-scheme_quota",
    ),
    pytest.param(
        lambda wx: wx.links.query_scheme("weixin://dl/business/?appid=wx1&path=pages/a/a"),
        "wxa/queryscheme",
        {"scheme": "weixin://dl/business/?appid=wx1&path=pages/a/a", "query_type": 0},
        {
            **OK,
            "scheme_info": {"appid": "wx1", "path": "pages/a/a", "query": "", "env_version": ""},
        },
        wxqr.SchemeInfo(appid="wx1", path="pages/a/a", query="", env_version=""),
        id="query_scheme-plaintext-without-times",
    ),
    pytest.param(
        lambda wx: wx.links.remaining_visits(),
        "wxa/queryscheme",
        {"query_type": 1},
        {**OK, "quota_info": {"remain_visit_quota": 2999990}},
        2999990,
        id="remaining_visits-query_type-1",
    ),
    # -- generatenfcscheme ---------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.links.generate_nfc_scheme(model_id="mdl-123"),
        "wxa/generatenfcscheme",
        {"model_id": "mdl-123"},
        SCHEME_ANSWER,
        wxqr.Scheme(openlink=OPENLINK),
        id="nfc-model_id-only",
    ),
    pytest.param(
        lambda wx: wx.links.generate_nfc_scheme(
            model_id="mdl-123", sn="SN0001", path="pages/a/a", query="x=1", env_version="develop"
        ),
        "wxa/generatenfcscheme",
        {
            "jump_wxa": {"path": "pages/a/a", "query": "x=1", "env_version": "develop"},
            "model_id": "mdl-123",
            "sn": "SN0001",
        },
        SCHEME_ANSWER,
        wxqr.Scheme(openlink=OPENLINK),
        id="nfc-full",
    ),
    # -- generate_urllink ----------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.links.generate_url_link(),
        "wxa/generate_urllink",
        {},
        URL_LINK_ANSWER,
        wxqr.UrlLink(url_link=URL_LINK),
        id="urllink-defaults-nothing-sent",
    ),
    pytest.param(
        lambda wx: wx.links.generate_url_link(
            path="pages/index/index", query="a=1", env_version="trial", expires_in_days=7
        ),
        "wxa/generate_urllink",
        {
            "path": "pages/index/index",
            "query": "a=1",
            "env_version": "trial",
            "expire_type": 1,
            "expire_interval": 7,
        },
        URL_LINK_ANSWER,
        wxqr.UrlLink(url_link=URL_LINK),
        id="urllink-expires_in_days-type-1",
    ),
    pytest.param(
        lambda wx: wx.links.generate_url_link(
            expires_at=FIXED_AT,
            cloud_base=wxqr.CloudBase(
                env="cloud-1", domain="d.example.com", path="/h5.html", query="a=b"
            ),
        ),
        "wxa/generate_urllink",
        {
            "expire_type": 0,
            "expire_time": FIXED_AT,
            "cloud_base": {
                "env": "cloud-1",
                "domain": "d.example.com",
                "path": "/h5.html",
                "query": "a=b",
            },
        },
        URL_LINK_ANSWER,
        wxqr.UrlLink(url_link=URL_LINK),
        id="urllink-expires_at-cloud_base",
    ),
    # -- query_urllink -------------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.links.query_url_link(URL_LINK + "?cq=a=hello"),
        "wxa/query_urllink",
        {"url_link": URL_LINK + "?cq=a=hello", "query_type": 0},
        URL_LINK_INFO_ANSWER,
        wxqr.UrlLinkInfo(
            appid="wx7f8a9b0c1d2e3f40",
            path="pages/index/index",
            query="a=hello",
            create_time=1611928113,
            expire_time=1612928113,
            env_version="trial",
            cloud_base=wxqr.CloudBase(
                env="cloud-1",
                domain="cloud-1.tcloudbaseapp.com",
                path="/jump-mp.html",
                query="a=b",
            ),
        ),
        id="query_url_link-doamin-spelling",
    ),
    pytest.param(
        lambda wx: wx.links.query_url_link(URL_LINK),
        "wxa/query_urllink",
        {"url_link": URL_LINK, "query_type": 0},
        {
            **OK,
            "url_link_info": {
                "appid": "wx1",
                "path": "",
                "query": "",
                "create_time": 1,
                "expire_time": 2,
                "env_version": "release",
                "cloud_base": {"env": "e", "domain": "x.example.com"},
            },
        },
        wxqr.UrlLinkInfo(
            appid="wx1",
            create_time=1,
            expire_time=2,
            cloud_base=wxqr.CloudBase(env="e", domain="x.example.com"),
        ),
        id="query_url_link-domain-spelling",
    ),
    # -- genwxashortlink -----------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.links.generate_short_link("pages/index/index?id=7"),
        "wxa/genwxashortlink",
        {"page_url": "pages/index/index?id=7", "is_permanent": False},
        SHORT_LINK_ANSWER,
        SHORT_LINK,
        id="short_link-defaults",
    ),
    pytest.param(
        lambda wx: wx.links.generate_short_link(
            "pages/index/index", title="Spring sale", permanent=True
        ),
        "wxa/genwxashortlink",
        {"page_url": "pages/index/index", "page_title": "Spring sale", "is_permanent": True},
        SHORT_LINK_ANSWER,
        SHORT_LINK,
        id="short_link-permanent-titled",
    ),
]


@pytest.mark.parametrize(("call", "path", "body", "answer", "result"), ENDPOINTS)
async def test_request_body_and_result(call, path, body, answer, result):
    fake = FakeWeChat()
    fake.reply(path, answer)
    async with fake.client() as wx:
        assert await call(wx) == result
    (request,) = fake.api_requests
    assert request.method == "POST"
    assert (request.url.host, request.url.path) == (API, "/" + path)
    assert request.url.params["access_token"] == fake.issued[0]
    assert body_of(request) == body
    assert "is_expire" not in request.content.decode()


@pytest.mark.parametrize(
    ("call", "path", "answer"),
    [
        pytest.param(
            lambda wx: wx.links.generate_scheme(), "wxa/generatescheme", OK, id="scheme-no-openlink"
        ),
        pytest.param(
            lambda wx: wx.links.generate_url_link(),
            "wxa/generate_urllink",
            {**OK, "url_link": {"x": 1}},
            id="urllink-not-a-string",
        ),
        pytest.param(
            lambda wx: wx.links.query_scheme(OPENLINK), "wxa/queryscheme", OK, id="no-scheme_info"
        ),
        pytest.param(
            lambda wx: wx.links.query_scheme(OPENLINK),
            "wxa/queryscheme",
            {**OK, "scheme_info": {"create_time": "soon"}},
            id="scheme_info-bad-time",
        ),
        pytest.param(
            lambda wx: wx.links.remaining_visits(),
            "wxa/queryscheme",
            {**OK, "quota_info": {"remain_visit_quota": "lots"}},
            id="quota-not-an-int",
        ),
        pytest.param(
            lambda wx: wx.links.query_url_link(URL_LINK),
            "wxa/query_urllink",
            {**OK, "url_link_info": {"cloud_base": "x"}},
            id="cloud_base-not-an-object",
        ),
        pytest.param(
            lambda wx: wx.links.generate_short_link("pages/a/a"),
            "wxa/genwxashortlink",
            {**OK, "link": ""},
            id="short_link-empty",
        ),
    ],
)
async def test_bad_answers_are_typed_errors(call, path, answer):
    fake = FakeWeChat()
    fake.reply(path, answer)
    async with fake.client(max_retries=0) as wx:
        with pytest.raises(wxqr.ResponseDecodeError) as info:
            await call(wx)
    assert info.value.endpoint == path


# -- validation: every limit, before any I/O ----------------------------------------------------


def scheme(**kw):
    return lambda wx: wx.links.generate_scheme(**kw)


def urllink(**kw):
    return lambda wx: wx.links.generate_url_link(**kw)


def nfc(**kw):
    kw.setdefault("model_id", "mdl-1")
    return lambda wx: wx.links.generate_nfc_scheme(**kw)


def short(page_url="pages/a/a", **kw):
    return lambda wx: wx.links.generate_short_link(page_url, **kw)


CHARSET = "!#$&'()*+,/:;=?@-._~%"


def ahead(method, when):
    # expires_at computed when the test runs, not when it is collected (the window is relative)
    return lambda wx: method(expires_at=when())(wx)


REFUSED = [
    # -- expiry: exactly one of the two, each in range ----------------------------------------
    pytest.param(
        scheme(expires_at=FIXED_AT, expires_in_days=3),
        "expires_at/expires_in_days",
        "at most one",
        id="expiry-both",
    ),
    pytest.param(scheme(expires_in_days=0), "expires_in_days", "1..30", id="days-0"),
    pytest.param(scheme(expires_in_days=31), "expires_in_days", "1..30", id="days-31"),
    pytest.param(scheme(expires_in_days=7.0), "expires_in_days", "1..30", id="days-float"),
    pytest.param(scheme(expires_in_days=True), "expires_in_days", "1..30", id="days-bool"),
    pytest.param(
        scheme(expires_at=FIXED_AT * 1000), "expires_at", "milliseconds", id="at-milliseconds"
    ),
    pytest.param(
        ahead(scheme, lambda: in_seconds(30)), "expires_at", "60 s .. 30 days", id="at-30s-ahead"
    ),
    pytest.param(
        ahead(scheme, lambda: in_seconds(-3600)), "expires_at", "60 s", id="at-in-the-past"
    ),
    pytest.param(
        ahead(scheme, lambda: in_seconds(30 * DAY + 120)), "expires_at", "30 days", id="at-31-days"
    ),
    pytest.param(
        ahead(urllink, lambda: datetime.now(timezone.utc) + timedelta(days=31)),
        "expires_at",
        "30 days",
        id="urllink-at-datetime-31-days",
    ),
    pytest.param(
        ahead(scheme, lambda: datetime.now() + timedelta(days=1)),
        "expires_at",
        "timezone-aware",
        id="at-naive",
    ),
    pytest.param(scheme(expires_at=float(FIXED_AT)), "expires_at", "integer", id="at-float"),
    pytest.param(scheme(expires_at="tomorrow"), "expires_at", "integer", id="at-str"),
    pytest.param(urllink(expires_in_days=45), "expires_in_days", "1..30", id="urllink-days-45"),
    # -- query: charset and length --------------------------------------------------------------
    pytest.param(scheme(query="x" * 1025), "query", "0..1024", id="query-1025"),
    pytest.param(scheme(query="a=你好"), "query", CHARSET, id="query-non-ascii"),
    pytest.param(scheme(query="a=b c"), "query", "' '", id="query-space"),
    pytest.param(urllink(query='a="b"'), "query", CHARSET, id="urllink-query-quote"),
    pytest.param(nfc(query="a=<b>"), "query", CHARSET, id="nfc-query-angle"),
    pytest.param(scheme(query=7), "query", "string", id="query-int"),
    # -- path: no query ---------------------------------------------------------------------------
    pytest.param(scheme(path="pages/a/a?id=1"), "path", "query=", id="scheme-path-with-query"),
    pytest.param(urllink(path="pages/a/a?id=1"), "path", "query=", id="urllink-path-with-query"),
    pytest.param(nfc(path="pages/a/a?x"), "path", "query=", id="nfc-path-with-query"),
    pytest.param(scheme(path="pages/a a"), "path", "whitespace", id="path-space"),
    pytest.param(scheme(path="p" * 1025), "path", "0..1024", id="path-1025"),
    # -- env_version ------------------------------------------------------------------------------
    pytest.param(
        scheme(env_version="prod"), "env_version", "'release', 'trial', 'develop'", id="env-prod"
    ),
    pytest.param(urllink(env_version="RELEASE"), "env_version", "'release'", id="urllink-env"),
    pytest.param(nfc(env_version=""), "env_version", "'release'", id="nfc-env-empty"),
    # -- NFC --------------------------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.links.generate_nfc_scheme(model_id=None), "model_id", "string", id="nfc-none"
    ),
    pytest.param(nfc(model_id=""), "model_id", "1..128", id="nfc-model_id-empty"),
    pytest.param(nfc(sn=""), "sn", "1..128", id="nfc-sn-empty"),
    # -- cloud_base -------------------------------------------------------------------------------
    pytest.param(
        urllink(cloud_base={"env": "e"}), "cloud_base", "wxqr.CloudBase", id="cloud_base-dict"
    ),
    pytest.param(
        urllink(cloud_base=wxqr.CloudBase()), "cloud_base.env", "1..128", id="cloud_base-no-env"
    ),
    pytest.param(
        urllink(cloud_base=wxqr.CloudBase(env="e", path="/h5?x=1")),
        "cloud_base.path",
        "query",
        id="cloud_base-path-query",
    ),
    pytest.param(
        urllink(cloud_base=wxqr.CloudBase(env="e", query="a b")),
        "cloud_base.query",
        CHARSET,
        id="cloud_base-query-space",
    ),
    # -- Short Link: page_url with optional query, title ------------------------------------------
    pytest.param(short(""), "page_url", "1..1024", id="short-empty"),
    pytest.param(short("p" * 1025), "page_url", "1..1024", id="short-1025"),
    pytest.param(short("?id=7"), "page_url", "page path", id="short-query-only"),
    pytest.param(short("pages/a a"), "page_url", "page path", id="short-space"),
    pytest.param(short("pages/a/a?x=你"), "page_url", CHARSET, id="short-query-charset"),
    pytest.param(short(title="x" * 257), "title", "0..256", id="short-title-257"),
    pytest.param(short(title=5), "title", "string", id="short-title-int"),
    pytest.param(short(permanent=1), "permanent", "True or False", id="short-permanent-int"),
    # -- queries ----------------------------------------------------------------------------------
    pytest.param(
        lambda wx: wx.links.query_scheme(""), "scheme", "1..2048", id="query_scheme-empty"
    ),
    pytest.param(
        lambda wx: wx.links.query_url_link("wxaurl.cn/x"),
        "url_link",
        "https://",
        id="url_link-bare",
    ),
]


@pytest.mark.parametrize(("call", "argument", "fragment"), REFUSED)
async def test_refused_before_any_request(call, argument, fragment):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await call(wx)
    assert info.value.argument == argument
    assert fragment in str(info.value)
    assert fake.requests == []  # not even a token fetch


@pytest.mark.parametrize(
    ("call", "path", "key", "sent"),
    [
        pytest.param(
            scheme(expires_in_days=1), "wxa/generatescheme", "expire_interval", 1, id="days-1"
        ),
        pytest.param(
            urllink(expires_in_days=30), "wxa/generate_urllink", "expire_interval", 30, id="days-30"
        ),
        pytest.param(
            scheme(query="q" * 1024), "wxa/generatescheme", "query", "q" * 1024, id="query-1024"
        ),
        pytest.param(urllink(query=""), "wxa/generate_urllink", "query", "", id="query-empty"),
        pytest.param(urllink(path=""), "wxa/generate_urllink", "path", "", id="path-empty-home"),
        pytest.param(
            short("p" * 1024), "wxa/genwxashortlink", "page_url", "p" * 1024, id="page_url-1024"
        ),
    ],
)
async def test_boundaries_are_sent_unchanged(call, path, key, sent):
    fake = FakeWeChat()
    fake.reply(path, {**SCHEME_ANSWER, **URL_LINK_ANSWER, **SHORT_LINK_ANSWER})
    async with fake.client() as wx:
        await call(wx)
    body = body_of(fake.calls(path)[0])
    assert body.get(key, body.get("jump_wxa", {}).get(key)) == sent


async def test_expires_at_window_edges_are_accepted():
    fake = FakeWeChat()
    fake.reply_always("wxa/generatescheme", SCHEME_ANSWER)
    async with fake.client() as wx:
        low, high = in_seconds(90), in_seconds(30 * DAY - 30)
        await wx.links.generate_scheme(expires_at=low)
        await wx.links.generate_scheme(expires_at=high)
    sent = [body_of(r)["expire_time"] for r in fake.calls("wxa/generatescheme")]
    assert sent == [low, high]


# -- the whole message of each refusal, and the expiry window to the second ----------------------

NOW = 1_800_000_000  # 2027-01-15, the frozen clock of the window-edge tests


@pytest.fixture
def frozen_now(monkeypatch):
    """``wx.links`` reads the wall clock once per call to place ``expires_at``: freeze it."""
    import wxqr.resources.links as links_module

    monkeypatch.setattr(links_module, "time", types.SimpleNamespace(time=lambda: float(NOW)))
    return NOW


QUERY_RULE = "may only contain 0-9 a-z A-Z and !#$&'()*+,/:;=?@-._~% (url-encode anything else)"

REFUSED_MESSAGES = [
    pytest.param(
        scheme(expires_at=FIXED_AT, expires_in_days=3),
        "expires_at/expires_in_days: pass at most one of expires_at or expires_in_days",
        id="expiry-both",
    ),
    pytest.param(
        ahead(urllink, lambda: datetime.now() + timedelta(days=1)),
        "expires_at: a datetime must be timezone-aware (e.g. tzinfo=timezone.utc)",
        id="at-naive",
    ),
    pytest.param(
        scheme(expires_at=10**11),
        "expires_at: must be Unix time in seconds; 100000000000 looks like milliseconds",
        id="at-10**11-is-milliseconds",
    ),
    pytest.param(
        scheme(expires_at=float(FIXED_AT)),
        "expires_at: must be a datetime or integer Unix seconds, got float",
        id="at-float",
    ),
    pytest.param(
        urllink(expires_at="tomorrow"),
        "expires_at: must be a datetime or integer Unix seconds, got str",
        id="at-str",
    ),
    pytest.param(
        scheme(path="pages/a/a?id=1"),
        "path: must not contain a query ('?'); pass it as query=",
        id="path-with-query",
    ),
    pytest.param(
        urllink(path="pages/a\ta"), "path: must not contain whitespace", id="path-with-tab"
    ),
    pytest.param(scheme(query="a=b c<"), f"query: {QUERY_RULE}, found ' <'", id="query-two-bad"),
    pytest.param(
        urllink(query="a=你好"), f"query: {QUERY_RULE}, found '你好'", id="query-non-ascii"
    ),
    pytest.param(
        short('pages/a/a?x="1"<'), f"page_url: {QUERY_RULE}, found '\"<'", id="page_url-query"
    ),
    pytest.param(
        short("pages/a a?x=1"),
        "page_url: must start with a page path without whitespace (e.g. 'pages/a/a?x=1')",
        id="page_url-space",
    ),
    pytest.param(
        short("?x=1"),
        "page_url: must start with a page path without whitespace (e.g. 'pages/a/a?x=1')",
        id="page_url-no-page",
    ),
]


@pytest.mark.parametrize(("call", "message"), REFUSED_MESSAGES)
async def test_each_refusal_names_the_argument_and_the_rule_in_full(call, message):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await call(wx)
    assert str(info.value) == message
    assert info.value.argument == message.split(":")[0]
    assert fake.requests == []  # not even a token fetch


async def test_just_below_10_to_the_11_is_seconds_far_in_the_future():
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await wx.links.generate_scheme(expires_at=10**11 - 1)
    assert "milliseconds" not in str(info.value)
    assert str(info.value).startswith("expires_at: must be 60 s .. 30 days (2592000 s) from now")
    assert fake.requests == []


@pytest.mark.parametrize("method", ["generate_scheme", "generate_url_link"])
@pytest.mark.parametrize("seconds_ahead", [60, 30 * DAY], ids=["exactly-60-s", "exactly-30-days"])
async def test_expires_at_on_the_window_edge_is_sent(frozen_now, method, seconds_ahead):
    fake = FakeWeChat()
    fake.reply_always("wxa/generatescheme", SCHEME_ANSWER)
    fake.reply_always("wxa/generate_urllink", URL_LINK_ANSWER)
    async with fake.client() as wx:
        await getattr(wx.links, method)(expires_at=NOW + seconds_ahead)
    [request] = fake.api_requests
    assert body_of(request) == {"expire_type": 0, "expire_time": NOW + seconds_ahead}


@pytest.mark.parametrize("method", ["generate_scheme", "generate_url_link"])
@pytest.mark.parametrize(
    "seconds_ahead", [59, 30 * DAY + 1, 0, -1], ids=["59-s", "30-days-1-s", "now", "past"]
)
async def test_expires_at_one_second_outside_the_window_is_refused(
    frozen_now, method, seconds_ahead
):
    fake = FakeWeChat()
    async with fake.client() as wx:
        with pytest.raises(wxqr.ValidationError) as info:
            await getattr(wx.links, method)(expires_at=NOW + seconds_ahead)
    assert str(info.value) == (
        f"expires_at: must be 60 s .. 30 days (2592000 s) from now, got {seconds_ahead:+d} s"
    )
    assert fake.requests == []


async def test_an_aware_datetime_on_the_edge_is_sent_as_whole_seconds(frozen_now):
    fake = FakeWeChat()
    fake.reply_always("wxa/generatescheme", SCHEME_ANSWER)
    beijing = timezone(timedelta(hours=8))
    async with fake.client() as wx:
        edge = datetime.fromtimestamp(NOW + 30 * DAY, tz=beijing)
        await wx.links.generate_scheme(expires_at=edge)
        with pytest.raises(wxqr.ValidationError, match=r"got \+2592001 s"):
            await wx.links.generate_scheme(expires_at=edge + timedelta(seconds=1))
    [request] = fake.api_requests
    assert body_of(request)["expire_time"] == NOW + 30 * DAY


async def test_a_long_title_warns_about_the_20_character_truncation():
    fake = FakeWeChat()
    fake.reply_always("wxa/genwxashortlink", SHORT_LINK_ANSWER)
    async with fake.client() as wx:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await wx.links.generate_short_link("pages/a/a", title="x" * 20)  # no warning
        with pytest.warns(UserWarning, match="first 20"):
            await wx.links.generate_short_link("pages/a/a", title="x" * 21)
    assert body_of(fake.calls("wxa/genwxashortlink")[1])["page_title"] == "x" * 21


# -- errcodes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "path", "errcode", "cls", "meaning"),
    [
        pytest.param(
            scheme(),
            "wxa/generatescheme",
            44993,
            wxqr.QuotaExceededError,
            "500,000",
            id="44993-daily-generation",
        ),
        pytest.param(
            urllink(),
            "wxa/generate_urllink",
            85406,
            wxqr.QuotaExceededError,
            "opening quota",
            id="85406-visits",
        ),
        pytest.param(
            short(permanent=True),
            "wxa/genwxashortlink",
            85400,
            wxqr.QuotaExceededError,
            "100,000 permanent",
            id="85400-permanent-cap",
        ),
        pytest.param(
            short(),
            "wxa/genwxashortlink",
            45009,
            wxqr.QuotaExceededError,
            "10,000,000 Short Links",
            id="45009-short-link-meaning",
        ),
        pytest.param(
            scheme(),
            "wxa/generatescheme",
            85079,
            wxqr.PermissionDeniedError,
            "no released version",
            id="85079-unreleased",
        ),
        pytest.param(
            scheme(),
            "wxa/generatescheme",
            85401,
            wxqr.InvalidRequestError,
            "30 days",
            id="85401-expiry",
        ),
        pytest.param(
            lambda wx: wx.links.query_scheme(OPENLINK),
            "wxa/queryscheme",
            85403,
            wxqr.InvalidRequestError,
            "not found",
            id="85403-unknown-scheme",
        ),
        pytest.param(
            lambda wx: wx.links.query_url_link(URL_LINK),
            "wxa/query_urllink",
            85403,
            wxqr.InvalidRequestError,
            "not found",
            id="85403-unknown-url-link",
        ),
        pytest.param(
            short(),
            "wxa/genwxashortlink",
            43104,
            wxqr.PermissionDeniedError,
            "e-commerce",
            id="43104-category",
        ),
        pytest.param(
            nfc(),
            "wxa/generatenfcscheme",
            9800008,
            wxqr.InvalidRequestError,
            "needs sn",
            id="9800008-sn",
        ),
        pytest.param(
            nfc(),
            "wxa/generatenfcscheme",
            40002,
            wxqr.CredentialError,
            "NFC",
            id="40002-nfc-meaning",
        ),
        pytest.param(
            scheme(),
            "wxa/generatescheme",
            40212,
            wxqr.InvalidRequestError,
            "k1=v1",
            id="40212-query",
        ),
    ],
)
async def test_errcodes_raise_their_class_with_the_link_meaning(call, path, errcode, cls, meaning):
    fake = FakeWeChat()
    fake.reply(path, error(errcode))
    async with fake.client(max_retries=0) as wx:
        with pytest.raises(cls) as info:
            await call(wx)
    assert info.value.errcode == errcode
    assert meaning in (info.value.meaning or "")
    assert len(fake.calls(path)) == 1  # quota and request errors are not retried


def test_shared_codes_keep_their_meaning_elsewhere():
    row = wxqr.errors.CATALOGUE[45009]
    assert "daily quota" in row.meaning_for("cgi-bin/qrcode/create")
    assert "Short Links" in row.meaning_for("wxa/genwxashortlink")
    assert "100 calls per second" in wxqr.errors.CATALOGUE[44990].meaning_for("wxa/generatescheme")
    assert "qrcodejump" in wxqr.errors.CATALOGUE[44990].meaning_for("cgi-bin/wxopen/qrcodejumpadd")
    assert wxqr.errors.CATALOGUE[85079].account_level


async def test_a_permanent_short_link_is_never_resent_but_a_short_term_one_is():
    fake = FakeWeChat()
    fake.reply("wxa/genwxashortlink", error(-1), error(-1), SHORT_LINK_ANSWER)
    async with fake.client(retry_backoff=0) as wx:
        with pytest.raises(wxqr.SystemBusyError):
            await wx.links.generate_short_link("pages/a/a", permanent=True)
        assert len(fake.calls("wxa/genwxashortlink")) == 1
        assert await wx.links.generate_short_link("pages/a/a") == SHORT_LINK
    assert len(fake.calls("wxa/genwxashortlink")) == 3


# -- the shared 100/s bucket ----------------------------------------------------------------------


def test_the_generators_share_a_100_per_second_bucket():
    assert wxqr.DEFAULT_RATE_LIMITS["wxalink"] == wxqr.RateLimit(100, 1.0)


async def test_the_three_generators_draw_from_one_budget():
    fake = FakeWeChat()
    for path, answer in (
        ("wxa/generatescheme", SCHEME_ANSWER),
        ("wxa/generatenfcscheme", SCHEME_ANSWER),
        ("wxa/generate_urllink", URL_LINK_ANSWER),
        ("wxa/genwxashortlink", SHORT_LINK_ANSWER),
    ):
        fake.reply_always(path, answer)
    # 2 calls per 0.25 s: 6 generator calls need at least 2 full windows (0.5 s), whichever
    # generator they use. Short Links are not in the bucket (WeChat documents no 100/s there).
    limits = {**wxqr.DEFAULT_RATE_LIMITS, "wxalink": wxqr.RateLimit(2, 0.25)}
    async with fake.client(rate_limits=limits) as wx:
        await wx.access_token()
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(wx.links.generate_scheme)
                tg.start_soon(lambda: wx.links.generate_nfc_scheme(model_id="m"))
                tg.start_soon(wx.links.generate_url_link)
        elapsed = time.monotonic() - started
        sends = sorted(fake.sent_at[-6:])
    assert elapsed >= 0.5
    # Never more than 2 generator sends in any 0.25 s window.
    assert all(b - a >= 0.25 - 0.01 for a, b in zip(sends, sends[2:], strict=False))


async def test_short_links_are_not_in_the_generators_bucket():
    fake = FakeWeChat()
    fake.reply_always("wxa/generatescheme", SCHEME_ANSWER)
    fake.reply_always("wxa/genwxashortlink", SHORT_LINK_ANSWER)
    limits = {**wxqr.DEFAULT_RATE_LIMITS, "wxalink": wxqr.RateLimit(1, 60.0)}
    async with fake.client(rate_limits=limits) as wx:
        await wx.links.generate_scheme()  # the bucket is now empty for a minute
        with anyio.fail_after(20):  # bucketed, 5 more calls would need 5 minutes
            for _ in range(5):
                await wx.links.generate_short_link("pages/a/a")
    assert len(fake.calls("wxa/genwxashortlink")) == 5


# -- surface --------------------------------------------------------------------------------------

METHODS = [name for name, member in vars(Links).items() if inspect.iscoroutinefunction(member)]


def test_the_contract_names_exist():
    assert sorted(METHODS) == sorted(
        [
            "generate_scheme",
            "query_scheme",
            "remaining_visits",
            "generate_nfc_scheme",
            "generate_url_link",
            "query_url_link",
            "generate_short_link",
        ]
    )
    assert isinstance(wxqr.Client("wx1a2b3c4d5e6f7a8b", "secret").links, Links)


@pytest.mark.parametrize("name", METHODS)
def test_methods_take_keyword_only_arguments_and_a_timeout(name):
    signature = inspect.signature(getattr(Links, name))
    parameters = list(signature.parameters.values())[1:]
    positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert positional in ([], ["scheme"], ["url_link"], ["page_url"])
    assert signature.parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert signature.parameters["timeout"].default is None
    doc = inspect.getdoc(getattr(Links, name)) or ""
    assert "https://developers.weixin.qq.com/" in doc


async def test_the_per_call_timeout_reaches_the_request():
    fake = FakeWeChat()
    fake.reply("wxa/generatescheme", SCHEME_ANSWER)
    async with fake.client() as wx:
        await wx.links.generate_scheme(timeout=2.5)
    timeouts = fake.calls("wxa/generatescheme")[0].extensions["timeout"]
    assert timeouts["read"] == 2.5
