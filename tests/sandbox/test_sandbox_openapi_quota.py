"""The sandbox's quota, rid and network APIs: budgets, counters that move, and their errcodes."""

from __future__ import annotations

import pytest
from sandbox_helpers import errcode_of

from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, ENDPOINTS

pytestmark = pytest.mark.anyio

CREATE = {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}


async def post(http, token, path, body):
    return await http.post(path, params={"access_token": token}, json=body)


async def quota(http, token, cgi_path="/cgi-bin/qrcode/create"):
    answer = (await post(http, token, "/cgi-bin/openapi/quota/get", {"cgi_path": cgi_path})).json()
    assert answer["errcode"] == 0, answer
    return answer["quota"]


async def clear_v2(http, **params):
    return await http.post("/cgi-bin/clear_quota/v2", json=params)


def test_every_openapi_endpoint_is_served():
    for endpoint in (
        "cgi-bin/clear_quota",
        "cgi-bin/clear_quota/v2",
        "cgi-bin/openapi/quota/get",
        "cgi-bin/openapi/quota/clear",
        "cgi-bin/openapi/rid/get",
        "cgi-bin/getcallbackip",
        "cgi-bin/get_api_domain_ip",
        "cgi-bin/callback/check",
    ):
        assert endpoint in ENDPOINTS


# -- counters -----------------------------------------------------------------------------------


async def test_used_and_remain_move_with_calls(http, state, token):
    state.default_account.daily_limits["cgi-bin/qrcode/create"] = 5
    assert await quota(http, token) == {"daily_limit": 5, "used": 0, "remain": 5}
    for _ in range(3):
        assert "ticket" in (await post(http, token, "/cgi-bin/qrcode/create", CREATE)).json()
    assert await quota(http, token) == {"daily_limit": 5, "used": 3, "remain": 2}
    for _ in range(2):
        await post(http, token, "/cgi-bin/qrcode/create", CREATE)
    assert await quota(http, token) == {"daily_limit": 5, "used": 5, "remain": 0}
    assert errcode_of(await post(http, token, "/cgi-bin/qrcode/create", CREATE)) == 45009
    assert (await quota(http, token))["used"] == 5  # a refused call is not counted
    state.clock.advance(86400)  # a new Beijing day
    token = state.issue_token()
    assert await quota(http, token) == {"daily_limit": 5, "used": 0, "remain": 5}


async def test_apis_without_a_daily_cap_count_their_calls_too(http, token):
    for _ in range(2):
        await post(http, token, "/wxa/getwxacode", {"path": "pages/index/index"})
    assert await quota(http, token, "/wxa/getwxacode") == {"daily_limit": 0, "used": 2, "remain": 0}


async def test_quota_get_reports_rate_windows(http, token):
    answer = (
        await post(
            http, token, "/cgi-bin/openapi/quota/get", {"cgi_path": "/wxa/getwxacodeunlimit"}
        )
    ).json()
    assert answer["rate_limit"] == {"call_count": 5000, "refresh_second": 60}


# -- clear_quota and clear_quota/v2: 10 a month between them ---------------------------------


async def test_clear_quota_and_v2_share_ten_clears_a_month(http, state, token):
    account = state.default_account
    account.daily_limits["cgi-bin/qrcode/create"] = 1
    await post(http, token, "/cgi-bin/qrcode/create", CREATE)
    assert errcode_of(await post(http, token, "/cgi-bin/qrcode/create", CREATE)) == 45009

    response = await clear_v2(http, appid=DEFAULT_APPID, appsecret=DEFAULT_SECRET)
    assert response.json() == {"errcode": 0, "errmsg": "ok"}
    assert await quota(http, token) == {"daily_limit": 1, "used": 0, "remain": 1}
    for i in range(9):
        if i % 2:
            answer = (await clear_v2(http, appid=DEFAULT_APPID, appsecret=DEFAULT_SECRET)).json()
        else:
            answer = (
                await post(http, token, "/cgi-bin/clear_quota", {"appid": DEFAULT_APPID})
            ).json()
        assert answer["errcode"] == 0
    assert errcode_of(await clear_v2(http, appid=DEFAULT_APPID, appsecret=DEFAULT_SECRET)) == 48006
    assert (
        errcode_of(await post(http, token, "/cgi-bin/clear_quota", {"appid": DEFAULT_APPID}))
        == 48006
    )
    assert account.used("clear_quota", state.clock.month()) == 10

    state.clock.advance(32 * 86400)  # next month
    token = state.issue_token()
    assert (await post(http, token, "/cgi-bin/clear_quota", {"appid": DEFAULT_APPID})).json()[
        "errcode"
    ] == 0


