"""Mini Program links in the sandbox: formats, storage on the virtual clock, queries, every quota.

Raw HTTP against the in-process app (the ``http`` fixture, frozen clock at ``T0``) for exact
errcodes and boundaries; one test drives the same through ``wx.links``.
"""

from __future__ import annotations

import re

import pytest
from sandbox_helpers import T0, errcode_of

import wxqr
from wxqr.sandbox import sandbox_client

pytestmark = pytest.mark.anyio

DAY = 86400
SCHEME = re.compile(r"weixin://dl/business/\?t=[0-9A-Za-z]{11}")
URL_LINK = re.compile(r"https://wxaurl\.cn/[0-9A-Za-z]{11}")
SHORT_LINK = re.compile(r"#小程序://小程序示例/(?P<title>[^/]+)/[0-9A-Za-z]{15}")


@pytest.fixture
def api(http, state):
    async def call(endpoint, body=None, *, tick=True):
        if tick:
            state.clock.advance(0.01)  # keep calls distinct in time (never a second apart)
        current = state.default_account.current_token()
        token = current.value if current and current.expires_at > state.clock.now() else None
        return await http.post(
            f"/wxa/{endpoint}",
            params={"access_token": token or state.issue_token()},
            json=body or {},
        )

    return call


# -- formats, storage and the queries -------------------------------------------------------------


async def test_a_scheme_is_stored_and_queried_with_its_times(api, state):
    body = {
        "jump_wxa": {"path": "/pages/detail/detail", "query": "id=7", "env_version": "trial"},
        "expire_type": 1,
        "expire_interval": 7,
        "is_expire": False,  # ignored: fixed to true since 2022
    }
    answer = (await api("generatescheme", body)).json()
    assert answer["errcode"] == 0
    assert SCHEME.fullmatch(answer["openlink"])
    created = state.clock.now()
    stored = state.links[answer["openlink"]]
    assert (stored.kind, stored.created_at, stored.expires_at) == (
        "scheme",
        created,
        created + 7 * DAY,
    )
    info = (await api("queryscheme", {"scheme": answer["openlink"]})).json()
    assert info["scheme_info"] == {
        "appid": state.default_account.appid,
        "path": "/pages/detail/detail",
        "query": "id=7",
        "create_time": int(created),
        "expire_time": int(created + 7 * DAY),
        "env_version": "trial",
    }
    with_cq = (await api("queryscheme", {"scheme": answer["openlink"] + "&cq=a%3Dhello"})).json()
    assert with_cq["scheme_info"]["query"] == "a=hello"


async def test_a_url_link_with_cloud_base_is_queried(api, state):
    cloud = {"env": "cloud-1", "domain": "c.example.com", "path": "/h5.html", "query": "a=b"}
    expire_time = T0 + 3 * DAY
    answer = (
        await api(
            "generate_urllink",
            {
                "path": "pages/index/index",
                "query": "a=1",
                "expire_time": expire_time,
                "cloud_base": cloud,
            },
        )
    ).json()
    assert URL_LINK.fullmatch(answer["url_link"])
    info = (await api("query_urllink", {"url_link": answer["url_link"] + "?cq=x=1"})).json()
    link_info = info["url_link_info"]
    assert (link_info["query"], link_info["expire_time"]) == ("x=1", expire_time)
    assert link_info["cloud_base"]["doamin"] == "c.example.com"  # as documented (sic)


async def test_unknown_and_foreign_links_answer_85403(api, state, http):
    assert (
        errcode_of(await api("queryscheme", {"scheme": "weixin://dl/business/?t=AAAAAAAAAAA"}))
        == 85403
    )
    assert (
        errcode_of(await api("query_urllink", {"url_link": "https://wxaurl.cn/AAAAAAAAAAA"}))
        == 85403
    )
    scheme = (await api("generatescheme")).json()["openlink"]
    assert errcode_of(await api("query_urllink", {"url_link": scheme})) == 85403  # wrong kind
    state.add_account("wxother00000000001", "other-secret")
    other = state.issue_token("wxother00000000001")
    response = await http.post(
        "/wxa/queryscheme", params={"access_token": other}, json={"scheme": scheme}
    )
    assert errcode_of(response) == 85403


