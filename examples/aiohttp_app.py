"""wxqr in an aiohttp app: one client per app (``cleanup_ctx``), images, batches, errors mapped.

Run it (``pip install 'wxqr[cli]'``), from the checkout's root::

    WXQR_SANDBOX=1 python examples/aiohttp_app.py --port 8080     # the embedded emulator
    WXQR_SANDBOX=1 python -m aiohttp.web -H 127.0.0.1 -P 8080 examples.aiohttp_app:init_func
    WXQR_APPID=wx... WXQR_SECRET=... python examples/aiohttp_app.py --host 0.0.0.0

    curl -o code.png localhost:8080/qrcode/order-9
    curl -X POST localhost:8080/qrcodes -d '{"scenes": ["1", "2", "order-9"]}'

The same API as ``fastapi_app.py``: ``GET /qrcode/{scene}`` answers the image,
``POST /qrcodes`` creates up to 100 tickets with a bounded ``asyncio.gather``,
``GET /showqrcode?ticket=`` answers a ticket's image, and a middleware maps wxqr's exceptions
to HTTP answers (:func:`error_answer`); a malformed request is a 422 with the same JSON shape.
With ``WXQR_PUSH_TOKEN`` set, ``/wechat`` receives WeChat's scan pushes
(:func:`mount_scan_receiver`) and ``GET /scans`` lists who scanned which scene.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

import wxqr
from wxqr import events
from wxqr.sandbox import SANDBOX_BASE_URL

DEFAULT_EXPIRE = 604_800  # 7 days
BATCH_CONCURRENCY = 16
MAX_BATCH = 100
WX = web.AppKey("wx", wxqr.Client)
# The rule of `wxqr qrcode`: a canonical decimal integer (0 included) is a scene_id.
_INT = re.compile(r"-?[1-9][0-9]*|0")
_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_from_env() -> wxqr.Client:
    """The app's client: the in-process sandbox when ``WXQR_SANDBOX=1``, else a real account."""
    if os.environ.get("WXQR_SANDBOX") == "1":
        from wxqr.sandbox import SandboxState, sandbox_client

        return sandbox_client(SandboxState())
    appid, secret = os.environ.get("WXQR_APPID"), os.environ.get("WXQR_SECRET")
    if not appid or not secret:
        raise RuntimeError("set WXQR_APPID and WXQR_SECRET (or WXQR_SANDBOX=1)")
    return wxqr.Client(appid, secret)


def error_answer(exc: wxqr.WxqrError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Map a wxqr exception to ``(HTTP status, JSON body, headers)`` (as in fastapi_app.py)."""
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, wxqr.ValidationError):
        return 422, {**body, "argument": exc.argument}, {}
    if isinstance(exc, wxqr.TicketNotFoundError):
        return 404, body, {}
    if isinstance(exc, wxqr.APIError):
        body.update(errcode=exc.errcode, rid=exc.rid)
        if isinstance(exc, wxqr.RateLimitError):
            retry_after = str(max(1, math.ceil(exc.retry_after or 1)))
            return 429, body, {"Retry-After": retry_after}
        if isinstance(exc, wxqr.QuotaExceededError):
            return 503, body, {}
        return 502, body, {}
    if isinstance(exc, wxqr.TransportError):
        return 504, body, {}
    return 502, body, {}


def _scene(scene: str) -> dict[str, Any]:
    return {"scene_id": int(scene)} if _INT.fullmatch(scene) else {"scene_str": scene}


def _bad_request(argument: str, message: str) -> web.Response:
    """A 422 shaped like a ValidationError's answer (and like FastAPI's in fastapi_app.py)."""
    body = {"error": "ValidationError", "message": message, "argument": argument}
    return web.json_response(body, status=422)


def _image_url(request: web.Request, wx: wxqr.Client, ticket: wxqr.QrTicket) -> str:
    """WeChat's showqrcode URL, or this app's when the client is the in-process sandbox."""
    url = wx.qrcode.show_url(ticket)
    if url.startswith(SANDBOX_BASE_URL + "/"):
        path = request.app.router["showqrcode"].url_for().with_query(ticket=ticket.ticket)
        return str(request.url.join(path))
    return url


@web.middleware
async def wxqr_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn a wxqr exception raised by a handler into its HTTP answer."""
    try:
        return await handler(request)
    except wxqr.WxqrError as exc:
        status, body, headers = error_answer(exc)
        return web.json_response(body, status=status, headers=headers)


async def qrcode(request: web.Request) -> web.Response:
    """``GET /qrcode/{scene}``: the QR image of a temporary code for the scene."""
    wx = request.app[WX]
    try:
        expire = int(request.query.get("expire_seconds", DEFAULT_EXPIRE))
    except ValueError:
        return _bad_request("expire_seconds", "must be an integer")
    ticket = await wx.qrcode.create_temporary(
        expire_seconds=expire, **_scene(request.match_info["scene"])
    )
    image = await wx.qrcode.show(ticket)
    content_type = _MEDIA_TYPES[wxqr.image_kind(image) or "png"]
    return web.Response(body=image, content_type=content_type, headers={"X-QR-Url": ticket.url})


