"""Section 1: loopback throughput and p50/p99 latency, wxqr against raw clients and wechatpy."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import httpx

import wxqr

from ._common import (
    CREATE,
    EXPIRE,
    UNLIMITED,
    Run,
    create_body,
    gather_bounded,
    ms,
    ratio,
    table,
    us,
)
from ._common import unlimited_body as _unlimited_body
from ._servers import Server, fetch_token

Call = Callable[[int], Awaitable[object]]


@attrs.define
class Row:
    endpoint: str
    client: str
    run: Run


def _limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


def _wxqr_client(server: Server, http_client: httpx.AsyncClient | None, c: int) -> wxqr.Client:
    return wxqr.Client(
        server.appid,
        server.secret,
        api_base_url=server.base_url,
        mp_base_url=server.base_url,
        http_client=http_client,
        max_concurrency=c,
        rate_limits={},  # 5,000/min on getwxacodeunlimit would otherwise be all we measure
    )


def _wxqr_call(client: wxqr.Client, path: str) -> Call:
    if path == CREATE[1]:
        return lambda i: client.qrcode.create_temporary(scene_id=i + 1, expire_seconds=EXPIRE)
    return lambda i: client.wxacode.get_unlimited(scene=f"id={i}")


def _body(path: str) -> Callable[[int], dict[str, Any]]:
    return create_body if path == CREATE[1] else _unlimited_body


async def _measure(call: Call, n: int, c: int, warmup: int, bounded: bool = True) -> Run:
    await gather_bounded(warmup, c, call)
    return await gather_bounded(n, c, call, bounded=bounded)


async def run_wxqr(server: Server, path: str, n: int, c: int, warmup: int, plain: bool) -> Run:
    http = httpx.AsyncClient(limits=_limits(c), timeout=10.0) if plain else None
    try:
        async with _wxqr_client(server, http, c) as client:
            return await _measure(_wxqr_call(client, path), n, c, warmup)
    finally:
        if http is not None:
            await http.aclose()


async def run_wxqr_bare(server: Server, path: str, n: int, c: int, warmup: int) -> Run:
    """wxqr default, plain ``gather`` without a semaphore of the caller's: wall time only."""
    async with _wxqr_client(server, None, c) as client:
        return await _measure(_wxqr_call(client, path), n, c, warmup, bounded=False)


async def run_raw_httpx(
    server: Server, path: str, n: int, c: int, warmup: int, aiohttp_transport: bool = False
) -> Run:
    """Plain httpx calls; with ``aiohttp_transport`` over an httpx transport that sends through
    aiohttp (``_httpx_aiohttp.py``: wxqr 0.1's default wire, kept here for comparison)."""
    token = fetch_token(server)
    url = server.base_url + path
    body = _body(path)
    image = path == UNLIMITED[1]
    if aiohttp_transport:
        from ._httpx_aiohttp import AiohttpTransport

        client = httpx.AsyncClient(transport=AiohttpTransport(limits=_limits(c)), timeout=10.0)
    else:
        client = httpx.AsyncClient(limits=_limits(c), timeout=10.0)
    async with client:

        async def call(i: int) -> object:
            response = await client.post(url, params={"access_token": token}, json=body(i))
            response.raise_for_status()
            return response.content if image else json.loads(response.content)

        return await _measure(call, n, c, warmup)


async def run_raw_aiohttp(server: Server, path: str, n: int, c: int, warmup: int) -> Run:
    import aiohttp

    token = fetch_token(server)
    url = server.base_url + path
    body = _body(path)
    image = path == UNLIMITED[1]
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(i: int) -> object:
            async with session.post(url, params={"access_token": token}, json=body(i)) as resp:
                resp.raise_for_status()
                content = await resp.read()
            return content if image else json.loads(content)

        return await _measure(call, n, c, warmup)


def wechatpy_client(server: Server, pool: int) -> Any:
    """A wechatpy 1.8.18 ``WeChatClient`` whose every URL points at ``server``.

    ``_request`` joins ``API_BASE_URL`` (the client's, or the API class's own for ``wxa``) and
    the endpoint; ``fetch_access_token`` hard-codes api.weixin.qq.com, hence the subclass.
    requests' pool is widened to ``pool`` connections to match the thread count (its default of
    10 would discard connections and reconnect).
    """
    import requests.adapters
    from wechatpy import WeChatClient

    class BenchWeChatClient(WeChatClient):  # type: ignore[misc]
        def fetch_access_token(self) -> Any:
            return self._fetch_access_token(
                url=f"{server.base_url}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                },
            )

    client = BenchWeChatClient(server.appid, server.secret, timeout=10)
    client.API_BASE_URL = f"{server.base_url}/cgi-bin/"
    client.qrcode.API_BASE_URL = f"{server.base_url}/cgi-bin/"
    client.wxa.API_BASE_URL = f"{server.base_url}/"
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool)
    client._http.mount("http://", adapter)
    return client


