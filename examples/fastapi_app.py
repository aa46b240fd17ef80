"""wxqr in a FastAPI app: one client per app, QR images over HTTP, batches, errors mapped.

Run it (``pip install 'wxqr[cli]' fastapi``)::

    WXQR_SANDBOX=1 uvicorn examples.fastapi_app:app            # the embedded emulator
    WXQR_APPID=wx... WXQR_SECRET=... uvicorn examples.fastapi_app:app

    curl -o code.png localhost:8000/qrcode/order-9
    curl -X POST localhost:8000/qrcodes -H 'content-type: application/json' \\
         -d '{"scenes": ["1", "2", "order-9"]}'

* One :class:`wxqr.Client` lives for the whole app (opened and closed by the lifespan): one
  connection pool and one token for every request, however many run at once.
* ``GET /qrcode/{scene}``: the image of a temporary Official Account code (a scene written as a
  decimal integer is a ``scene_id``, anything else a ``scene_str``).
* ``POST /qrcodes``: up to 100 scenes at once with ``asyncio.gather``, at most
  ``BATCH_CONCURRENCY`` at a time; one JSON result per scene, failures included.
* ``GET /showqrcode?ticket=``: the image of a ticket (``image_url`` points here when the
  client is the in-process sandbox, whose own URLs cannot be fetched from outside).
* wxqr's exceptions become HTTP answers in one place (:func:`error_answer`); a malformed
  request is a 422 with the same JSON shape (``{"error": "ValidationError", "argument", ...}``).
* ``/wechat``: the scan receiver (:func:`mount_scan_receiver`, when ``WXQR_PUSH_TOKEN`` is set):
  prints who scanned which scene; ``GET /scans`` lists them.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

import wxqr
from wxqr import events
from wxqr.sandbox import SANDBOX_BASE_URL

DEFAULT_EXPIRE = 604_800  # 7 days
BATCH_CONCURRENCY = 16
# The rule of `wxqr qrcode`: a canonical decimal integer (0 included) is a scene_id.
_INT = re.compile(r"-?[1-9][0-9]*|0")
_MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}


def client_from_env() -> wxqr.Client:
    """The app's client: the in-process sandbox when ``WXQR_SANDBOX=1``, else a real account.

    Raises:
        RuntimeError: neither ``WXQR_SANDBOX=1`` nor ``WXQR_APPID``/``WXQR_SECRET`` is set.
    """
    if os.environ.get("WXQR_SANDBOX") == "1":
        from wxqr.sandbox import SandboxState, sandbox_client

        return sandbox_client(SandboxState())
    appid, secret = os.environ.get("WXQR_APPID"), os.environ.get("WXQR_SECRET")
    if not appid or not secret:
        raise RuntimeError("set WXQR_APPID and WXQR_SECRET (or WXQR_SANDBOX=1)")
    return wxqr.Client(appid, secret)


def error_answer(exc: wxqr.WxqrError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Map a wxqr exception to ``(HTTP status, JSON body, headers)``.

    ValidationError → 422 (the caller's input); RateLimitError → 429 with ``Retry-After``;
    QuotaExceededError → 503 (the account's quota, not this caller's, is used up);
    TicketNotFoundError → 404; other APIError → 502 with ``errcode`` and ``rid``;
    TransportError → 504; anything else from WeChat (HTML page, truncated image) → 502.
    """
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


def _image_url(request: Request, wx: wxqr.Client, ticket: wxqr.QrTicket) -> str:
    """WeChat's showqrcode URL, or this app's when the client is the in-process sandbox."""
    url = wx.qrcode.show_url(ticket)
    if url.startswith(SANDBOX_BASE_URL + "/"):
        return str(request.url_for("showqrcode").include_query_params(ticket=ticket.ticket))
    return url


class Batch(BaseModel):
    """The body of ``POST /qrcodes``."""

    scenes: list[str] = Field(min_length=1, max_length=100)
    expire_seconds: int = DEFAULT_EXPIRE


