"""A failed token fetch fails once; a token's margin costs at most one extra fetch.

Rows of issue 12: "wrong AppSecret, 2,000 gathered calls: 2,000 stable_token requests, one
after another, 88 s; the token endpoint answering busy: 4 requests per waiting caller" and
"refresh_margin=600 (or >= 7200): a stable_token fetch on every call".

Everything over real loopback sockets (the tests' WeChat stand-in, or the sandbox served by
uvicorn), counted at the server; asyncio and trio.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import pytest
from hostile_tokens_support import APPID, SECRET, StandIn, standin
from mockwechat import FakeWeChat, error

import wxqr
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, VirtualClock, served

pytestmark = pytest.mark.anyio


@pytest.fixture
def wechat() -> Iterator[tuple[StandIn, str]]:
    with standin() as served_app:
        yield served_app


def client(base_url: str, **options) -> wxqr.Client:
    return wxqr.Client(APPID, SECRET, api_base_url=base_url, mp_base_url=base_url, **options)


async def gather(count: int, call) -> list:
    results: list = [None] * count

    async def run(i: int) -> None:
        try:
            results[i] = await call(i)
        except Exception as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(run, i)
    return results


async def test_2000_gathered_calls_with_a_wrong_secret_cost_one_token_request(wechat):
    app, base_url = wechat
    app.token_answer = {"errcode": 40125, "errmsg": "invalid appsecret rid: 1-2-3"}
    app.token_delay = 0.05  # the fetch is in flight while the 2,000 calls pile up
    async with client(base_url) as wx:
        # Open the connection first (showqrcode needs no token): the figure is the storm's.
        with pytest.raises(wxqr.TicketNotFoundError):
            await wx.qrcode.show("warm-up")
        # Baseline of the same run: 2,000 gathered calls that never leave the process.
        started = time.monotonic()
        invalid = await gather(
            2000, lambda i: wx.qrcode.create_temporary(scene_id=0, expire_seconds=60)
        )
        baseline = time.monotonic() - started
        assert all(isinstance(r, wxqr.ValidationError) for r in invalid)
        started = time.monotonic()
        results = await gather(
            2000, lambda i: wx.qrcode.create_temporary(scene_id=i + 1, expire_seconds=60)
        )
        elapsed = time.monotonic() - started
        # Within the cool-down a new call fails at once, with the original error, unasked.
        with pytest.raises(wxqr.CredentialError) as later:
            await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
    assert all(isinstance(r, wxqr.CredentialError) for r in results)
    assert {(r.errcode, r.endpoint) for r in results} == {(40125, "cgi-bin/stable_token")}
    assert later.value.errcode == 40125
    assert app.token_requests <= 2  # was: 2,000 requests, one after another, 88 s
    assert app.arrivals.get("cgi-bin/qrcode/create") is None
    # "Well under a second": ~0.35 s measured here on a busy machine, ~1.5x the baseline of
    # calls that fail validation (was: 88 s). Relative, so a loaded machine does not fail it.
    assert elapsed < 3 * baseline + 0.3, (elapsed, baseline)


async def test_the_refusal_cool_down_ends(wechat):
    app, base_url = wechat
    app.token_answer = {"errcode": 40164, "errmsg": "invalid ip 1.2.3.4, not in whitelist"}
    async with client(base_url, refusal_cooldown=0.3) as wx:
        for _ in range(5):
            with pytest.raises(wxqr.CredentialError):
                await wx.access_token()
        assert app.token_requests == 1
        await anyio.sleep(0.4)
        app.token_answer = None  # the administrator fixed the whitelist
        assert await wx.access_token() == app.issued[0]
    assert app.token_requests == 2


async def test_a_busy_token_endpoint_is_retried_by_the_one_flight_only(wechat):
    app, base_url = wechat
    app.token_answer = {"errcode": -1, "errmsg": "system error"}
    async with client(base_url, max_retries=2, retry_backoff=0.01) as wx:
        results = await gather(
            200, lambda i: wx.qrcode.create_temporary(scene_id=i + 1, expire_seconds=60)
        )
    assert all(isinstance(r, wxqr.SystemBusyError) for r in results)
    # One flight: 1 request + 2 retries for all 200 callers (was: 4 per waiting caller).
    assert app.token_requests == 3


async def test_waiters_share_the_flights_recovery_from_a_transient_failure(wechat):
    app, base_url = wechat
    app.token_delay = 0.02
    app.busy_first = 2
    async with client(base_url, max_retries=3, retry_backoff=0.02) as wx:
        results = await gather(
            100, lambda i: wx.qrcode.create_temporary(scene_id=i + 1, expire_seconds=60)
        )
    assert all(isinstance(r, wxqr.QrTicket) for r in results), results[:3]
    assert len(app.issued) == 1
    assert app.token_requests == 3  # one flight: 2 busy answers, then the token


async def test_refresh_margin_600_costs_one_fetch_not_one_per_call():
    # stable_token answers the current token until its last 300 s: with refresh_margin=600 a
    # token with 500 s left "always looks about to expire". Counted at the served sandbox.
    state = SandboxState(seed=3, clock=VirtualClock())
    with served(state) as base_url:
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{base_url}/cgi-bin/stable_token",
                json={
                    "grant_type": "client_credential",
                    "appid": DEFAULT_APPID,
                    "secret": DEFAULT_SECRET,
                },
            )
        current = answer.json()["access_token"]
        state.clock.advance(7200 - 500)  # the current token has 500 s left
        async with wxqr.Client(
            DEFAULT_APPID,
            DEFAULT_SECRET,
            api_base_url=base_url,
            mp_base_url=base_url,
            refresh_margin=600,
        ) as wx:
            for i in range(50):
                await wx.qrcode.create_temporary(scene_id=i + 1, expire_seconds=60)
            used = await wx.access_token()
    assert used == current  # the token WeChat just issued is used though inside the margin
    assert state.calls["cgi-bin/stable_token"] == 2  # ours + 1 (was: 1 + 50, one per call)
    assert state.calls["cgi-bin/qrcode/create"] == 50


@pytest.mark.parametrize("margin", [7200, 7200.5, 86400, -1, float("inf"), float("nan"), "300"])
def test_a_refresh_margin_outside_the_token_life_is_refused(margin):
    with pytest.raises(wxqr.ValidationError) as info:
        wxqr.Client(APPID, SECRET, refresh_margin=margin)
    assert info.value.argument == "refresh_margin"
    assert "< 7200" in str(info.value)


ACCOUNT_LEVEL = sorted(code for code, row in wxqr.errors.CATALOGUE.items() if row.account_level)


def test_the_catalogue_marks_the_refusals_of_the_account():
    assert {40013, 40125, 40164, 40243, 50002, 50004, 50007, 89503, 89506} <= set(ACCOUNT_LEVEL)
    # Transient or per-call answers never make the client fail fast.
    assert not {-1, 886001, 45009, 45011, 44990, 40001, 42001} & set(ACCOUNT_LEVEL)


@pytest.mark.parametrize("errcode", [*ACCOUNT_LEVEL, 40001], ids=str)
async def test_every_account_level_refusal_of_the_token_endpoint_fails_fast(errcode):

    fake = FakeWeChat()
    fake.reply_always("cgi-bin/stable_token", error(errcode))
    async with fake.client() as wx:
        for _ in range(50):
            with pytest.raises(wxqr.APIError) as info:
                await wx.shorten.fetch("iTqRJFSEqk9RvPk")
            assert info.value.errcode == errcode
            assert info.value.account_level
    assert len(fake.requests) == 1  # one token request; the other 49 calls asked nobody


async def test_a_transient_token_failure_is_not_remembered():

    fake = FakeWeChat()
    fake.reply("cgi-bin/stable_token", *[error(-1)] * 2)
    async with fake.client(max_retries=1, retry_backoff=0) as wx:
        with pytest.raises(wxqr.SystemBusyError):
            await wx.access_token()
        assert await wx.access_token() == fake.issued[0]  # asked again at once
    assert len(fake.token_requests) == 3
