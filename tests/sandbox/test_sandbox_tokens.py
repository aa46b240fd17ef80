"""Access tokens: both fetch modes, rotation with its 5-minute overlap, and the per-call check."""

from __future__ import annotations

import pytest
from sandbox_helpers import RID, T0, errcode_of

from wxqr.errors import CATALOGUE
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET

pytestmark = pytest.mark.anyio

CREDS = {"grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET}


async def classic(http, **overrides):
    return await http.get("/cgi-bin/token", params={**CREDS, **overrides})


async def stable(http, force_refresh=False, **overrides):
    body = {**CREDS, "force_refresh": force_refresh, **overrides}
    return await http.post("/cgi-bin/stable_token", json=body)


async def qrcode(http, token):
    body = {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}
    return await http.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=body)


async def test_classic_token_rotates_and_keeps_the_previous_one_for_300_s(http, state):
    first = (await classic(http)).json()
    assert first["expires_in"] == 7200
    assert len(first["access_token"]) > 100
    state.clock.advance(60)
    second = (await classic(http)).json()["access_token"]
    assert second != first["access_token"]
    state.clock.advance(299)
    assert "ticket" in (await qrcode(http, first["access_token"])).json()
    state.clock.advance(1)
    assert errcode_of(await qrcode(http, first["access_token"])) == 40001
    assert "ticket" in (await qrcode(http, second)).json()
    state.clock.advance(7200 - 300)
    assert errcode_of(await qrcode(http, second)) == 42001
    assert state.token_fetches["token"] == 2
    assert state.tokens_issued["token"] == 2


@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [
        pytest.param({"grant_type": "password"}, 40002, id="40002-grant-type"),
        pytest.param({"appid": ""}, 41002, id="41002-appid-missing"),
        pytest.param({"secret": ""}, 41004, id="41004-secret-missing"),
        pytest.param({"appid": "wxnobody"}, 40013, id="40013-unknown-appid"),
        pytest.param({"secret": "wrong"}, 40125, id="40125-wrong-secret"),
    ],
)
async def test_credential_errors_on_both_token_endpoints(http, overrides, errcode):
    assert errcode_of(await classic(http, **overrides)) == errcode
    assert errcode_of(await stable(http, **overrides)) == errcode


async def test_errmsg_comes_from_the_catalogue_and_rid_starts_with_hex_virtual_time(http):
    errmsg = (await classic(http, secret="wrong")).json()["errmsg"]
    assert errmsg.startswith(CATALOGUE[40125].errmsg + " rid: ")
    assert RID.search(errmsg).group(1) == f"{T0:08x}"


async def test_frozen_secret_and_ip_whitelist_are_opt_in(http, state):
    assert (await classic(http)).status_code == 200
    state.default_account.ip_whitelist = ["10.9.8.7"]
    response = await stable(http)
    assert errcode_of(response) == 40164
    assert "not in whitelist" in response.json()["errmsg"]
    state.default_account.ip_whitelist.append("127.0.0.1")  # httpx.ASGITransport's client
    assert "access_token" in (await stable(http)).json()
    state.default_account.secret_frozen = True
    assert errcode_of(await classic(http)) == 40243


async def test_wrong_methods(http):
    assert errcode_of(await http.post("/cgi-bin/token", params=CREDS)) == 43001
    assert errcode_of(await http.get("/cgi-bin/stable_token", params=CREDS)) == 43002
    assert errcode_of(await http.post("/cgi-bin/stable_token", content=b"appid=x")) == 43002


async def test_stable_token_is_reused_with_its_remaining_lifetime(http, state):
    first = (await stable(http)).json()
    assert first["expires_in"] == 7200
    state.clock.advance(1000)
    again = (await stable(http)).json()
    assert again == {"access_token": first["access_token"], "expires_in": 6200}
    assert state.tokens_issued["stable_token"] == 1


async def test_stable_token_rotates_in_its_last_300_s_and_both_work_until_the_old_expires(
    http, state
):
    old = (await stable(http)).json()["access_token"]
    state.clock.advance(7200 - 300)
    fresh = (await stable(http)).json()
    assert fresh["access_token"] != old
    assert fresh["expires_in"] == 7200
    state.clock.advance(299)
    assert "ticket" in (await qrcode(http, old)).json()
    state.clock.advance(1)
    assert errcode_of(await qrcode(http, old)) == 42001
    assert "ticket" in (await qrcode(http, fresh["access_token"])).json()


async def test_force_refresh_invalidates_at_once_with_a_30_s_cooldown(http, state):
    old = (await stable(http)).json()["access_token"]
    state.clock.advance(40)
    forced = (await stable(http, force_refresh=True)).json()
    assert forced["access_token"] != old
    assert forced["expires_in"] == 7200
    assert errcode_of(await qrcode(http, old)) == 40001
    state.clock.advance(29)
    noop = (await stable(http, force_refresh=True)).json()
    assert noop == {"access_token": forced["access_token"], "expires_in": 7200 - 29}
    state.clock.advance(1)
    assert (await stable(http, force_refresh=True)).json()["access_token"] != forced["access_token"]


async def test_force_refresh_is_limited_to_20_a_day(http, state):
    for _ in range(20):
        assert "access_token" in (await stable(http, force_refresh=True)).json()
        state.clock.advance(30)
    assert errcode_of(await stable(http, force_refresh=True)) == 45009
    state.clock.advance(86400)
    assert "access_token" in (await stable(http, force_refresh=True)).json()


async def test_classic_and_stable_tokens_are_isolated(http, state):
    stable_token = (await stable(http)).json()["access_token"]
    await classic(http)
    await classic(http)
    state.clock.advance(301)
    assert "ticket" in (await qrcode(http, stable_token)).json()
    classic_token = (await classic(http)).json()["access_token"]
    await stable(http, force_refresh=True)
    assert "ticket" in (await qrcode(http, classic_token)).json()


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        pytest.param({}, 41001, id="41001-missing"),
        pytest.param({"access_token": "bogus"}, 40014, id="40014-malformed"),
        pytest.param({"access_token": "86_" + "x" * 136}, 40001, id="40001-unknown"),
    ],
)
async def test_api_calls_check_the_token(http, params, errcode):
    body = {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}
    response = await http.post("/cgi-bin/qrcode/create", params=params, json=body)
    assert errcode_of(response) == errcode


async def test_revoke_tokens_makes_them_answer_40001(http, state, token):
    state.revoke_tokens()
    assert errcode_of(await qrcode(http, token)) == 40001


async def test_daily_token_quota(http, state):
    state.default_account.daily_limits["cgi-bin/token"] = 2
    await classic(http)
    await classic(http)
    assert errcode_of(await classic(http)) == 45009
    state.clock.advance(86400)
    assert "access_token" in (await classic(http)).json()
