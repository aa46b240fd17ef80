"""The ASGI application: routing, the shared checks of every API call, faults and the wire.

Plain ASGI rather than Starlette, deliberately: the sandbox needs no routing DSL (one dict maps a
path to a handler), must control the wire exactly (WeChat's odd content types, HTTP 200 errors,
really dropped connections) and must add no dependency to the ``sandbox`` extra beyond
``segno`` (drawing) and ``uvicorn`` (serving on a socket). In-process use needs neither server
nor framework: ``httpx.ASGITransport(app=create_app(state))``.

One app serves both WeChat hosts, routed by path: ``api.weixin.qq.com`` (``/cgi-bin/...``,
``/wxa/...``) and ``mp.weixin.qq.com`` (``/cgi-bin/showqrcode``). Unknown paths answer HTTP 404.

Every token-authenticated API goes through the same steps (``_dispatch``): access token
(41001/40014/40001/42001), method (``Route.method``: 43002 unless POST, 43001 unless GET for
the GET APIs), JSON body of POST APIs (the endpoint's own errcode), daily quota (45009, and
today's ``used`` count), then the endpoint's handler. Handlers are synchronous and run under
``state.lock``; only injected latency awaits (``anyio.sleep``, so trio works too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import anyio
import attrs
import httpx

from . import _links, _openapi, _push, _qrcode, _qrcode_jump, _shorten, _tokens, _wxacode
from ._faults import REPLACING_KINDS, Fault, FaultKind
from ._http import (
    ASGIApp,
    Call,
    Message,
    Receive,
    Reject,
    Request,
    Response,
    Scope,
    Send,
    catalogue_errmsg,
    html_response,
    json_response,
    parse_json_object,
)
from ._state import RecordedRequest, RidRecord, SandboxState

__all__ = ["ROUTES", "Route", "create_app"]


@attrs.frozen
class Route:
    """How one endpoint is served.

    Attributes:
        handler: builds the answer (may raise :class:`Reject`).
        authenticated: needs ``?access_token=`` (then POST + a JSON object body are required).
        bad_json: the errcode for a body that is not a JSON object.
        empty_body: the errcode for an empty body; ``None`` treats it as ``{}``.
        method: the HTTP method of an authenticated API (``"GET"`` APIs take no body).
    """

    handler: Callable[[Call], Response]
    authenticated: bool = True
    bad_json: int = 47001
    empty_body: int | None = None
    method: str = "POST"


_JUMP = "cgi-bin/wxopen/qrcodejump"

#: endpoint path (without the leading slash) -> :class:`Route`.
ROUTES: dict[str, Route] = {
    "cgi-bin/token": Route(_tokens.handle_token, authenticated=False),
    "cgi-bin/stable_token": Route(_tokens.handle_stable_token, authenticated=False),
    "cgi-bin/qrcode/create": Route(_qrcode.handle_create, bad_json=40052),
    "cgi-bin/showqrcode": Route(_qrcode.handle_showqrcode, authenticated=False),
    "cgi-bin/shorten/gen": Route(_shorten.handle_gen, empty_body=44002),
    "cgi-bin/shorten/fetch": Route(_shorten.handle_fetch, empty_body=44002),
    _JUMP + "add": Route(_qrcode_jump.handle_add),
    _JUMP + "get": Route(_qrcode_jump.handle_get),
    _JUMP + "delete": Route(_qrcode_jump.handle_delete),
    _JUMP + "publish": Route(_qrcode_jump.handle_publish),
    _JUMP + "download": Route(_qrcode_jump.handle_download),
    "cgi-bin/wxaapp/createwxaqrcode": Route(_wxacode.handle_createwxaqrcode, bad_json=40159),
    "wxa/getwxacode": Route(_wxacode.handle_getwxacode, bad_json=40159),
    "wxa/getwxacodeunlimit": Route(_wxacode.handle_getwxacodeunlimit, bad_json=40169),
    "cgi-bin/clear_quota": Route(_openapi.handle_clear_quota),
    "cgi-bin/openapi/quota/get": Route(_openapi.handle_quota_get),
    "cgi-bin/openapi/rid/get": Route(_openapi.handle_rid_get),
    # Mini Program links (links.md)
    "wxa/generatescheme": Route(_links.handle_generate_scheme),
    "wxa/queryscheme": Route(_links.handle_query_scheme),
    "wxa/generatenfcscheme": Route(_links.handle_generate_nfc_scheme),
    "wxa/generate_urllink": Route(_links.handle_generate_url_link),
    "wxa/query_urllink": Route(_links.handle_query_url_link),
    "wxa/genwxashortlink": Route(_links.handle_generate_short_link),
    "cgi-bin/clear_quota/v2": Route(_openapi.handle_clear_quota_v2, authenticated=False),
    "cgi-bin/openapi/quota/clear": Route(_openapi.handle_clear_api_quota),
    "cgi-bin/getcallbackip": Route(_openapi.handle_getcallbackip, method="GET"),
    "cgi-bin/get_api_domain_ip": Route(_openapi.handle_api_domain_ip, method="GET"),
    "cgi-bin/callback/check": Route(_openapi.handle_callback_check),
}

_TOKEN_ENDPOINTS = {"cgi-bin/token": "token", "cgi-bin/stable_token": "stable_token"}

_HTML_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>微信公众平台</title></head>'
    "<body><p>系统错误，请稍后再试。</p><p>System error, please try again later.</p></body></html>"
)


_SECRET_QUERY = re.compile(r"((?:^|&)(?:app)?secret=)[^&]*", re.IGNORECASE)
_SECRET_JSON = re.compile(r'("(?:app)?secret"\s*:\s*")[^"]*', re.IGNORECASE)


def _error(call: Call, errcode: int, errmsg: str, headers: list[tuple[str, str]]) -> Response:
    state = call.state
    rid = state.new_rid()
    response = json_response(
        {"errcode": errcode, "errmsg": f"{errmsg} rid: {rid}"}, errcode=errcode
    )
    response.headers.extend(headers)
    state.rids[rid] = RidRecord(
        rid=rid,
        appid=call.account.appid if call.account is not None else None,
        invoke_time=int(call.now),
        # The token stays in request_url (WeChat's own example shows it); secrets do not.
        request_url=_SECRET_QUERY.sub(r"\1***", call.request.raw_query),
        request_body=_SECRET_JSON.sub(r"\1***", call.request.body.decode("utf-8", "replace")),
        response_body=response.body.decode(),
        client_ip=call.request.client or "",
    )
    return response


def _dispatch(call: Call, route: Route) -> Response:
    try:
        if route.authenticated:
            account = _tokens.authenticate(call)
            if call.request.method != route.method:
                raise Reject(43002 if route.method == "POST" else 43001)
            if route.method == "POST":
                if not call.request.body.strip() and route.empty_body is not None:
                    raise Reject(route.empty_body)
                body = parse_json_object(call.request.body) if call.request.body.strip() else {}
                if body is None:
                    raise Reject(route.bad_json)
                call.body = body
            _tokens.consume_daily_quota(call, account)
        return route.handler(call)
    except Reject as reject:
        return _error(call, reject.errcode, reject.errmsg, reject.headers)


def _fault_response(call: Call, fault: Fault) -> Response | None:
    if fault.kind is FaultKind.ERRCODE:
        assert fault.errcode is not None
        errmsg = fault.errmsg if fault.errmsg is not None else catalogue_errmsg(fault.errcode)
        return _error(call, fault.errcode, errmsg, [])
    if fault.kind is FaultKind.HTTP_STATUS:
        return html_response(
            f"<html><head><title>{fault.status}</title></head>"
            f"<body><center><h1>{fault.status}</h1></center><hr><center>nginx</center></body>"
            "</html>",
            status=fault.status,
        )
    if fault.kind is FaultKind.HTML:
        return html_response(_HTML_PAGE)
    return None  # DROP


def _respond(call: Call, route: Route, fault: Fault | None) -> Response | None:
    """The answer to one request with its fault applied; ``None`` means: drop the connection."""
    if fault is not None and fault.kind in REPLACING_KINDS and not fault.processed:
        return _fault_response(call, fault)
    response = _dispatch(call, route)
    if fault is None:
        return response
    if fault.kind in REPLACING_KINDS:
        return _fault_response(call, fault)
    if fault.kind is FaultKind.TRUNCATED_IMAGE:
        response.body = response.body[: len(response.body) // 2]
    elif fault.kind is FaultKind.LYING_CONTENT_TYPE:
        if fault.errcode is not None:
            errmsg = fault.errmsg if fault.errmsg is not None else catalogue_errmsg(fault.errcode)
            response = _error(call, fault.errcode, errmsg, [])
        is_json = response.body.lstrip().startswith(b"{")
        response.set_content_type("image/jpeg" if is_json else "text/plain")
    return response


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _drop(scope: Scope, receive: Receive) -> None:
    abort: Callable[[], None] | None = scope.get("extensions", {}).get("wxqr.abort")
    if abort is None:
        # In-process (httpx.ASGITransport): the error httpx raises when a server hangs up.
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    abort()  # served by `served()` / `wxqr sandbox`: the socket is really closed
    with anyio.move_on_after(1.0):
        while (await receive())["type"] != "http.disconnect":
            pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def create_app(state: SandboxState) -> ASGIApp:
    """Build the ASGI application emulating WeChat over ``state``.

    Args:
        state: the :class:`SandboxState` the app reads and mutates.

    Returns:
        an ASGI 3 callable, for ``httpx.ASGITransport(app=...)`` or any ASGI server.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        from urllib.parse import parse_qsl

        raw_query = bytes(scope.get("query_string", b"")).decode("latin-1")
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(name, value)
        body = await _read_body(receive)
        request = Request(
            method=str(scope["method"]).upper(),
            path=str(scope["path"]),
            query=query,
            raw_query=raw_query,
            body=body,
            client=_client_ip(scope),
        )
        if request.path == _push.CONTROL_PATH:  # the test's "a user scans" button, not WeChat's API
            await _send(send, await _push.handle_scan_control(state, request))
            return
        endpoint = request.path.strip("/")
        with state.lock:
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                endpoint=endpoint,
                query=query,
                body=body,
                json=parse_json_object(body) if body else None,
                client=request.client,
                time=state.clock.now(),
            )
            state.requests.append(record)
            state.calls[endpoint] += 1
            if endpoint in _TOKEN_ENDPOINTS:
                state.token_fetches[_TOKEN_ENDPOINTS[endpoint]] += 1
            state.in_flight[endpoint] += 1
            state.max_in_flight[endpoint] = max(
                state.max_in_flight[endpoint], state.in_flight[endpoint]
            )
        try:
            route = ROUTES.get(endpoint)
            response: Response | None
            if route is None:
                response = Response(404, [("Content-Type", "text/plain")], b"404 Not Found")
            else:
                delay, fault = state.faults.draw(endpoint)
                if delay:
                    record.fault = FaultKind.LATENCY.value
                    await anyio.sleep(delay)
                if fault is not None:
                    record.fault = fault.kind.value
                with state.lock:
                    call = Call(state, request, endpoint, state.clock.now())
                    response = _respond(call, route, fault)
            if response is None:
                await _drop(scope, receive)
                return
            record.status, record.errcode = response.status, response.errcode
            await _send(send, response)
        finally:
            with state.lock:
                state.in_flight[endpoint] -= 1

    return app


async def _send(send: Send, response: Response) -> None:
    headers: list[Any] = [(n.lower().encode(), v.encode()) for n, v in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    start: Message = {"type": "http.response.start", "status": response.status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": response.body})
