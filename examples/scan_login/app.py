"""Scan with WeChat to log in: a FastAPI app that works on one worker process or many.

Run it against the served sandbox (no WeChat account needed), pushing scans to this app::

    pip install 'wxqr[dev]'   # or: wxqr[sandbox,events,redis] fastapi uvicorn
    wxqr sandbox --port 8900 --push-url http://127.0.0.1:8000/wechat --push-token T0KEN
    WXQR_API_BASE_URL=http://127.0.0.1:8900 WXQR_PUSH_TOKEN=T0KEN \\
        uvicorn examples.scan_login.app:app --port 8000
    # open http://127.0.0.1:8000/, then "scan" the code:
    curl -X POST 127.0.0.1:8900/sandbox/scan -d '{"ticket": "...", "openid": "oUSER"}'

Add ``WXQR_REDIS_URL=redis://...`` and ``SESSION_SECRET=...`` (the same in every process) to
run it under ``uvicorn --workers N`` or on several hosts. With a real account, set
``WXQR_APPID``/``WXQR_SECRET`` instead of ``WXQR_API_BASE_URL``, and configure
``https://your.site/wechat`` with the same Token (and EncodingAESKey in ``WXQR_PUSH_AES_KEY``)
as the account's server URL.

* ``GET /``: starts a :class:`~wxqr.login.ScanLogin` attempt, keeps its id in an HttpOnly,
  SameSite=Strict cookie (never in a URL), and shows the code; the page long-polls
  ``POST /login/wait`` until the scan, and then shows "logged in as <openid>".
* ``POST /login/wait``: ``{"status": "pending"}`` after ``WAIT_SECONDS`` (poll again;
  ``"confirming"`` in confirm mode once scanned),
  ``{"status": "ok", "openid": ...}`` with the session cookie set, or ``{"status":
  "expired"}``.
* ``/wechat``: the :class:`wxqr.events.Receiver`, which hands scans to ``login.on_scan``; the
  scanner is told in WeChat which site they are logging in to (the login-relay warning). With
  ``WXQR_CONFIRM=1`` the scan only asks "Reply 1 to log in to <site>", and the scanner's reply
  (``login.on_message``) logs the browser in.
* ``GET /me``: who the session cookie says is logged in.
* Every answer carries ``X-Worker-Pid``, so you (and the tests) can see which process served
  what.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

import wxqr
from wxqr import events
from wxqr.login import (
    LoginExpired,
    LoginStore,
    MemoryLoginStore,
    RedisLoginStore,
    ScanLogin,
)

WAIT_SECONDS = 20.0
SESSION_SECONDS = 7 * 86400
ATTEMPT_COOKIE = "wxqr_login"
SESSION_COOKIE = "session"
log = logging.getLogger("scan_login")


def client_from_env() -> wxqr.Client:
    """A real account (``WXQR_APPID``/``WXQR_SECRET``), or the sandbox at ``WXQR_API_BASE_URL``."""
    base = os.environ.get("WXQR_API_BASE_URL")
    if base:
        from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET

        appid = os.environ.get("WXQR_APPID", DEFAULT_APPID)
        secret = os.environ.get("WXQR_SECRET", DEFAULT_SECRET)
        return wxqr.Client(appid, secret, api_base_url=base, mp_base_url=base)
    appid, secret = os.environ.get("WXQR_APPID"), os.environ.get("WXQR_SECRET")
    if not appid or not secret:
        raise RuntimeError("set WXQR_APPID and WXQR_SECRET (or WXQR_API_BASE_URL)")
    return wxqr.Client(appid, secret)


class Sessions:
    """A stateless session cookie: ``openid.expiry.hmac`` signed with the shared secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, openid: str) -> str:
        payload = f"{openid}.{int(time.time()) + SESSION_SECONDS}"
        return f"{payload}.{self._sign(payload)}"

    def openid(self, cookie: str | None) -> str | None:
        if not cookie or cookie.count(".") < 2:
            return None
        payload, signature = cookie.rsplit(".", 1)
        openid, expiry = payload.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        return openid if expiry.isdigit() and int(expiry) > time.time() else None


class WorkerPid:
    """ASGI middleware: every answer, the Receiver's included, says which process served it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with_pid(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-worker-pid", self.pid)]}
            await send(message)

        await self.app(scope, receive, send_with_pid if scope["type"] == "http" else send)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in with WeChat - {site}</title></head>
<body>
<h1>Log in to {site}</h1>
<img id="qr" src="{image_url}" alt="WeChat QR code" width="215" height="215">
<p id="status">Scan the code with WeChat to log in.</p>
<script>
const status = document.getElementById("status");
async function poll() {{
  for (let failures = 0; failures < 5;) {{
    let answer;
    try {{
      const response = await fetch("/login/wait", {{method: "POST"}});
      answer = await response.json();
    }} catch (err) {{
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }}
    if (answer.status === "ok") {{
      status.textContent = "logged in as " + answer.openid;
      document.getElementById("qr").hidden = true;
      return;
    }}
    if (answer.status === "confirming") {{
      status.textContent = "Now reply 1 in WeChat to confirm.";
      continue;
    }}
    if (answer.status !== "pending") {{
      status.textContent = "This code has expired: reload the page.";
      return;
    }}
  }}
  status.textContent = "Connection lost: reload the page.";
}}
poll();
</script>
</body></html>
"""


