"""The thin adapters: ASGI (mounted, and top-level under uvicorn with its lifespan) and aiohttp."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest
from events_helpers import GET_VECTOR, TOKEN, event_xml, signed_query

from wxqr import events

pytestmark = pytest.mark.anyio


def receiver_with(seen: list, *, delay: float = 0.0, **options) -> events.Receiver:
    receiver = events.Receiver(TOKEN, **options)

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> str:
        await anyio.sleep(delay)
        seen.append(scan)
        return "thanks"

    return receiver


async def test_asgi_app_mounted_in_starlette():
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    seen: list = []
    receiver = receiver_with(seen, max_skew=None)
    app = Starlette(
        routes=[
            Route("/wechat", receiver.asgi_app, methods=["GET", "POST"]),
            Mount("/mounted", receiver.asgi_app),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        for path in ("/wechat", "/mounted/"):
            answer = await http.get(path, params=GET_VECTOR)
            assert (answer.status_code, answer.text) == (200, GET_VECTOR["echostr"])
        answer = await http.post("/wechat", params=signed_query(), content=event_xml())
        assert answer.status_code == 200
        assert "<Content><![CDATA[thanks]]></Content>" in answer.text
        assert answer.headers["content-type"].startswith("application/xml")

        sent = 0

        async def endless():  # a streamed body far over max_body: refused without reading it all
            nonlocal sent
            for _ in range(10_000):
                sent += 1
                yield b"<" * 65536

        answer = await http.post("/wechat", params=signed_query(), content=endless())
        assert (answer.status_code, answer.text) == (413, "payload too large")
        assert sent < 100  # ~2 chunks were read, not 640 MiB
        answer = await http.get("/wechat", params={**GET_VECTOR, "signature": "0" * 40})
        assert (answer.status_code, answer.text) == (403, "forbidden")
    assert len(seen) == 1


def test_asgi_app_top_level_under_uvicorn_runs_the_lifespan():
    from wxqr.sandbox import served

    seen: list = []
    receiver = receiver_with(seen, delay=2.0, reply_deadline=0.2)
    with served(app=receiver.asgi_app) as url, httpx.Client(base_url=url, timeout=10) as http:
        started = time.monotonic()
        answer = http.post("/", params=signed_query(), content=event_xml())
        elapsed = time.monotonic() - started
        assert (answer.status_code, answer.text) == (200, "success")
        assert elapsed < 1.8  # answered at the deadline: the lifespan opened the task group
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(seen) == 1  # the handler finished in the background


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiohttp_handler_on_a_real_socket():
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen: list = []
    receiver = receiver_with(seen, delay=2.0, reply_deadline=0.2, max_body=1024)

    async def open_receiver(app):
        async with receiver:
            yield

    app = web.Application()
    app.cleanup_ctx.append(open_receiver)
    app.router.add_route("*", "/wechat", receiver.aiohttp_handler)
    async with (
        TestServer(app) as server,
        httpx.AsyncClient(base_url=str(server.make_url(""))) as http,
    ):
        answer = await http.get("/wechat", params={**signed_query(), "echostr": "abc"})
        assert (answer.status_code, answer.text) == (200, "abc")
        started = time.monotonic()
        answer = await http.post("/wechat", params=signed_query(), content=event_xml())
        assert (answer.status_code, answer.text) == (200, "success")
        assert time.monotonic() - started < 1.8
        answer = await http.post("/wechat", params=signed_query(), content=b"x" * 5000)
        assert answer.status_code == 413

        async def chunked():  # no Content-Length: the cap applies while reading
            for _ in range(100):
                yield b"<" * 1000

        answer = await http.post("/wechat", params=signed_query(), content=chunked())
        assert answer.status_code == 413
        answer = await http.put("/wechat", params=signed_query())
        assert answer.status_code == 405
        with anyio.fail_after(10):
            while not seen:
                await anyio.sleep(0.02)
    assert len(seen) == 1