def create_app(client_factory: Callable[[], wxqr.Client] = client_from_env) -> FastAPI:
    """Build the app; ``client_factory`` makes its one client (tests pass a sandbox client)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client_factory() as client:
            app.state.wx = client
            yield

    app = FastAPI(title="wxqr example", lifespan=lifespan)

    @app.exception_handler(wxqr.WxqrError)
    async def on_wxqr_error(request: Request, exc: wxqr.WxqrError) -> JSONResponse:
        status, body, headers = error_answer(exc)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        (first, *_) = exc.errors()
        argument = ".".join(str(part) for part in first["loc"][1:])  # after "body"/"query"
        body = {"error": "ValidationError", "message": first["msg"], "argument": argument}
        return JSONResponse(body, status_code=422)

    @app.get("/showqrcode", name="showqrcode")
    async def showqrcode(ticket: str, request: Request) -> Response:
        """The image of a ticket (what WeChat's showqrcode answers)."""
        wx: wxqr.Client = request.app.state.wx
        image = await wx.qrcode.show(ticket)
        return Response(image, media_type=_MEDIA_TYPES[wxqr.image_kind(image) or "png"])

    @app.get("/qrcode/{scene:path}")
    async def qrcode(
        scene: str, request: Request, expire_seconds: int = DEFAULT_EXPIRE
    ) -> Response:
        """The QR image of a temporary code for ``scene``."""
        wx: wxqr.Client = request.app.state.wx
        ticket = await wx.qrcode.create_temporary(expire_seconds=expire_seconds, **_scene(scene))
        image = await wx.qrcode.show(ticket)
        media_type = _MEDIA_TYPES[wxqr.image_kind(image) or "png"]
        return Response(image, media_type=media_type, headers={"X-QR-Url": ticket.url})

    @app.post("/qrcodes")
    async def qrcodes(batch: Batch, request: Request) -> dict[str, Any]:
        """Tickets for many scenes; each result is ``{"scene", "ok", ...}``, in input order."""
        wx: wxqr.Client = request.app.state.wx
        bound = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def one(scene: str) -> dict[str, Any]:
            async with bound:
                try:
                    ticket = await wx.qrcode.create_temporary(
                        expire_seconds=batch.expire_seconds, **_scene(scene)
                    )
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

        results = await asyncio.gather(*(one(scene) for scene in batch.scenes))
        return {"results": results}

    return app


# -- receiving scans (wxqr.events) -------------------------------------------------------------
# WeChat pushes every scan of your codes to the account's server URL; mount a receiver there.
# Configure the server URL as https://<your host>/wechat with the same Token (and, in safe
# mode, EncodingAESKey) as WXQR_PUSH_TOKEN / WXQR_PUSH_AES_KEY; WXQR_APPID is the AppID.


def receiver_from_env() -> events.Receiver | None:
    """The push receiver configured by ``WXQR_PUSH_TOKEN`` (+ ``WXQR_PUSH_AES_KEY``), if any."""
    token = os.environ.get("WXQR_PUSH_TOKEN")
    if not token:
        return None
    key = os.environ.get("WXQR_PUSH_AES_KEY") or None
    return events.Receiver(token, encoding_aes_key=key, appid=os.environ.get("WXQR_APPID"))


def mount_scan_receiver(app: FastAPI, receiver: events.Receiver) -> FastAPI:
    """Receive pushes at ``/wechat``: every scan is printed and listed by ``GET /scans``."""
    scans: list[events.QrScan] = []
    app.state.scans = scans

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> str | None:
        how = "followed by scanning" if scan.new_follower else "scanned (a follower)"
        print(f"{scan.openid} {how} scene {scan.scene!r}", flush=True)
        scans.append(scan)
        return None  # or a str: a passive text reply to the scanner

    @app.get("/scans")
    async def list_scans() -> list[dict[str, Any]]:
        """Who scanned which scene, oldest first."""
        return [
            {"openid": s.openid, "scene": s.scene, "new_follower": s.new_follower} for s in scans
        ]

    # The exact path (``app.mount("/wechat", ...)`` would only match below it: "/wechat/").
    app.add_route("/wechat", receiver.asgi_app, methods=["GET", "POST"], include_in_schema=False)
    # Mounted apps get no ASGI lifespan: open the receiver with the app's own, so that a slow
    # handler is answered ``success`` in time and finishes in the receiver's task group.
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with receiver, inner(app) as state:
            yield state

    app.router.lifespan_context = lifespan
    return app


app = create_app()
if (_receiver := receiver_from_env()) is not None:
    mount_scan_receiver(app, _receiver)
