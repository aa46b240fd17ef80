"""Thin framework adapters: translate a request into ``Receiver.handle`` and the answer back.

Both read at most ``max_body + 1`` bytes, so an oversized body is refused (413) without being
buffered. Neither knows anything of the protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from aiohttp import web

    from ._receiver import Receiver

    AiohttpRequest = web.Request
    AiohttpResponse = web.Response
else:  # aiohttp is optional: these names only annotate
    AiohttpRequest = AiohttpResponse = Any

__all__ = ["ASGIApp", "aiohttp_handler", "asgi_app"]

ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def query_mapping(pairs: Any) -> dict[str, str]:
    """The first value of each query parameter."""
    query: dict[str, str] = {}
    for name, value in pairs:
        query.setdefault(str(name), str(value))
    return query


async def _lifespan(receiver: Receiver, receive: ASGIReceive, send: ASGISend) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                if receiver._group is None:  # not already opened by the application
                    await receiver.__aenter__()
                    receiver._lifespan_opened = True
            except Exception as exc:  # pragma: no cover - opening a task group does not fail
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if receiver._lifespan_opened:
                receiver._lifespan_opened = False
                await receiver.__aexit__(None, None, None)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def asgi_app(
    receiver: Receiver, scope: ASGIScope, receive: ASGIReceive, send: ASGISend
) -> None:
    """Serve one ASGI connection with ``receiver`` (see :attr:`Receiver.asgi_app`)."""
    if scope["type"] == "lifespan":
        await _lifespan(receiver, receive, send)
        return
    if scope["type"] != "http":
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1003})
        return
    cap = receiver.max_body + 1
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = bytes(message.get("body", b""))
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)[:cap]
    raw_query = bytes(scope.get("query_string", b"")).decode("latin-1")
    query = query_mapping(parse_qsl(raw_query, keep_blank_values=True))
    answer = await receiver.handle(str(scope["method"]), query, body)
    headers = [
        (b"content-type", answer.content_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode()),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


class ASGIApp:
    """``receiver.asgi_app``: an ASGI 3 callable object (not a bound method, so that Starlette's
    ``Route`` and uvicorn's interface detection both take it for what it is)."""

    __slots__ = ("receiver",)

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        await asgi_app(self.receiver, scope, receive, send)

    def __repr__(self) -> str:
        return f"<asgi_app of {self.receiver!r}>"


async def aiohttp_handler(receiver: Receiver, request: AiohttpRequest) -> AiohttpResponse:
    """Serve one aiohttp request with ``receiver`` (see :meth:`Receiver.aiohttp_handler`)."""
    from aiohttp import web

    cap = receiver.max_body + 1
    declared = request.content_length
    body = b""
    if declared is not None and declared >= cap:
        body = b"\0" * cap  # refused as too large without reading it
    else:
        while len(body) < cap:
            chunk = await request.content.read(cap - len(body))
            if not chunk:
                break
            body += chunk
    answer = await receiver.handle(request.method, query_mapping(request.query.items()), body)
    return web.Response(
        status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type}
    )