def create_app(
    *,
    client_factory: Callable[[], wxqr.Client] = client_from_env,
    push_token: str | None = None,
    push_aes_key: str | None = None,
    redis_url: str | None = None,
    site: str | None = None,
    session_secret: str | None = None,
    expire_seconds: int = 300,
    wait_seconds: float = WAIT_SECONDS,
    confirm: bool | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the app. Every argument defaults to its environment variable (see module docs).

    Args:
        client_factory: makes the app's one :class:`wxqr.Client` (tests pass a sandbox one).
        push_token / push_aes_key: the push Token / EncodingAESKey of the server config.
        redis_url: share attempts (and WeChat's resend de-duplication) between processes.
        site: the name the scanner sees in WeChat.
        session_secret: signs session cookies; the same in every process.
        confirm: the confirmation step (``WXQR_CONFIRM=1``): the scanner must reply "1" in
            WeChat before the browser is logged in.
        clock: Unix time for code expiry and push timestamps (a sandbox's virtual clock).
    """
    push_token = push_token or os.environ.get("WXQR_PUSH_TOKEN")
    if not push_token:
        raise RuntimeError("set WXQR_PUSH_TOKEN (the Token of the server configuration)")
    push_aes_key = push_aes_key or os.environ.get("WXQR_PUSH_AES_KEY") or None
    redis_url = redis_url or os.environ.get("WXQR_REDIS_URL") or None
    site = site or os.environ.get("WXQR_SITE", "the wxqr example")
    secret = session_secret or os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
    if confirm is None:
        confirm = os.environ.get("WXQR_CONFIRM") == "1"
    sessions = Sessions(secret.encode())

    wx = client_factory()
    redis: Any = None
    store: LoginStore
    if redis_url:
        import redis.asyncio

        redis = redis.asyncio.Redis.from_url(redis_url)
        store = RedisLoginStore(redis)
        dedup: events.Dedup = events.RedisDedup(redis)
    else:
        store, dedup = MemoryLoginStore(), events.MemoryDedup()
    login = ScanLogin(
        wx, store=store, expire_seconds=expire_seconds, site=site, confirm=confirm, clock=clock
    )
    receiver = events.Receiver(
        push_token,
        encoding_aes_key=push_aes_key,
        appid=wx.appid if push_aes_key else None,
        dedup=dedup,
        clock=clock,
    )

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> str | None:
        reply = await login.on_scan(scan)
        log.info("pid %d: scan by %s: %s", os.getpid(), scan.openid, reply and "accepted")
        return reply

    if confirm:
        receiver.on("text")(login.on_message)  # the scanner's "1" completes the login

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(wx)
            # Starlette does not run a mounted app's lifespan: open the Receiver here.
            await stack.enter_async_context(receiver)
            if redis is not None:
                stack.push_async_callback(redis.aclose)
            yield

    app = FastAPI(title="Scan to log in (wxqr)", lifespan=lifespan)
    app.state.login = login
    # The exact path: a mount matches only below it (Starlette would answer "POST /wechat"
    # with a redirect, which WeChat does not follow). The mount serves ".../wechat/".
    app.add_route("/wechat", receiver.asgi_app, methods=["GET", "POST"])
    app.mount("/wechat", receiver.asgi_app)
    app.add_middleware(WorkerPid)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        attempt = await login.start()
        body = _PAGE.format(site=html.escape(site), image_url=html.escape(attempt.image_url))
        response = HTMLResponse(body, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            ATTEMPT_COOKIE,
            attempt.id,
            max_age=expire_seconds + 60,
            path="/login",
            httponly=True,
            samesite="strict",
        )
        return response

    @app.post("/login/wait")
    async def wait(request: Request) -> JSONResponse:
        attempt_id = request.cookies.get(ATTEMPT_COOKIE, "")
        try:
            result = await login.wait(attempt_id, timeout=wait_seconds)
        except (LoginExpired, wxqr.ValidationError):
            return JSONResponse({"status": "expired"})
        if result is None:  # poll again; "confirming": scanned, waiting for the scanner's "1"
            confirming = await login.status(attempt_id) == "confirming"
            return JSONResponse({"status": "confirming" if confirming else "pending"})
        log.info("pid %d: %s logged in", os.getpid(), result.openid)
        response = JSONResponse({"status": "ok", "openid": result.openid})
        response.set_cookie(
            SESSION_COOKIE,
            sessions.issue(result.openid),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
        )
        response.delete_cookie(ATTEMPT_COOKIE, path="/login")
        return response

    @app.get("/me")
    async def me(request: Request) -> JSONResponse:
        openid = sessions.openid(request.cookies.get(SESSION_COOKIE))
        return JSONResponse({"openid": openid}, status_code=200 if openid else 401)

    return app


def __getattr__(name: str) -> Any:
    # ``uvicorn examples.scan_login.app:app`` builds the app from the environment on first use,
    # so importing this module (tests do) needs no environment.
    if name == "app":
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s: %(message)s")
        return create_app()
    raise AttributeError(name)
