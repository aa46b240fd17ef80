"""ScanLogin end to end in-process: the sandbox creates the code and pushes the scan, signed, to a
real ``events.Receiver``, whose scan handler is ``login.on_scan``.

Runs on every store (memory on asyncio and trio, Redis on asyncio); expiry is on the sandbox's
virtual clock (frozen), which the Receiver and ScanLogin read too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

from wxqr import events
from wxqr.login import LoginExpired, LoginResult, ScanLogin
from wxqr.sandbox import SandboxState, VirtualClock, sandbox_client, sandbox_http_client

pytestmark = pytest.mark.anyio

PUSH_TOKEN = "pushT0ken4login"
T0 = 1_700_000_000


@attrs.define
class World:
    state: SandboxState
    login: ScanLogin
    receiver: events.Receiver
    wx: object


@pytest.fixture
async def world(make_store) -> AsyncIterator[World]:
    state = SandboxState(seed=11, clock=VirtualClock(T0, frozen=True))
    http = sandbox_http_client(state)
    wx = sandbox_client(state, http_client=http)
    login = ScanLogin(
        wx, store=make_store(), expire_seconds=120, site="shop.example", clock=state.clock.now
    )
    receiver = events.Receiver(PUSH_TOKEN, clock=state.clock.now)
    receiver.on_scan(login.on_scan)
    state.configure_push("http://app/wechat", token=PUSH_TOKEN, app=receiver.asgi_app)
    async with wx, receiver:
        yield World(state, login, receiver, wx)
    await http.aclose()


def _reply_text(push) -> str:
    (delivery,) = push.deliveries
    assert delivery.status == 200
    return delivery.body.decode()


async def test_start_scan_wait_returns_the_openid(world):
    attempt = await world.login.start()
    push = await world.state.scan(attempt.ticket, openid="oNEWUSER", following=False)

    assert push.event == "subscribe"  # a non-follower follows by scanning
    assert push.event_key.startswith("qrscene_L")
    reply = _reply_text(push)
    assert "<MsgType><![CDATA[text]]></MsgType>" in reply
    assert "You are logging in to shop.example" in reply
    assert "<ToUserName><![CDATA[oNEWUSER]]></ToUserName>" in reply

    result = await world.login.wait(attempt.id, timeout=5)
    assert result == LoginResult("oNEWUSER", True, T0)


async def test_a_follower_scan_logs_in_too(world):
    attempt = await world.login.start()
    push = await world.state.scan(attempt.ticket, openid="oFAN", following=True)
    assert push.event == "SCAN"
    result = await world.login.wait(attempt.id, timeout=5)
    assert result == LoginResult("oFAN", False, T0)


async def test_a_scan_of_an_unrelated_code_is_ignored(world):
    attempt = await world.login.start()
    other = await world.wx.qrcode.create_temporary(scene_str="order-9", expire_seconds=60)

    push = await world.state.scan(other, openid="oSHOPPER")
    assert _reply_text(push) == "success"  # on_scan returned None: no passive reply
    assert await world.login.status(attempt.id) == "pending"
    assert await world.login.wait(attempt.id, timeout=0.2) is None


async def test_a_second_scan_does_not_take_over(world):
    attempt = await world.login.start()
    await world.state.scan(attempt.ticket, openid="oFIRST")
    second = await world.state.scan(attempt.ticket, openid="oSECOND")
    assert second is not None
    assert _reply_text(second) == "success"
    result = await world.login.wait(attempt.id, timeout=5)
    assert result.openid == "oFIRST"


async def test_duplicated_deliveries_log_in_once(world):
    world.state.push.duplicate = 2  # WeChat delivering the same push three times
    attempt = await world.login.start()
    push = await world.state.scan(attempt.ticket, openid="oDUP")
    assert len(push.deliveries) == 3
    assert await world.login.wait(attempt.id, timeout=5) == LoginResult("oDUP", True, T0)
    with pytest.raises(LoginExpired):
        await world.login.wait(attempt.id, timeout=1)


async def test_expiry_on_the_virtual_clock(world):
    attempt = await world.login.start()
    assert attempt.expires_at == T0 + 120
    world.state.clock.advance(121)

    # WeChat refuses a scan of an expired code: nothing is pushed.
    assert await world.state.scan(attempt.ticket, openid="oLATE") is None
    assert await world.login.status(attempt.id) == "pending"  # within the 10 s grace
    world.state.clock.advance(10)
    assert await world.login.status(attempt.id) == "expired"
    with pytest.raises(LoginExpired) as info:
        await world.login.wait(attempt.id, timeout=5)
    assert info.value.status == "expired"


async def test_consumed_after_one_wait(world):
    attempt = await world.login.start()
    await world.state.scan(attempt.ticket, openid="oONCE")
    assert await world.login.status(attempt.id) == "scanned"
    assert (await world.login.wait(attempt.id, timeout=5)).openid == "oONCE"
    assert await world.login.status(attempt.id) == "consumed"
    with pytest.raises(LoginExpired) as info:
        await world.login.wait(attempt.id, timeout=5)
    assert info.value.status == "consumed"


async def test_safe_mode_pushes_log_in_too(world, make_store):
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    state = world.state
    receiver = events.Receiver(
        PUSH_TOKEN, encoding_aes_key=key, appid=state.default_account.appid, clock=state.clock.now
    )
    receiver.on_scan(world.login.on_scan)
    state.configure_push(
        "http://app/wechat", token=PUSH_TOKEN, app=receiver.asgi_app, mode="safe",
        encoding_aes_key=key,
    )  # fmt: skip
    async with receiver:
        attempt = await world.login.start()
        push = await state.scan(attempt.ticket, openid="oSAFE")
    body = _reply_text(push)
    assert "<Encrypt>" in body
    assert "shop.example" not in body  # the reply is encrypted
    assert (await world.login.wait(attempt.id, timeout=5)).openid == "oSAFE"
