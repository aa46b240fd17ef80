"""Shared pieces: request bodies, canned answers, the MockTransport handler, table rendering."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import httpx

APPID = "wxbench0000000001"
SECRET = "bench-secret"
TOKEN = "BENCH_TOKEN_0123456789abcdef"
EXPIRE = 604800

TOKEN_BODY = json.dumps({"access_token": TOKEN, "expires_in": 7200}).encode()
TICKET_BODY = json.dumps(
    {
        "ticket": "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3Zh",
        "expire_seconds": EXPIRE,
        "url": "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI",
    }
).encode()

#: The two endpoints measured: (label, path).
CREATE = ("qrcode.create_temporary", "/cgi-bin/qrcode/create")
UNLIMITED = ("wxacode.get_unlimited", "/wxa/getwxacodeunlimit")


def create_body(i: int) -> dict[str, Any]:
    """The body wxqr's ``create_temporary(scene_id=i + 1, expire_seconds=EXPIRE)`` sends."""
    return {
        "expire_seconds": EXPIRE,
        "action_name": "QR_SCENE",
        "action_info": {"scene": {"scene_id": i + 1}},
    }


def unlimited_body(i: int) -> dict[str, Any]:
    """The body wxqr's ``get_unlimited(scene=f"id={i}")`` sends (defaults spelled out)."""
    return {
        "scene": f"id={i}",
        "check_path": True,
        "env_version": "release",
        "width": 430,
        "auto_color": False,
        "is_hyaline": False,
    }


def mock_handler(png: bytes, counter: list[int] | None = None) -> Callable[..., httpx.Response]:
    """One handler for wxqr and the raw baseline: canned token, ticket and (PNG) image answers."""
    json_headers = {"content-type": "application/json"}
    image_headers = {"content-type": "image/jpeg"}  # WeChat's label for PNG bytes

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/cgi-bin/qrcode/create":
            return httpx.Response(200, content=TICKET_BODY, headers=json_headers)
        if path == "/wxa/getwxacodeunlimit":
            return httpx.Response(200, content=png, headers=image_headers)
        if path in ("/cgi-bin/stable_token", "/cgi-bin/token"):
            if counter is not None:
                counter[0] += 1
            return httpx.Response(200, content=TOKEN_BODY, headers=json_headers)
        return httpx.Response(404)

    return handler


@attrs.define
class Run:
    """N calls: wall time and (optionally) per-call latencies in seconds."""

    n: int
    wall: float
    latencies: list[float] = attrs.field(factory=list)
    errors: int = 0
    #: CPU seconds this process spent (``time.process_time``): steadier than wall on a
    #: shared machine.
    cpu: float = float("nan")

    @property
    def cpu_per_call(self) -> float:
        return self.cpu / self.n

    @property
    def rate(self) -> float:
        return self.n / self.wall

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def gather_bounded(
    n: int, concurrency: int, call: Callable[[int], Awaitable[object]], *, bounded: bool = True
) -> Run:
    """``asyncio.gather`` of ``n`` calls; with ``bounded`` each runs under a semaphore of
    ``concurrency`` and its latency is timed inside it (so queueing is not counted)."""
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    clock = time.perf_counter

    async def one(i: int) -> None:
        async with semaphore:
            started = clock()
            await call(i)
            latencies.append(clock() - started)

    started, cpu = clock(), time.process_time()
    if bounded:
        await asyncio.gather(*(one(i) for i in range(n)))
    else:
        await asyncio.gather(*(call(i) for i in range(n)))
    return Run(n=n, wall=clock() - started, latencies=latencies, cpu=time.process_time() - cpu)


def ratio(a: float, b: float) -> str:
    if b == 0 or a != a or b != b:
        return "n/a"
    return f"{a / b:.2f}×"


def us(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1e6:.0f}"


def ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