async def test_clear_quota_v2_takes_the_query_string_of_the_official_example(http, state):
    response = await http.post(
        "/cgi-bin/clear_quota/v2", params={"appid": DEFAULT_APPID, "appsecret": DEFAULT_SECRET}
    )
    assert response.json() == {"errcode": 0, "errmsg": "ok"}
    assert state.default_account.used("clear_quota", state.clock.month()) == 1


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        pytest.param({"appsecret": DEFAULT_SECRET}, 41002, id="41002-appid-missing"),
        pytest.param({"appid": DEFAULT_APPID}, 41004, id="41004-appsecret-missing"),
        pytest.param({"appid": "wxnobody", "appsecret": "x"}, 40013, id="40013-unknown-appid"),
        pytest.param({"appid": DEFAULT_APPID, "appsecret": "wrong"}, 40125, id="40125-wrong"),
    ],
)
async def test_clear_quota_v2_checks_the_credentials(http, state, params, errcode):
    assert errcode_of(await clear_v2(http, **params)) == errcode
    assert state.default_account.used("clear_quota", state.clock.month()) == 0


async def test_clear_quota_v2_is_post_only(http):
    response = await http.get(
        "/cgi-bin/clear_quota/v2", params={"appid": DEFAULT_APPID, "appsecret": DEFAULT_SECRET}
    )
    assert errcode_of(response) == 43002


async def test_rid_records_never_hold_the_secret(http, state):
    state.default_account.clear_quota_limit = 0  # so a correct clear fails too (48006)
    failed = [
        # clear_quota/v2 with the secret in the query (the official example's form) ...
        await http.post(
            "/cgi-bin/clear_quota/v2", params={"appid": DEFAULT_APPID, "appsecret": DEFAULT_SECRET}
        ),
        # ... and in the body, and a token fetch with a wrong secret that contains the right one
        await clear_v2(http, appid=DEFAULT_APPID, appsecret=DEFAULT_SECRET),
        await http.post(
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": DEFAULT_APPID,
                "secret": DEFAULT_SECRET + "x",
            },
        ),
    ]
    assert [errcode_of(r) for r in failed] == [48006, 48006, 40125]
    token = state.issue_token()
    for response in failed:
        rid = response.json()["errmsg"].rsplit(" ", 1)[1]
        record = (await post(http, token, "/cgi-bin/openapi/rid/get", {"rid": rid})).json()
        assert record["errcode"] == 0, record
        assert DEFAULT_SECRET not in str(record)
        assert "***" in record["request"]["request_url"] + record["request"]["request_body"]


# -- openapi/quota/clear: 50 a month, one API --------------------------------------------------


async def test_clear_api_quota_resets_one_api_and_has_fifty_a_month(http, state, token):
    account = state.default_account
    account.daily_limits["cgi-bin/qrcode/create"] = 1
    await post(http, token, "/cgi-bin/qrcode/create", CREATE)
    await post(http, token, "/wxa/getwxacode", {"path": "pages/index/index"})
    assert errcode_of(await post(http, token, "/cgi-bin/qrcode/create", CREATE)) == 45009

    body = {"cgi_path": "/cgi-bin/qrcode/create"}
    assert (await post(http, token, "/cgi-bin/openapi/quota/clear", body)).json()["errcode"] == 0
    assert (await quota(http, token))["used"] == 0
    assert (await quota(http, token, "/wxa/getwxacode"))["used"] == 1  # only that API
    assert "ticket" in (await post(http, token, "/cgi-bin/qrcode/create", CREATE)).json()

    for _ in range(49):
        assert (await post(http, token, "/cgi-bin/openapi/quota/clear", body)).json()[
            "errcode"
        ] == 0
    assert errcode_of(await post(http, token, "/cgi-bin/openapi/quota/clear", body)) == 45009
    assert account.used("clear_api_quota", state.clock.month()) == 50
    assert account.used("clear_quota", state.clock.month()) == 0  # a separate budget


@pytest.mark.parametrize("cgi_path", ["/cgi-bin/nope", "cgi-bin/qrcode/create", 7])
async def test_clear_api_quota_of_an_unknown_path_is_76021(http, state, token, cgi_path):
    response = await post(http, token, "/cgi-bin/openapi/quota/clear", {"cgi_path": cgi_path})
    assert errcode_of(response) == 76021
    assert state.default_account.used("clear_api_quota", state.clock.month()) == 0


# -- rid records: 7 days -------------------------------------------------------------------


async def test_a_rid_is_queryable_for_seven_days(http, state, token):
    failed = (await post(http, token, "/wxa/getwxacode", {"path": ""})).json()
    rid = failed["errmsg"].rsplit(" ", 1)[1]
    state.clock.advance(7 * 86400 - 1)
    token = state.issue_token()
    record = (await post(http, token, "/cgi-bin/openapi/rid/get", {"rid": rid})).json()
    assert (
        record["request"]["response_body"]
        == '{"errcode":40159,"errmsg":"' + failed["errmsg"] + '"}'
    )
    assert record["request"]["request_body"] == '{"path":""}'
    assert record["request"]["request_url"].startswith("access_token=")
    state.clock.advance(2)
    token = state.issue_token()
    assert errcode_of(await post(http, token, "/cgi-bin/openapi/rid/get", {"rid": rid})) == 76004