async def test_plaintext_schemes_are_described_without_times(api, state):
    appid = state.default_account.appid
    plain = f"weixin://dl/business/?appid={appid}&path=pages/index/index&query=a%3D1"
    info = (await api("queryscheme", {"scheme": plain})).json()["scheme_info"]
    assert info == {
        "appid": appid,
        "path": "pages/index/index",
        "query": "a=1",
        "env_version": "release",
    }
    other = "weixin://dl/business/?appid=wxnotmine&path=pages/index/index"
    assert errcode_of(await api("queryscheme", {"scheme": other})) == 85405


async def test_nfc_schemes_never_expire_and_need_a_model_id(api, state):
    assert errcode_of(await api("generatenfcscheme", {"jump_wxa": {}})) == 9800003
    answer = (await api("generatenfcscheme", {"model_id": "mdl", "sn": "SN1"})).json()
    stored = state.links[answer["openlink"]]
    assert (stored.kind, stored.expires_at, stored.model_id, stored.sn) == (
        "nfc_scheme",
        None,
        "mdl",
        "SN1",
    )
    info = (await api("queryscheme", {"scheme": answer["openlink"]})).json()["scheme_info"]
    assert info["expire_time"] == 0  # 0 = permanent


async def test_short_links_format_truncation_and_lifetime(api, state):
    short = (
        await api(
            "genwxashortlink", {"page_url": "pages/index/index?id=7", "page_title": "Spring sale"}
        )
    ).json()["link"]
    assert SHORT_LINK.fullmatch(short).group("title") == "Spring sale"
    assert state.links[short].expires_at == state.clock.now() + 30 * DAY
    long_title = "t" * 25
    short = (
        await api("genwxashortlink", {"page_url": "pages/index/index", "page_title": long_title})
    ).json()["link"]
    assert SHORT_LINK.fullmatch(short).group("title") == "t" * 20 + "..."
    permanent = (
        await api("genwxashortlink", {"page_url": "pages/user/user", "is_permanent": True})
    ).json()["link"]
    assert state.links[permanent].expires_at is None


# -- the 30-day rules and 85401 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expiry", "errcode"),
    [
        pytest.param({"expire_time": T0 + 59}, 85401, id="59s-ahead"),
        pytest.param({"expire_time": T0 + 60}, 0, id="60s-ahead"),
        pytest.param({"expire_time": T0 + 30 * DAY}, 0, id="30-days"),
        pytest.param({"expire_time": T0 + 30 * DAY + 1}, 85401, id="30-days-1s"),
        pytest.param({"expire_time": (T0 + DAY) * 1000}, 85401, id="milliseconds"),
        pytest.param({"expire_time": T0 - 10}, 85401, id="past"),
        pytest.param({"expire_type": 1, "expire_interval": 0}, 85401, id="interval-0"),
        pytest.param({"expire_type": 1, "expire_interval": 1}, 0, id="interval-1"),
        pytest.param({"expire_type": 1, "expire_interval": 30}, 0, id="interval-30"),
        pytest.param({"expire_type": 1, "expire_interval": 31}, 85401, id="interval-31"),
        pytest.param({"expire_type": 2}, 40097, id="type-2"),
    ],
)
@pytest.mark.parametrize("endpoint", ["generatescheme", "generate_urllink"])
async def test_the_expiry_window(api, state, endpoint, expiry, errcode):
    state.clock.set(T0)
    response = await api(endpoint, expiry, tick=False)
    if errcode:
        assert errcode_of(response) == errcode
    else:
        assert response.json()["errcode"] == 0


async def test_no_expiry_means_30_days_and_clamp_mode_gives_30_days(api, state):
    scheme = (await api("generatescheme")).json()["openlink"]
    assert state.links[scheme].expires_at == state.clock.now() + 30 * DAY
    state.default_account.link_expiry_out_of_range = "clamp"
    far = (await api("generate_urllink", {"expire_type": 1, "expire_interval": 365})).json()
    assert state.links[far["url_link"]].expires_at == state.clock.now() + 30 * DAY


