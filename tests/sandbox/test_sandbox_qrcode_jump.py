"""The qrcodejump family: both rule families, limits, publish state and quota, 5 req/s."""

from __future__ import annotations

import pytest
from sandbox_helpers import errcode_of

pytestmark = pytest.mark.anyio

PREFIX = "https://shop.example.com/q/"


def rule(prefix=PREFIX, **overrides):
    return {
        "prefix": prefix,
        "permit_sub_rule": 1,
        "path": "pages/index/index",
        "open_version": 3,
        "debug_url": [prefix + "1"],
        "is_edit": 0,
        **overrides,
    }


@pytest.fixture
def jump(http, state):
    async def call(name, body=None):
        state.clock.advance(1)  # stay under 5 requests per (virtual) second
        current = state.default_account.current_token()
        token = current.value if current and current.expires_at > state.clock.now() else None
        return await http.post(
            f"/cgi-bin/wxopen/qrcodejump{name}",
            params={"access_token": token or state.issue_token()},
            json=body or {},
        )

    return call


async def test_add_get_publish_delete(jump):
    assert (await jump("add", rule())).json() == {"errcode": 0, "errmsg": "ok"}
    listing = (await jump("get")).json()
    expected = {k: v for k, v in rule().items() if k != "is_edit"}
    assert listing["rule_list"] == [{**expected, "state": 1}]
    assert (listing["qrcodejump_open"], listing["qrcodejump_pub_quota"]) == (1, 100)
    assert (listing["list_size"], listing["total_count"]) == (1, 1)
    assert (await jump("publish", {"prefix": PREFIX})).json()["errcode"] == 0
    listing = (await jump("get")).json()
    assert listing["rule_list"][0]["state"] == 2
    assert listing["qrcodejump_pub_quota"] == 99
    assert errcode_of(await jump("add", rule(is_edit=1, path="pages/detail/detail"))) == 40097
    assert (await jump("delete", {"prefix": PREFIX})).json()["errcode"] == 0
    assert (await jump("get")).json()["total_count"] == 0


async def test_edit_an_unpublished_rule_but_not_add_it_twice(jump):
    await jump("add", rule())
    assert errcode_of(await jump("add", rule())) == 85071
    assert (await jump("add", rule(is_edit=1, path="pages/user/user"))).json()["errcode"] == 0
    assert (await jump("get")).json()["rule_list"][0]["path"] == "pages/user/user"


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        pytest.param(rule(prefix="ftp://x.example.com/"), 85066, id="85066-scheme"),
        pytest.param(rule(prefix="not a url"), 85066, id="85066-garbage"),
        pytest.param(rule(debug_url=["https://elsewhere.example.com/1"]), 85068, id="85068"),
        pytest.param(
            rule(debug_url=[PREFIX + str(i) for i in range(6)]), 40097, id="40097-6-debug"
        ),
        pytest.param(rule(permit_sub_rule=3), 40097, id="40097-permit"),
        pytest.param(rule(open_version=0), 40097, id="40097-version"),
        pytest.param(rule(path=""), 40097, id="40097-path"),
        pytest.param(rule(is_edit=1), 40097, id="40097-edit-missing"),
    ],
)
async def test_add_errors(jump, body, errcode):
    assert errcode_of(await jump("add", body)) == errcode


async def test_rule_list_is_capped(jump, state):
    state.default_account.jump_rules_limit = 2
    await jump("add", rule(PREFIX + "a/", debug_url=[]))
    await jump("add", rule(PREFIX + "b/", debug_url=[]))
    assert errcode_of(await jump("add", rule(PREFIX + "c/", debug_url=[]))) == 85073


async def test_publish_quota_and_release_state(jump, state):
    await jump("add", rule())
    state.default_account.released = False
    assert errcode_of(await jump("publish", {"prefix": PREFIX})) == 85074
    state.default_account.released = True
    state.default_account.jump_publish_quota = 1
    assert (await jump("publish", {"prefix": PREFIX})).json()["errcode"] == 0
    assert errcode_of(await jump("publish", {"prefix": PREFIX})) == 886000
    state.clock.advance(31 * 86400)  # a new month
    assert (await jump("publish", {"prefix": PREFIX})).json()["errcode"] == 0


async def test_personal_accounts_cannot_manage_rules(jump, state):
    state.default_account.personal = True
    assert errcode_of(await jump("add", rule())) == 85075
    assert errcode_of(await jump("download")) == 85075
    assert (await jump("get")).json()["errcode"] == 0


async def test_prefix_owned_by_another_account(jump, state, http):
    other = state.add_account("wxother", "s")
    token = state.issue_token("wxother")
    body = rule()
    await http.post("/cgi-bin/wxopen/qrcodejumpadd", params={"access_token": token}, json=body)
    assert PREFIX in other.jump_rules
    assert errcode_of(await jump("add", rule())) == 85072


async def test_more_than_5_requests_a_second_answer_44990(http, state, token):
    state.clock.set(int(state.clock.now()) + 0.1)
    url, params = "/cgi-bin/wxopen/qrcodejumpget", {"access_token": token}
    for _ in range(5):
        assert (await http.post(url, params=params, json={})).json()["errcode"] == 0
    assert errcode_of(await http.post("/cgi-bin/wxopen/qrcodejumpdownload", params=params)) == 44990
    state.clock.advance(1)
    assert (await http.post(url, params=params, json={})).json()["errcode"] == 0


async def test_service_account_rules_and_get_types(jump):
    base = "http://weixin.qq.com/q/"
    assert (
        errcode_of(await jump("add", {"prefix": PREFIX, "appid": "wxmini", "path": "p"})) == 85066
    )
    for i in range(3):
        body = {"prefix": f"{base}{i}", "appid": "wxmini", "path": "p", "is_edit": 0}
        assert (await jump("add", body)).json()["errcode"] == 0
    latest = (await jump("get", {"appid": "wxmini", "get_type": 0})).json()
    assert [r["prefix"] for r in latest["rule_list"]] == [f"{base}{i}" for i in range(3)]
    assert latest["rule_list"][0] == {"prefix": f"{base}0", "path": "p", "state": 1}
    chosen = await jump("get", {"appid": "wxmini", "get_type": 1, "prefix_list": [f"{base}1"]})
    assert chosen.json()["list_size"] == 1
    page = await jump("get", {"appid": "wxmini", "get_type": 2, "page_num": 2, "page_size": 2})
    assert (page.json()["list_size"], page.json()["total_count"]) == (1, 3)
    bad = {"appid": "wxmini", "get_type": 2, "page_num": 1, "page_size": 201}
    assert errcode_of(await jump("get", bad)) == 40097
    assert (await jump("get")).json()["total_count"] == 0  # ordinary rules are separate


async def test_download_returns_a_stable_verification_file(jump):
    first = (await jump("download")).json()
    assert first["file_name"].endswith(".txt")
    assert len(first["file_content"]) == 32
    assert (await jump("download")).json() == first