# -- Num-Used ------------------------------------------------------------------------------


async def test_num_used_is_shared_by_getwxacode_and_createwxaqrcode(http, state, token):
    a = await post(http, token, "/wxa/getwxacode", {"path": "pages/index/index"})
    c = await post(http, token, "/cgi-bin/wxaapp/createwxaqrcode", {"path": "pages/index/index"})
    b = await post(http, token, "/wxa/getwxacodeunlimit", {"scene": "a=1"})
    assert a.headers["num-used"] == "1"
    assert c.headers["num-used"] == "2"
    assert "num-used" not in b.headers
    failed = await post(http, token, "/cgi-bin/wxaapp/createwxaqrcode", {"path": ""})
    assert errcode_of(failed) == 40159
    assert failed.headers["num-used"] == "2"
    state.default_account.wxacode_limit = 2
    capped = await post(http, token, "/cgi-bin/wxaapp/createwxaqrcode", {"path": "p/a"})
    assert errcode_of(capped) == 45029
    assert capped.headers["num-used"] == "2"


# -- tokens: 40014 vs 40001 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "errcode"),
    [
        pytest.param("ACCESS_TOKEN", 40014, id="40014-placeholder"),
        pytest.param("86_short", 40014, id="40014-too-short"),
        pytest.param("86_" + "A" * 136 + "!", 40014, id="40014-bad-character"),
        pytest.param("86_" + "A" * 136, 40001, id="40001-well-formed-unknown"),
    ],
)
async def test_a_malformed_token_is_40014_and_an_unknown_one_40001(http, token, errcode):
    assert errcode_of(await post(http, token, "/cgi-bin/qrcode/create", CREATE)) == errcode


async def test_a_superseded_token_is_still_40001(http, state, token):
    state.revoke_tokens()
    assert errcode_of(await post(http, token, "/cgi-bin/qrcode/create", CREATE)) == 40001


# -- callback IPs and the network check ----------------------------------------------------


async def test_callback_and_api_domain_ips_are_get_apis(http, token):
    for path in ("/cgi-bin/getcallbackip", "/cgi-bin/get_api_domain_ip"):
        answer = (await http.get(path, params={"access_token": token})).json()
        assert isinstance(answer["ip_list"], list)
        assert answer["ip_list"]
        assert errcode_of(await post(http, token, path, {})) == 43001
    assert errcode_of(await http.get("/cgi-bin/getcallbackip")) == 41001


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        pytest.param({"action": "trace", "check_operator": "DEFAULT"}, 40202, id="40202"),
        pytest.param({"action": "all", "check_operator": "CMCC"}, 40203, id="40203"),
        pytest.param({"check_operator": "DEFAULT"}, 40202, id="40202-missing"),
    ],
)
async def test_callback_check_validates(http, token, body, errcode):
    assert errcode_of(await post(http, token, "/cgi-bin/callback/check", body)) == errcode


async def test_callback_check_without_a_callback_url_is_40201(http, state, token):
    state.default_account.callback_url = None
    body = {"action": "all", "check_operator": "DEFAULT"}
    assert errcode_of(await post(http, token, "/cgi-bin/callback/check", body)) == 40201


@pytest.mark.parametrize(
    ("action", "dns", "ping"),
    [("dns", 1, 0), ("ping", 0, 1), ("all", 1, 1)],
)
async def test_callback_check_answers_dns_and_ping(http, state, token, action, dns, ping):
    state.default_account.callback_url = "http://127.0.0.1:8080/wechat"
    body = {"action": action, "check_operator": "UNICOM"}
    answer = (await post(http, token, "/cgi-bin/callback/check", body)).json()
    assert len(answer["dns"]) == dns
    assert len(answer["ping"]) == ping
    for entry in answer["dns"]:
        assert entry == {"ip": "127.0.0.1", "real_operator": "UNICOM"}
    for entry in answer["ping"]:
        assert entry["ip"] == "127.0.0.1"
        assert entry["from_operator"] == "UNICOM"
        assert entry["package_loss"] == "0%"


# -- service-account jump rules publish with only the prefix (reference §5.4) ------------


async def test_a_service_account_rule_is_published_by_prefix_alone(http, state, token):
    prefix = "http://weixin.qq.com/q/02abc"
    added = await post(
        http,
        token,
        "/cgi-bin/wxopen/qrcodejumpadd",
        {"prefix": prefix, "appid": "wx_mini", "path": "pages/index/index", "is_edit": 0},
    )
    assert added.json()["errcode"] == 0
    published = await post(http, token, "/cgi-bin/wxopen/qrcodejumppublish", {"prefix": prefix})
    assert published.json() == {"errcode": 0, "errmsg": "ok"}
    assert state.default_account.sa_jump_rules[("wx_mini", prefix)].state == 2
    unknown = {"prefix": "http://weixin.qq.com/q/other"}
    assert (
        errcode_of(await post(http, token, "/cgi-bin/wxopen/qrcodejumppublish", unknown)) == 40097
    )
