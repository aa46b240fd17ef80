"""Section 2: per-call CPU of wxqr over the raw httpx client it wraps, on ``httpx.MockTransport``.

Both sides send through the same ``httpx.AsyncClient`` type and the same handler, one call at a
time, so the difference is wxqr's own work: validation, token lookup, semaphore, URL and query
building, decoding, and structuring the result.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import httpx

import wxqr

from ._common import (
    APPID,
    CREATE,
    EXPIRE,
    SECRET,
    TOKEN,
    UNLIMITED,
    create_body,
    mock_handler,
    ratio,
    table,
    unlimited_body,
)
from ._servers import png_bytes

BASE = "http://wechat.test"
PARAMS = {"access_token": TOKEN}


def _mock_client(png: bytes) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(mock_handler(png)))


async def _cpu(n: int, call: Callable[[int], Awaitable[object]]) -> float:
    """CPU seconds per call for ``n`` sequential calls."""
    started = time.process_time()
    for i in range(n):
        await call(i)
    return (time.process_time() - started) / n


async def measure(n: int, rounds: int = 3) -> dict[str, tuple[float, float]]:
    """endpoint label -> (wxqr CPU per call, raw CPU per call), best of ``rounds``."""
    png = png_bytes()
    results: dict[str, tuple[float, float]] = {}
    async with _mock_client(png) as http_w, _mock_client(png) as http_r:
        client = wxqr.Client(
            APPID, SECRET, api_base_url=BASE, mp_base_url=BASE, http_client=http_w, rate_limits={}
        )
        async with client:
            await client.access_token()
            for label, path in (CREATE, UNLIMITED):
                url = BASE + path
                if path == CREATE[1]:

                    async def w_call(i: int) -> object:
                        return await client.qrcode.create_temporary(
                            scene_id=i + 1, expire_seconds=EXPIRE
                        )

                    async def r_call(i: int, url: str = url) -> object:
                        response = await http_r.post(url, params=PARAMS, json=create_body(i))
                        response.raise_for_status()
                        return json.loads(response.content)

                else:

                    async def w_call(i: int) -> object:
                        return await client.wxacode.get_unlimited(scene=f"id={i}")

                    async def r_call(i: int, url: str = url) -> object:
                        response = await http_r.post(url, params=PARAMS, json=unlimited_body(i))
                        response.raise_for_status()
                        return response.content

                await _cpu(min(n, 200), w_call)  # warm-up
                await _cpu(min(n, 200), r_call)
                best_w = best_r = float("inf")
                for _ in range(rounds):
                    best_w = min(best_w, await _cpu(n, w_call))
                    best_r = min(best_r, await _cpu(n, r_call))
                results[label] = (best_w, best_r)
    return results


def section(n: int) -> str:
    results = asyncio.run(measure(n))
    rows = [[label, ratio(w, r), f"{(w - r) / r:+.0%}"] for label, (w, r) in results.items()]
    return table(
        [
            "endpoint (sequential, MockTransport)",
            "CPU per call: wxqr / raw httpx post + decode",
            "wxqr's share added",
        ],
        rows,
    )