async def test_links_expire_on_the_virtual_clock(api, state):
    scheme = (await api("generatescheme", {"expire_type": 1, "expire_interval": 1})).json()[
        "openlink"
    ]
    state.clock.advance(DAY - 1)
    state.open_link(scheme)
    state.clock.advance(1)
    with pytest.raises(RuntimeError, match="expired"):
        state.open_link(scheme)
    # the query still describes it, with its (past) expire time
    info = (await api("queryscheme", {"scheme": scheme})).json()["scheme_info"]
    assert info["expire_time"] <= state.clock.now()


# -- request errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "errcode"),
    [
        pytest.param(
            "generatescheme", {"jump_wxa": {"path": "pages/nope/nope"}}, 40165, id="40165-page"
        ),
        pytest.param(
            "generatescheme",
            {"jump_wxa": {"path": "pages/index/index?a=1"}},
            40165,
            id="40165-query-in-path",
        ),
        pytest.param("generate_urllink", {"path": "pages/x"}, 40165, id="40165-urllink"),
        pytest.param("generatescheme", {"jump_wxa": {"query": "a=你"}}, 40212, id="40212-charset"),
        pytest.param(
            "generatescheme", {"jump_wxa": {"query": "novalue"}}, 40212, id="40212-format"
        ),
        pytest.param("generate_urllink", {"query": "a=" + "x" * 1023}, 40212, id="40212-1025"),
        pytest.param("generatescheme", {"jump_wxa": {"env_version": "prod"}}, 85402, id="85402"),
        pytest.param(
            "generatescheme", {"jump_wxa": "pages/index/index"}, 40097, id="40097-jump_wxa"
        ),
        pytest.param(
            "generate_urllink", {"cloud_base": {"domain": "x"}}, 40097, id="40097-cloud-env"
        ),
        pytest.param("queryscheme", {"query_type": 3}, 40097, id="40097-query_type"),
        pytest.param("genwxashortlink", {}, 40066, id="40066-no-page_url"),
        pytest.param(
            "genwxashortlink", {"page_url": "pages/nope/nope?a=1"}, 40066, id="40066-page"
        ),
        pytest.param(
            "genwxashortlink", {"page_url": "pages/index/index", "page_title": 5}, 40225, id="40225"
        ),
    ],
)
async def test_request_errors(api, endpoint, body, errcode):
    assert errcode_of(await api(endpoint, body)) == errcode


async def test_the_toggles(api, state):
    account = state.default_account
    account.cloud_base_enabled = False
    assert errcode_of(await api("generate_urllink", {"cloud_base": {"env": "e"}})) == 85088
    account.short_links_allowed = False
    assert errcode_of(await api("genwxashortlink", {"page_url": "pages/index/index"})) == 43104
    account.short_links_allowed = True
    account.released = False  # the "unreleased Mini Program" toggle
    for endpoint, body in (
        ("generatescheme", {}),
        ("generatenfcscheme", {"model_id": "m"}),
        ("generate_urllink", {}),
        ("genwxashortlink", {"page_url": "pages/index/index"}),
    ):
        assert errcode_of(await api(endpoint, body)) == 85079, endpoint
    assert state.links == {}


# -- quotas ---------------------------------------------------------------------------------------


async def test_100_generations_per_second_shared_by_the_three_generators(api, state):
    state.clock.set(T0)
    endpoints = [
        ("generatescheme", {}),
        ("generatenfcscheme", {"model_id": "m"}),
        ("generate_urllink", {}),
    ]
    for i in range(100):
        endpoint, body = endpoints[i % 3]
        assert (await api(endpoint, body, tick=False)).json()["errcode"] == 0
    for endpoint, body in endpoints:
        assert errcode_of(await api(endpoint, body, tick=False)) == 44990
    # Short Links and queries are not in that budget
    assert (await api("genwxashortlink", {"page_url": "pages/index/index"}, tick=False)).json()[
        "errcode"
    ] == 0
    assert (await api("queryscheme", {"query_type": 1}, tick=False)).json()["errcode"] == 0
    state.clock.advance(1)  # the next virtual second
    assert (await api("generatescheme", tick=False)).json()["errcode"] == 0
    assert len(state.links) == 102


