"""``wxqr.sandbox``: a faithful WeChat emulator that ships with the SDK.

It answers every endpoint wxqr uses — both token kinds, ``qrcode/create`` + ``showqrcode``,
``shorten``, the ``qrcodejump`` family, the three wxacode calls, the Mini Program links, the
quota/rid APIs and the callback-IP and network-check APIs — from the facts in the reference,
over an explicit :class:`SandboxState`: accounts, a virtual clock, quotas, recorded requests
and injected faults. Use it in-process (fast tests)::

    state = SandboxState(seed=1)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state)),
                             base_url="http://sandbox")

or on a real socket (integration tests, benchmarks, manual poking)::

    with served(state) as base_url: ...          # uvicorn in a background thread
    $ wxqr sandbox --port 8900 --fault wxa/getwxacode:errcode:-1@2

and in your own tests through the pytest plugin's ``wechat_sandbox`` fixture. It also pushes
scans to your server URL as WeChat does (``state.configure_push(url, token=...)``, then
``await state.scan(ticket, openid=..., following=...)``; served: ``POST /sandbox/scan``).
Installing the ``sandbox`` extra (``segno``, ``uvicorn``) is needed to draw images and to serve
on a socket.
"""

from __future__ import annotations

from ._app import ROUTES, Route, create_app
from ._clients import SANDBOX_BASE_URL, sandbox_client, sandbox_http_client
from ._clock import VirtualClock
from ._faults import Fault, FaultKind, FaultPlan, parse_fault_spec
from ._images import qr_png
from ._push import Delivery, Push, PushConfig
from ._serve import build_parser, serve, serve_main, served
from ._state import (
    DEFAULT_APPID,
    DEFAULT_PAGES,
    DEFAULT_SECRET,
    Account,
    IssuedToken,
    JumpRule,
    MiniLink,
    RecordedRequest,
    SandboxState,
    ShortKey,
    Ticket,
)

#: The endpoint names the sandbox answers (paths without the leading slash).
ENDPOINTS: tuple[str, ...] = tuple(ROUTES)

__all__ = [
    "DEFAULT_APPID",
    "DEFAULT_PAGES",
    "DEFAULT_SECRET",
    "ENDPOINTS",
    "ROUTES",
    "SANDBOX_BASE_URL",
    "Account",
    "Delivery",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "IssuedToken",
    "JumpRule",
    "MiniLink",
    "Push",
    "PushConfig",
    "RecordedRequest",
    "Route",
    "SandboxState",
    "ShortKey",
    "Ticket",
    "VirtualClock",
    "build_parser",
    "create_app",
    "parse_fault_spec",
    "qr_png",
    "sandbox_client",
    "sandbox_http_client",
    "serve",
    "serve_main",
    "served",
]