def wechatpy_call(client: Any, path: str) -> Callable[[int], object]:
    if path == CREATE[1]:
        return lambda i: client.qrcode.create(create_body(i))
    return lambda i: client.wxa.get_wxa_code_unlimited(f"id={i}")


def run_threads(call: Callable[[int], object], n: int, threads: int) -> Run:
    """``n`` calls through ``ThreadPoolExecutor(threads)``, each timed in its thread."""
    latencies: list[float] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - started)

    with ThreadPoolExecutor(threads) as pool:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in pool.map(one, range(n)):
            pass
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return Run(n=n, wall=wall, latencies=latencies, cpu=cpu)


def run_wechatpy(server: Server, path: str, n: int, c: int, warmup: int) -> Run:
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = wechatpy_client(server, c)
        client.access_token  # noqa: B018 - one fetch before timing
        call = wechatpy_call(client, path)
        run_threads(call, warmup, c)
        run = run_threads(call, n, c)
        client._http.close()
        return run


def wechatpy_available() -> bool:
    try:
        import wechatpy  # noqa: F401
    except ImportError:
        return False
    return True


def section(server: Server, n: int, c: int, warmup: int, with_wechatpy: bool) -> str:
    """Run every client on both endpoints; return the markdown."""
    rows: list[Row] = []
    ratios: list[list[str]] = []
    transport = _default_transport_name()
    for endpoint, path in (CREATE, UNLIMITED):
        runs: dict[str, Run] = {}
        runs["wxqr"] = asyncio.run(run_wxqr(server, path, n, c, warmup, plain=False))
        runs["wxqr-bare"] = asyncio.run(run_wxqr_bare(server, path, n, c, warmup))
        runs["raw-aiohttp"] = asyncio.run(run_raw_aiohttp(server, path, n, c, warmup))
        runs["raw-httpx-aiohttp"] = asyncio.run(
            run_raw_httpx(server, path, n, c, warmup, aiohttp_transport=True)
        )
        runs["wxqr-httpx"] = asyncio.run(run_wxqr(server, path, n, c, warmup, plain=True))
        runs["raw-httpx"] = asyncio.run(run_raw_httpx(server, path, n, c, warmup))
        if with_wechatpy:
            runs["wechatpy"] = run_wechatpy(server, path, n, c, warmup)
        labels = {
            "wxqr": f"wxqr default ({transport} wire)",
            "wxqr-bare": "wxqr default, bare gather (no caller semaphore)",
            "raw-aiohttp": "raw aiohttp ClientSession",
            "raw-httpx-aiohttp": "raw httpx over an aiohttp transport (wxqr 0.1's wire)",
            "wxqr-httpx": "wxqr on plain httpx.AsyncClient",
            "raw-httpx": "raw httpx.AsyncClient",
            "wechatpy": f"wechatpy 1.8.18, ThreadPoolExecutor({c})",
        }
        for key, run in runs.items():
            rows.append(Row(endpoint, labels[key], run))
        w = runs["wxqr"]
        wp = runs.get("wechatpy")
        ratios.append(
            [
                endpoint,
                ratio(w.rate, wp.rate) if wp else "skipped",
                ratio(w.rate, runs["wxqr-httpx"].rate),
                ratio(w.rate, runs["raw-aiohttp"].rate),
                ratio(w.cpu_per_call, runs["raw-aiohttp"].cpu_per_call),
                ratio(w.wall, runs["raw-aiohttp"].wall),
                ratio(w.wall, runs["raw-httpx-aiohttp"].wall),
                ratio(runs["wxqr-httpx"].wall, runs["raw-httpx"].wall),
            ]
        )
    base = rows[0].run.rate
    body = table(
        ["endpoint", "client", "req/s", "CPU µs/call", "p50 ms", "p99 ms", "throughput vs wxqr"],
        [
            [
                r.endpoint,
                r.client,
                f"{r.run.rate:,.0f}",
                us(r.run.cpu_per_call),
                ms(r.run.pct(0.50)),
                ms(r.run.pct(0.99)),
                ratio(r.run.rate, base if r.endpoint == CREATE[0] else _first(rows, r).run.rate),
            ]
            for r in rows
        ],
    )
    summary = table(
        [
            "endpoint",
            "wxqr / wechatpy (req/s)",
            "wxqr / wxqr-on-plain-httpx (req/s)",
            "wxqr / raw aiohttp (req/s)",
            "wxqr / raw aiohttp (CPU per call)",
            "wxqr wall / raw aiohttp wall",
            "wxqr wall / raw httpx-over-aiohttp wall",
            "wxqr-on-httpx wall / raw httpx wall",
        ],
        ratios,
    )
    return body + "\n\n" + summary


def _first(rows: list[Row], row: Row) -> Row:
    return next(r for r in rows if r.endpoint == row.endpoint)


def _default_transport_name() -> str:
    from wxqr._wire import wire_name

    async def probe() -> str:
        async with wxqr.Client("wx0", "s") as client:
            return wire_name(client._get_wire())

    return asyncio.run(probe())
