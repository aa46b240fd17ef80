"""README's "Scan to log in" snippet runs as written: on the sandbox, a real Redis, FastAPI."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from redis.asyncio import Redis

from wxqr.login import RedisLoginStore
from wxqr.sandbox import SandboxState, sandbox_client, sandbox_http_client

pytest.importorskip("fastapi")
pytestmark = [pytest.mark.anyio, pytest.mark.redis]

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def snippet() -> str:
    section = README.split("## Scan to log in", 1)[1]
    return section.split("```python", 1)[1].split("```", 1)[0]


async def test_the_scan_to_log_in_snippet_runs(redis_server):
    state = SandboxState(seed=9)
    wechat_http = sandbox_http_client(state)
    wx = sandbox_client(state, http_client=wechat_http)
    redis = Redis.from_url(redis_server.url)
    namespace: dict[str, object] = {"wx": wx, "redis": redis, "PUSH_TOKEN": "readmeT0ken"}

    @asynccontextmanager
    async def lifespan(app):
        async with wx, namespace["receiver"]:
            yield

    namespace["lifespan"] = lifespan
    exec(snippet(), namespace)
    app = namespace["app"]
    assert isinstance(namespace["login"].store, RedisLoginStore)
    state.configure_push("http://app/wechat", token="readmeT0ken", app=app)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as browser:
                started = await browser.post("/login")
                assert started.json()["image"].startswith("http://sandbox/cgi-bin/showqrcode")
                assert "httponly" in started.headers["set-cookie"].lower()
                (ticket,) = state.tickets
                answers = []

                async def long_poll() -> None:
                    answers.append((await browser.post("/login/wait")).json())

                with anyio.fail_after(15):  # the poll's own timeout is 20 s
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(long_poll)
                        await anyio.sleep(0.3)
                        push = await state.scan(ticket, openid="oREADME")
                assert "You are logging in to example.com" in push.deliveries[0].body.decode()
                assert answers == [{"status": "ok", "openid": "oREADME"}]
                assert (await browser.post("/login/wait")).json() == {"status": "expired"}
    finally:
        await redis.aclose()
        await wechat_http.aclose()