async def test_the_daily_generation_counter_44993(api, state):
    state.clock.set(T0)
    state.default_account.links_daily_limit = 3
    for endpoint, body in (
        ("generatescheme", {}),
        ("generatenfcscheme", {"model_id": "m"}),
        ("generate_urllink", {}),
    ):
        assert (await api(endpoint, body)).json()["errcode"] == 0
    assert errcode_of(await api("generatescheme")) == 44993
    assert errcode_of(await api("generate_urllink")) == 44993
    assert (await api("genwxashortlink", {"page_url": "pages/index/index"})).json()["errcode"] == 0
    state.clock.advance(DAY)  # a new Beijing day
    assert (await api("generatescheme")).json()["errcode"] == 0
    assert len(state.links) == 5


async def test_the_permanent_short_link_cap_85400(api, state):
    state.default_account.permanent_short_link_limit = 2
    permanent = {"page_url": "pages/index/index", "is_permanent": True}
    assert (await api("genwxashortlink", permanent)).json()["errcode"] == 0
    assert (await api("genwxashortlink", permanent)).json()["errcode"] == 0
    assert errcode_of(await api("genwxashortlink", permanent)) == 85400
    state.clock.advance(400 * DAY)  # a lifetime cap: time does not help
    assert errcode_of(await api("genwxashortlink", permanent)) == 85400
    # short-term links are unlimited in number
    assert (await api("genwxashortlink", {"page_url": "pages/index/index"})).json()["errcode"] == 0
    assert state.default_account.permanent_short_links == 2


async def test_the_daily_short_link_cap_45009(api, state):
    state.clock.set(T0)
    state.default_account.daily_limits["wxa/genwxashortlink"] = 2
    for _ in range(2):
        assert (await api("genwxashortlink", {"page_url": "pages/index/index"})).json()[
            "errcode"
        ] == 0
    assert errcode_of(await api("genwxashortlink", {"page_url": "pages/index/index"})) == 45009


async def test_the_visit_quota_and_85406(api, state):
    state.clock.set(T0)
    state.default_account.link_visit_quota = 2
    scheme = (await api("generatescheme")).json()["openlink"]
    url_link = (await api("generate_urllink")).json()["url_link"]
    quota = await api("queryscheme", {"query_type": 1})
    assert quota.json()["quota_info"] == {"remain_visit_quota": 2}
    state.open_link(scheme)
    state.open_link(url_link + "?cq=a%3D1")  # scheme and URL Link share the quota
    assert (await api("query_urllink", {"query_type": 1})).json()["quota_info"][
        "remain_visit_quota"
    ] == 0
    with pytest.raises(RuntimeError, match="85406"):
        state.open_link(scheme)
    assert errcode_of(await api("queryscheme", {"scheme": scheme})) == 85406
    state.clock.advance(DAY)
    assert (await api("queryscheme", {"query_type": 1})).json()["quota_info"][
        "remain_visit_quota"
    ] == 2


# -- through the client ----------------------------------------------------------------------------


async def test_the_client_round_trip(state):
    state.default_account.links_daily_limit = 2
    async with sandbox_client(state) as wx:
        scheme = await wx.links.generate_scheme(
            path="pages/index/index", query="id=7", expires_in_days=7
        )
        info = await wx.links.query_scheme(scheme.openlink)
        assert info == wxqr.SchemeInfo(
            appid=state.default_account.appid,
            path="pages/index/index",
            query="id=7",
            create_time=int(state.links[scheme.openlink].created_at),
            expire_time=int(state.links[scheme.openlink].expires_at),
            env_version="release",
        )
        link = await wx.links.generate_url_link(
            cloud_base=wxqr.CloudBase(env="e", domain="d.example.com")
        )
        url_info = await wx.links.query_url_link(link.url_link)
        assert url_info.cloud_base == wxqr.CloudBase(env="e", domain="d.example.com")
        assert await wx.links.remaining_visits() == 3_000_000
        with pytest.raises(wxqr.QuotaExceededError) as info:
            await wx.links.generate_url_link()
        assert info.value.errcode == 44993
        with pytest.raises(wxqr.InvalidRequestError) as unknown:
            await wx.links.query_url_link("https://wxaurl.cn/AAAAAAAAAAA")
        assert unknown.value.errcode == 85403
        short = await wx.links.generate_short_link("pages/index/index?id=7", title="Spring sale")
        assert SHORT_LINK.fullmatch(short)
