"""qrcode/create + showqrcode (real scannable images) and shorten/gen + fetch."""

from __future__ import annotations

import pytest
from sandbox_helpers import decode_qr, errcode_of

pytestmark = pytest.mark.anyio


def scene(action, **scene_fields):
    return {"action_name": action, "action_info": {"scene": scene_fields}}


async def create(http, token, body):
    return await http.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=body)


async def test_temporary_ticket_shows_a_qr_of_its_url_until_it_expires(http, state, token):
    answer = (await create(http, token, scene("QR_STR_SCENE", scene_str="order-9"))).json()
    assert answer["expire_seconds"] == 60  # the documented default
    assert answer["url"].startswith("http://weixin.qq.com/q/")
    assert {"+", "/", "="} <= set(answer["ticket"])
    shown = await http.get("/cgi-bin/showqrcode", params={"ticket": answer["ticket"]})
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "image/jpg"
    assert shown.content.startswith(b"\x89PNG")
    assert decode_qr(shown.content) == answer["url"]
    state.clock.advance(60)
    expired = await http.get("/cgi-bin/showqrcode", params={"ticket": answer["ticket"]})
    assert expired.status_code == 404
    assert "text/html" in expired.headers["content-type"]


async def test_an_unencoded_ticket_is_not_found(http, token):
    ticket = (await create(http, token, scene("QR_SCENE", scene_id=9))).json()["ticket"]
    response = await http.get(f"/cgi-bin/showqrcode?ticket={ticket}")  # '+' decodes to ' '
    assert response.status_code == 404


async def test_permanent_codes_have_no_expiry_and_a_configurable_cap(http, state, token):
    state.default_account.permanent_qrcode_limit = 2
    for scene_id in (1, 2):
        answer = (await create(http, token, scene("QR_LIMIT_SCENE", scene_id=scene_id))).json()
        assert set(answer) == {"ticket", "url"}
    assert errcode_of(await create(http, token, scene("QR_LIMIT_SCENE", scene_id=3))) == 45029
    state.clock.advance(10 * 365 * 86400)
    shown = await http.get("/cgi-bin/showqrcode", params={"ticket": answer["ticket"]})
    assert decode_qr(shown.content) == answer["url"]


async def test_expire_seconds_is_capped_at_30_days(http, token):
    body = {**scene("QR_SCENE", scene_id=1), "expire_seconds": "9999999"}
    assert (await create(http, token, body)).json()["expire_seconds"] == 2592000


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        pytest.param(scene("QR_NOPE", scene_id=1), 40052, id="40052-action"),
        pytest.param({"action_info": {}}, 40052, id="40052-missing-action"),
        pytest.param(scene("QR_SCENE", scene_id=0), 40053, id="40053-temp-zero"),
        pytest.param(scene("QR_SCENE", scene_id=2**32), 40053, id="40053-temp-33-bit"),
        pytest.param(scene("QR_LIMIT_SCENE", scene_id=100001), 40053, id="40053-perm-range"),
        pytest.param(scene("QR_STR_SCENE", scene_str="x" * 65), 40053, id="40053-str-65"),
        pytest.param(scene("QR_LIMIT_STR_SCENE", scene_str=""), 40053, id="40053-str-empty"),
        pytest.param({"action_name": "QR_SCENE"}, 40053, id="40053-no-info"),
    ],
)
async def test_create_rejects_bad_scenes(http, token, body, errcode):
    assert errcode_of(await create(http, token, body)) == errcode


async def test_create_needs_post_json(http, token):
    params = {"access_token": token}
    assert errcode_of(await http.get("/cgi-bin/qrcode/create", params=params)) == 43002
    response = await http.post("/cgi-bin/qrcode/create", params=params, content=b"action=1")
    assert errcode_of(response) == 40052


async def gen(http, token, body):
    return await http.post("/cgi-bin/shorten/gen", params={"access_token": token}, json=body)


async def fetch(http, token, key):
    body = {"short_key": key}
    return await http.post("/cgi-bin/shorten/fetch", params={"access_token": token}, json=body)


async def test_short_key_round_trip_with_remaining_ttl(http, state, token):
    answer = (await gen(http, token, {"long_data": "订单=42", "expire_seconds": 1000})).json()
    key = answer["short_key"]
    assert answer["errcode"] == 0
    assert len(key) == 15
    assert key.isalnum()
    assert key.isascii()
    state.clock.advance(400)
    fetched = (await fetch(http, token, key)).json()
    assert fetched == {
        "errcode": 0,
        "errmsg": "ok",
        "long_data": "订单=42",
        "create_time": state.clock.now() - 400,
        "expire_seconds": 600,
    }
    state.clock.advance(600)
    assert errcode_of(await fetch(http, token, key)) == 9410012


async def test_short_key_defaults_to_30_days_and_is_per_account(http, state, token):
    key = (await gen(http, token, {"long_data": "x"})).json()["short_key"]
    assert (await fetch(http, token, key)).json()["expire_seconds"] == 2592000
    state.add_account("wxother", "othersecret")
    assert errcode_of(await fetch(http, state.issue_token("wxother"), key)) == 9410012


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        pytest.param({}, 47003, id="47003-no-long-data"),
        pytest.param({"long_data": "é" * 2049}, 9410010, id="9410010-over-4096-bytes"),
        pytest.param({"long_data": "x", "expire_seconds": 2592001}, 9410011, id="9410011"),
        pytest.param({"long_data": 5}, 47001, id="47001-not-a-string"),
    ],
)
async def test_gen_errors(http, token, body, errcode):
    assert errcode_of(await gen(http, token, body)) == errcode


async def test_gen_accepts_exactly_4096_bytes_and_rejects_empty_or_bad_bodies(http, token):
    assert (await gen(http, token, {"long_data": "é" * 2048})).json()["errcode"] == 0
    params = {"access_token": token}
    assert errcode_of(await http.post("/cgi-bin/shorten/gen", params=params)) == 44002
    bad = await http.post("/cgi-bin/shorten/gen", params=params, content=b"{nope")
    assert errcode_of(bad) == 47001
    assert errcode_of(await fetch(http, token, "nope")) == 9410012