async def qrcodes(request: web.Request) -> web.Response:
    """``POST /qrcodes`` ``{"scenes": [...], "expire_seconds": N}``: one result per scene."""
    wx = request.app[WX]
    try:
        payload = await request.json()
        scenes = payload["scenes"]
        expire = payload.get("expire_seconds", DEFAULT_EXPIRE)
    except (ValueError, KeyError, TypeError, AttributeError):
        return _bad_request("scenes", 'expected a JSON object {"scenes": [...]}')
    if (
        not isinstance(scenes, list)
        or not 1 <= len(scenes) <= MAX_BATCH
        or not all(isinstance(s, str) for s in scenes)
    ):
        return _bad_request("scenes", f"must be a list of 1..{MAX_BATCH} strings")
    bound = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def one(scene: str) -> dict[str, Any]:
        async with bound:
            try:
                ticket = await wx.qrcode.create_temporary(expire_seconds=expire, **_scene(scene))
            except wxqr.WxqrError as exc:
                status, body, _ = error_answer(exc)
                return {"scene": scene, "ok": False, "status": status, **body}
        return {
            "scene": scene,
            "ok": True,
            "ticket": ticket.ticket,
            "url": ticket.url,
            "image_url": _image_url(request, wx, ticket),
            "expire_seconds": ticket.expire_seconds,
        }

    results = await asyncio.gather(*(one(scene) for scene in scenes))
    return web.json_response({"results": results})


async def showqrcode(request: web.Request) -> web.Response:
    """``GET /showqrcode?ticket=``: the image of a ticket (what WeChat's showqrcode answers)."""
    ticket = request.query.get("ticket")
    if not ticket:
        return _bad_request("ticket", "required")
    image = await request.app[WX].qrcode.show(ticket)
    return web.Response(body=image, content_type=_MEDIA_TYPES[wxqr.image_kind(image) or "png"])


def create_app(client_factory: Callable[[], wxqr.Client] = client_from_env) -> web.Application:
    """Build the app; ``client_factory`` makes its one client (tests pass a sandbox client)."""

    async def wx_client(app: web.Application) -> AsyncIterator[None]:
        async with client_factory() as client:
            app[WX] = client
            yield

    app = web.Application(middlewares=[wxqr_errors])
    app.cleanup_ctx.append(wx_client)
    app.router.add_get("/qrcode/{scene:.*}", qrcode)  # an empty scene: 422, as in FastAPI
    app.router.add_post("/qrcodes", qrcodes)
    app.router.add_get("/showqrcode", showqrcode, name="showqrcode")
    return app


# -- receiving scans (wxqr.events) -------------------------------------------------------------
# WeChat pushes every scan of your codes to the account's server URL; route a receiver there
# (server URL https://<your host>/wechat, Token WXQR_PUSH_TOKEN, EncodingAESKey WXQR_PUSH_AES_KEY).
SCANS = web.AppKey("scans", list)


def receiver_from_env() -> events.Receiver | None:
    """The push receiver configured by ``WXQR_PUSH_TOKEN`` (+ ``WXQR_PUSH_AES_KEY``), if any."""
    token = os.environ.get("WXQR_PUSH_TOKEN")
    if not token:
        return None
    key = os.environ.get("WXQR_PUSH_AES_KEY") or None
    return events.Receiver(token, encoding_aes_key=key, appid=os.environ.get("WXQR_APPID"))


def mount_scan_receiver(app: web.Application, receiver: events.Receiver) -> web.Application:
    """Receive pushes at ``/wechat``: every scan is printed and listed by ``GET /scans``."""
    scans: list[events.QrScan] = []
    app[SCANS] = scans

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> str | None:
        how = "followed by scanning" if scan.new_follower else "scanned (a follower)"
        print(f"{scan.openid} {how} scene {scan.scene!r}", flush=True)
        scans.append(scan)
        return None  # or a str: a passive text reply to the scanner

    async def list_scans(request: web.Request) -> web.Response:
        rows = [
            {"openid": s.openid, "scene": s.scene, "new_follower": s.new_follower} for s in scans
        ]
        return web.json_response(rows)

    async def open_receiver(app: web.Application) -> AsyncIterator[None]:
        async with receiver:  # slow handlers finish in the receiver's task group
            yield

    app.cleanup_ctx.append(open_receiver)
    app.router.add_route("*", "/wechat", receiver.aiohttp_handler)
    app.router.add_get("/scans", list_scans)
    return app


def app_from_env() -> web.Application:
    """The app, with the scan receiver mounted when ``WXQR_PUSH_TOKEN`` is set."""
    app = create_app()
    if (receiver := receiver_from_env()) is not None:
        mount_scan_receiver(app, receiver)
    return app


def init_func(argv: list[str] | None = None) -> web.Application:
    """For ``python -m aiohttp.web [-H HOST] [-P PORT] examples.aiohttp_app:init_func``."""
    return app_from_env()


def main(argv: list[str] | None = None) -> None:
    """``python examples/aiohttp_app.py [--host HOST] [--port PORT]``."""
    parser = argparse.ArgumentParser(description="wxqr in an aiohttp app")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    args = parser.parse_args(argv)
    web.run_app(app_from_env(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
