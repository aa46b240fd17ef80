"""The optional confirmation step against login relay: scan, then reply "1" in WeChat.

On every store (memory on asyncio and trio, Redis on asyncio), then end to end: the sandbox's
scan push and a signed text-message push through a real ``events.Receiver``.
"""

from __future__ import annotations

import time

import anyio
import pytest
from login_helpers import Clock, FakeText, fake_login, text_push

import wxqr
from wxqr import events
from wxqr.login import LoginExpired, LoginResult, ScanLogin
from wxqr.sandbox import SandboxState, VirtualClock, sandbox_client, sandbox_http_client

pytestmark = pytest.mark.anyio


async def test_a_scan_asks_and_the_scanners_reply_logs_in(make_store):
    login, _, issuer = fake_login(make_store(), site="bank.example", confirm=True)
    attempt = await login.start()

    prompt = await login.on_scan(issuer.scan_of(attempt.ticket, "oOWNER"))
    assert prompt is not None
    assert prompt.startswith("Reply 1 to log in to bank.example")
    assert await login.status(attempt.id) == "confirming"
    assert await login.wait(attempt.id, timeout=0.2) is None  # not yet logged in

    # Someone else's "1", the scanner's other words, a second scan: nothing.
    assert await login.on_message(FakeText("oSTRANGER", "1")) is None
    assert await login.on_message(FakeText("oOWNER", "hello")) is None
    assert await login.on_scan(issuer.scan_of(attempt.ticket, "oSTRANGER")) is None
    assert await login.status(attempt.id) == "confirming"

    assert await login.on_message(FakeText("oOWNER", " 1 ")) == "You are logged in to bank.example."
    assert await login.status(attempt.id) == "scanned"
    assert await login.wait(attempt.id, timeout=5) == LoginResult("oOWNER", False, 1_700_000_000)
    assert await login.on_message(FakeText("oOWNER", "1")) is None  # single use


async def test_the_confirmation_wakes_a_waiter_on_another_worker(make_store):
    login, _, issuer = fake_login(make_store(), site="bank.example", confirm=True)
    other = ScanLogin(login._client, store=make_store(), site="bank.example", confirm=True)
    attempt = await login.start()
    got: list[object] = []

    async def waiter() -> None:
        got.append(await other.wait(attempt.id, timeout=30))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await login.on_scan(issuer.scan_of(attempt.ticket, "oOWNER"))
            await anyio.sleep(0.3)
            assert got == []  # a scan alone does not log in
            started = time.monotonic()
            assert await other.on_message(FakeText("oOWNER", "1")) is not None
    assert time.monotonic() - started < 10
    assert [r.openid for r in got] == ["oOWNER"]


async def test_no_confirmation_after_the_attempt_closes(make_store):
    clock = Clock()
    login, _, issuer = fake_login(
        make_store(), site="bank.example", confirm=True, expire_seconds=60, clock=clock
    )
    attempt = await login.start()
    await login.on_scan(issuer.scan_of(attempt.ticket, "oSLOW"))
    clock.now += 71
    assert await login.on_message(FakeText("oSLOW", "1")) is None
    with pytest.raises(LoginExpired):
        await login.wait(attempt.id, timeout=1)


async def test_a_custom_confirm_text_and_no_confirm_mode(make_store):
    login, _, issuer = fake_login(
        make_store(), site="bank.example", confirm=True, confirm_text="YES"
    )
    attempt = await login.start()
    assert "Reply YES to log in" in await login.on_scan(issuer.scan_of(attempt.ticket, "oA"))
    assert await login.on_message(FakeText("oA", "1")) is None
    assert await login.on_message(FakeText("oA", "YES")) is not None

    plain, _, _ = fake_login(make_store(), site="bank.example")
    assert await plain.on_message(FakeText("oA", "1")) is None  # no confirmation step


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"confirm": True}, "site"),
        ({"confirm": "yes", "site": "x"}, "confirm"),
        ({"confirm": True, "site": "x", "confirm_text": "  "}, "confirm_text"),
        ({"confirm": True, "site": "x", "confirm_text": "x" * 17}, "confirm_text"),
    ],
)
async def test_confirm_options_are_validated(make_store, options, argument):
    with pytest.raises(wxqr.ValidationError, match=argument):
        fake_login(make_store(), **options)


# -- end to end: sandbox scan push + a signed text push through a real Receiver ---------------

PUSH_TOKEN = "confirmT0ken"
T0 = 1_700_000_000


async def test_end_to_end_through_the_receiver(make_store):
    state = SandboxState(seed=2, clock=VirtualClock(T0, frozen=True))
    http = sandbox_http_client(state)
    wx = sandbox_client(state, http_client=http)
    login = ScanLogin(
        wx, store=make_store(), site="bank.example", confirm=True, clock=state.clock.now
    )
    receiver = events.Receiver(PUSH_TOKEN, clock=state.clock.now)
    receiver.on_scan(login.on_scan)
    receiver.on("text")(login.on_message)
    state.configure_push("http://app/wechat", token=PUSH_TOKEN, app=receiver.asgi_app)
    try:
        async with wx, receiver:
            attempt = await login.start()
            push = await state.scan(attempt.ticket, openid="oPHONE")
            assert "Reply 1 to log in to bank.example" in push.deliveries[0].body.decode()
            assert await login.status(attempt.id) == "confirming"

            answer = await receiver.handle("POST", *text_push(PUSH_TOKEN, "oPHONE", "1", T0 + 5))
            assert answer.status == 200
            assert b"You are logged in to bank.example." in answer.body
            result = await login.wait(attempt.id, timeout=5)
            assert result == LoginResult("oPHONE", True, T0)
    finally:
        await http.aclose()
