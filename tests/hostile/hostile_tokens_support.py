"""A tiny WeChat of the hostile tests' own, on a real loopback socket, that counts what it sees.

It answers the token endpoints as told (a token, an errcode, after a delay) and a few APIs
(``qrcode/create``, optionally slow; the ``qrcodejump*`` family, recording each arrival time),
so the tests can assert figures counted at the server: token requests, requests per second.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wxqr.sandbox import served

APPID = "wx0h0s711e0000test"
SECRET = "SECRET-h0st1le-5ecret-0123456789abcdef"  # distinctive: the leak checks search for it

TICKET = {
    "ticket": "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJ",
    "expire_seconds": 60,
    "url": "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI",
}


class StandIn:
    """The ASGI app; its attributes script it and record what happened.

    Attributes:
        token_answer: ``None`` issues a token; else the JSON to answer (e.g. an errcode).
        token_delay: seconds each token answer takes.
        busy_first: how many token requests (the next ones) answer -1 "system busy".
        expires_in: ``expires_in`` of issued tokens.
        api_delay: seconds each ``qrcode/create`` answer takes.
        api_answer: ``None`` answers a ticket; else the JSON to answer.
        token_requests: token requests received.
        arrivals: path -> ``time.monotonic()`` of each request's arrival.
        issued: the tokens handed out.
    """

    def __init__(self) -> None:
        self.token_answer: dict[str, Any] | None = None
        self.token_delay = 0.0
        self.busy_first = 0
        self.expires_in = 7200
        self.api_delay = 0.0
        self.api_answer: dict[str, Any] | None = None
        self.token_requests = 0
        self.arrivals: dict[str, list[float]] = {}
        self.issued: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].lstrip("/")
        self.arrivals.setdefault(path, []).append(time.monotonic())
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        if path in ("cgi-bin/token", "cgi-bin/stable_token"):
            self.token_requests += 1
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            if self.busy_first > 0:
                self.busy_first -= 1
                return await _json(send, {"errcode": -1, "errmsg": "system error"})
            if self.token_answer is not None:
                return await _json(send, self.token_answer)
            token = f"TOKEN-{len(self.issued)}-{os.urandom(12).hex()}"
            self.issued.append(token)
            return await _json(send, {"access_token": token, "expires_in": self.expires_in})
        if path == "cgi-bin/qrcode/create":
            if self.api_delay:
                await asyncio.sleep(self.api_delay)
            return await _json(send, self.api_answer or TICKET)
        if path.startswith("cgi-bin/wxopen/qrcodejump"):
            return await _json(send, {"errcode": 0, "errmsg": "ok"})
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def max_in_window(self, path: str, window: float) -> int:
        """The most requests to ``path`` that arrived within any ``window`` seconds."""
        times = sorted(self.arrivals.get(path, []))
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best


async def _json(send: Any, data: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json; encoding=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


@contextmanager
def standin() -> Iterator[tuple[StandIn, str]]:
    """A :class:`StandIn` served by uvicorn on a free loopback port: ``(app, base_url)``."""
    app = StandIn()
    with served(app=app) as base_url:
        yield app, base_url


@contextmanager
def stalled(pid: int) -> Iterator[None]:
    """SIGSTOP a process (a Redis that stops answering, sockets still open); SIGCONT after."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
