"""Quota / rid management APIs, and the pytest plugin's fixtures with the real wxqr.Client."""

from __future__ import annotations

import pytest
from sandbox_helpers import decode_qr, errcode_of

from wxqr.sandbox import DEFAULT_APPID, SandboxState

pytestmark = pytest.mark.anyio


async def post(http, token, path, body):
    return await http.post(path, params={"access_token": token}, json=body)


async def test_clear_quota_resets_daily_counters_10_times_a_month(http, state, token):
    state.default_account.daily_limits["cgi-bin/qrcode/create"] = 1
    body = {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}
    await post(http, token, "/cgi-bin/qrcode/create", body)
    assert errcode_of(await post(http, token, "/cgi-bin/qrcode/create", body)) == 45009
    quota = (
        await post(
            http, token, "/cgi-bin/openapi/quota/get", {"cgi_path": "/cgi-bin/qrcode/create"}
        )
    ).json()
    assert quota["quota"] == {"daily_limit": 1, "used": 1, "remain": 0}
    assert errcode_of(await post(http, token, "/cgi-bin/clear_quota", {"appid": "wxnot"})) == 40013
    assert (await post(http, token, "/cgi-bin/clear_quota", {"appid": DEFAULT_APPID})).json()[
        "errcode"
    ] == 0
    assert "ticket" in (await post(http, token, "/cgi-bin/qrcode/create", body)).json()
    for _ in range(9):
        await post(http, token, "/cgi-bin/clear_quota", {"appid": DEFAULT_APPID})
    assert (
        errcode_of(await post(http, token, "/cgi-bin/clear_quota", {"appid": DEFAULT_APPID}))
        == 48006
    )


async def test_quota_get_unknown_path(http, token):
    response = await post(http, token, "/cgi-bin/openapi/quota/get", {"cgi_path": "/cgi-bin/nope"})
    assert errcode_of(response) == 76021


async def test_rid_get_reports_an_error_answer_of_the_same_account(http, state, token):
    failed = (await post(http, token, "/wxa/getwxacode", {"path": ""})).json()
    rid = failed["errmsg"].rsplit(" ", 1)[1]
    info = (await post(http, token, "/cgi-bin/openapi/rid/get", {"rid": rid})).json()
    assert info["request"]["response_body"].endswith(rid + '"}')
    assert info["request"]["invoke_time"] == int(state.clock.now())
    assert errcode_of(await post(http, token, "/cgi-bin/openapi/rid/get", {"rid": "bad"})) == 76002
    missing = "00000000-00000000-00000000"
    assert (
        errcode_of(await post(http, token, "/cgi-bin/openapi/rid/get", {"rid": missing})) == 76001
    )
    state.add_account("wxother", "s")
    other = state.issue_token("wxother")
    assert errcode_of(await post(http, other, "/cgi-bin/openapi/rid/get", {"rid": rid})) == 76003
    state.clock.advance(8 * 86400)
    token = state.issue_token()
    assert errcode_of(await post(http, token, "/cgi-bin/openapi/rid/get", {"rid": rid})) == 76004


def test_wechat_sandbox_state_fixture_is_fresh_and_healthy(wechat_sandbox_state):
    assert isinstance(wechat_sandbox_state, SandboxState)
    account = wechat_sandbox_state.default_account
    assert not account.personal
    assert account.released
    assert "pages/index/index" in account.pages
    assert not wechat_sandbox_state.requests


async def test_wechat_sandbox_fixture_drives_the_real_client(wechat_sandbox):
    client, state = wechat_sandbox.client, wechat_sandbox.state
    ticket = await client.qrcode.create_temporary(scene_id=123, expire_seconds=600)
    image = await client.qrcode.show(ticket)
    assert decode_qr(image) == ticket.url
    assert state.token_fetches == {"stable_token": 1}
    assert state.calls["cgi-bin/qrcode/create"] == 1
    raw = await wechat_sandbox.http.get("/cgi-bin/showqrcode", params={"ticket": ticket.ticket})
    assert raw.content == image


def test_the_plugin_imports_without_segno_or_uvicorn():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('segno', 'uvicorn'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import wxqr.sandbox.pytest_plugin as plugin\n"
        "assert plugin.wechat_sandbox and plugin.wechat_sandbox_state\n"
        "assert 'segno' not in sys.modules and 'uvicorn' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
