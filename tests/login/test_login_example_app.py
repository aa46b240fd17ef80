"""examples/scan_login/app.py in-process: the page, the sandbox's push to /wechat, the long poll,
the session cookie. (Across processes and in a browser: test_login_example_served.py.)"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from login_helpers import text_push, ticket_in

from wxqr.sandbox import SandboxState, VirtualClock, sandbox_client, sandbox_http_client

pytest.importorskip("fastapi")

pytestmark = pytest.mark.anyio
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scan_login" / "app.py"
PUSH_TOKEN = "exampleT0ken"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # a FastAPI app


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wxqr_example_scan_login", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def site():
    state = SandboxState(seed=3, clock=VirtualClock(1_700_000_000, frozen=True))
    wechat_http = sandbox_http_client(state)
    app = load_example().create_app(
        client_factory=lambda: sandbox_client(state, http_client=wechat_http),
        push_token=PUSH_TOKEN,
        site="example.test",
        session_secret="s" * 32,
        wait_seconds=0.3,
        clock=state.clock.now,
    )
    state.configure_push("http://app/wechat", token=PUSH_TOKEN, app=app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as browser:
            yield state, browser, wechat_http
    await wechat_http.aclose()


async def test_the_page_shows_the_code_and_the_scan_logs_the_browser_in(site):
    state, browser, wechat_http = site
    page = await browser.get("/")
    assert page.status_code == 200
    assert page.headers["x-worker-pid"] == str(os.getpid())
    assert "Log in to example.test" in page.text
    image_url, ticket = ticket_in(page.text)
    attempt_cookie = page.cookies["wxqr_login"]
    assert attempt_cookie not in page.text  # the id is in an HttpOnly cookie, not the page
    assert "httponly" in page.headers["set-cookie"].lower()
    assert "samesite=strict" in page.headers["set-cookie"].lower()

    # The image is the sandbox's real QR code of the ticket's URL.
    zxingcpp = pytest.importorskip("zxingcpp")
    image_module = pytest.importorskip("PIL.Image")
    image = await wechat_http.get(image_url)
    (code,) = zxingcpp.read_barcodes(image_module.open(io.BytesIO(image.content)))
    assert code.text == state.tickets[ticket].url

    assert (await browser.post("/login/wait")).json() == {"status": "pending"}
    assert (await browser.get("/me")).status_code == 401

    push = await state.scan(ticket, openid="oBROWSER")
    assert push.delivered
    assert "You are logging in to example.test" in push.deliveries[0].body.decode()

    answer = await browser.post("/login/wait")
    assert answer.json() == {"status": "ok", "openid": "oBROWSER"}
    assert "session=" in answer.headers["set-cookie"]
    me = await browser.get("/me")
    assert me.json() == {"openid": "oBROWSER"}
    # Single use: the attempt is gone, its cookie too.
    assert (await browser.post("/login/wait")).json() == {"status": "expired"}


async def test_another_browser_cannot_take_the_login(site):
    state, browser, _ = site
    page = await browser.get("/")
    _, ticket = ticket_in(page.text)
    async with httpx.AsyncClient(transport=browser._transport, base_url="http://app") as stranger:
        await state.scan(ticket, openid="oVICTIM")
        # No cookie, a forged one: nothing.
        assert (await stranger.post("/login/wait")).json() == {"status": "expired"}
        stranger.cookies.set("wxqr_login", "A" * 43, path="/login")
        assert (await stranger.post("/login/wait")).json() == {"status": "expired"}
        stranger.cookies.set("session", "oVICTIM.9999999999.forged")
        assert (await stranger.get("/me")).status_code == 401
    assert (await browser.post("/login/wait")).json()["openid"] == "oVICTIM"


async def test_an_expired_code_tells_the_page(site):
    state, browser, _ = site
    page = await browser.get("/")
    _, ticket = ticket_in(page.text)
    state.clock.advance(300 + 11)
    assert await state.scan(ticket, openid="oLATE") is None
    assert (await browser.post("/login/wait")).json() == {"status": "expired"}


@pytest.mark.parametrize("path", ["/wechat", "/wechat/"])
async def test_the_receiver_answers_with_and_without_the_trailing_slash(site, path):
    state, browser, _ = site
    state.push.url = "http://app" + path
    page = await browser.get("/")
    _, ticket = ticket_in(page.text)
    push = await state.scan(ticket, openid="oSLASH")
    assert [d.status for d in push.deliveries] == [200]
    assert (await browser.post("/login/wait")).json()["openid"] == "oSLASH"


async def test_confirm_mode_waits_for_the_scanners_reply():
    state = SandboxState(seed=4, clock=VirtualClock(1_700_000_000, frozen=True))
    wechat_http = sandbox_http_client(state)
    app = load_example().create_app(
        client_factory=lambda: sandbox_client(state, http_client=wechat_http),
        push_token=PUSH_TOKEN,
        site="example.test",
        wait_seconds=0.3,
        confirm=True,
        clock=state.clock.now,
    )
    state.configure_push("http://app/wechat", token=PUSH_TOKEN, app=app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as browser:
            page = await browser.get("/")
            assert "Now reply 1 in WeChat to confirm." in page.text
            _, ticket = ticket_in(page.text)
            push = await state.scan(ticket, openid="oCONFIRM")
            assert "Reply 1 to log in to example.test" in push.deliveries[0].body.decode()
            assert (await browser.post("/login/wait")).json() == {"status": "confirming"}

            query, body = text_push(PUSH_TOKEN, "oCONFIRM", "1", 1_700_000_005)
            reply = await browser.post("/wechat", params=query, content=body)
            assert reply.status_code == 200
            assert "You are logged in to example.test." in reply.text
            answer = await browser.post("/login/wait")
            assert answer.json() == {"status": "ok", "openid": "oCONFIRM"}
    await wechat_http.aclose()
