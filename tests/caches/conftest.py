"""A real ``redis-server`` for the Redis cache and rate limiter tests.

The binary is started on a free loopback port with persistence off, in a temporary directory.
Tests are skipped (with the reason) only when ``redis-server`` is not installed; CI installs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redisserver import RedisServer, free_port


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, flushed before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's client is asyncio-only


@pytest.fixture
async def client(redis_url: str):
    """A redis-py asyncio client of the shared (flushed) server, closed after the test."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def private_redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop (an outage) and restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def repo_root() -> Path:
    """The directory holding the ``wxqr`` package, for scripts run in child processes."""
    import wxqr.caches

    return Path(wxqr.caches.__file__).resolve().parents[2]


# --- a loopback WeChat stand-in for the cluster tests -------------------------------------------

STANDIN_APPID = "wx5ca1ab1e0c1u5ter"
STANDIN_SECRET = "SECRET-0123456789abcdef0123456789abcdef"
# A complete 1x1 PNG (the decoder checks the magic and the IEND trailer).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


class WeChatStandIn:
    """A minimal, fast WeChat on uvicorn: token endpoints and ``getwxacodeunlimit``.

    For timing measurements (the rate-limit test), where the full sandbox is too slow per call.
    Arrival times (``time.monotonic()`` of this process) are recorded per path. Token fetches
    take ``token_delay`` seconds; ``stable_token`` answers the current token while valid; the
    classic ``token`` issues a new one per fetch and at once invalidates the previous one.
    """

    def __init__(self, token_delay: float = 0.2) -> None:
        self.token_delay = token_delay
        self.appid = STANDIN_APPID
        self.secret = STANDIN_SECRET
        self.fetches: dict[str, int] = {"token": 0, "stable_token": 0}
        self.arrivals: dict[str, list[float]] = {}
        self.valid_token: str | None = None
        self.served_tokens: set[str] = set()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        arrival = time.monotonic()
        path = scope["path"]
        self.arrivals.setdefault(path, []).append(arrival)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = dict(
            pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair
        )
        if path in ("/cgi-bin/token", "/cgi-bin/stable_token"):
            kind = path.rsplit("/", 1)[1]
            self.fetches[kind] += 1
            params = query if kind == "token" else json.loads(body)
            if params.get("appid") != STANDIN_APPID or params.get("secret") != STANDIN_SECRET:
                return await _json(send, {"errcode": 40125, "errmsg": "invalid appsecret"})
            await asyncio.sleep(self.token_delay)
            if kind == "token" or self.valid_token is None:
                self.valid_token = f"TOKEN-{sum(self.fetches.values())}-{os.urandom(16).hex()}"
            return await _json(send, {"access_token": self.valid_token, "expires_in": 7200})
        if path == "/wxa/getwxacodeunlimit":
            token = query.get("access_token")
            if token is None or token != self.valid_token:
                return await _json(send, {"errcode": 40001, "errmsg": "invalid credential"})
            self.served_tokens.add(token)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"image/png")],
                }
            )
            return await send({"type": "http.response.body", "body": PNG})
        if path == "/warmup":  # slow enough that concurrent warm-up calls open connections
            await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _json(send, data: dict) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


@pytest.fixture
def wechat() -> Iterator[WeChatStandIn]:
    """A :class:`WeChatStandIn` served by uvicorn on a free loopback port (in a thread)."""
    uvicorn = pytest.importorskip("uvicorn")
    standin = WeChatStandIn()
    server = uvicorn.Server(
        uvicorn.Config(
            standin, host="127.0.0.1", port=standin.port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the WeChat stand-in did not start")
        time.sleep(0.01)
    yield standin
    server.should_exit = True
    thread.join(10)
