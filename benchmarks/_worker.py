"""Work run in fresh subprocesses: token-economy workers and scaling probes.

``python -m benchmarks._worker tokens --mode wxqr-redis|wxqr-memory|wechatpy ...``
``python -m benchmarks._worker scale --n 10000 --kind wxqr|bare``
``python -m benchmarks._worker tls --kind wxqr|aiohttp|wechatpy --base https://... --n 2000``

Each prints one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import threading
import time
from typing import Any

from ._common import APPID, EXPIRE, SECRET


def _rss_kib() -> int:
    """Peak RSS so far (KiB, Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _current_rss_kib() -> int:
    """RSS right now (KiB): the baseline, below the import-time high-water mark."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _rss_kib()


def _wait_until(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(min(delay, 10.0))


async def _tokens_wxqr(args: argparse.Namespace) -> dict[str, Any]:
    import wxqr

    cache = None
    if args.mode == "wxqr-redis":
        from wxqr.caches import RedisTokenCache

        cache = RedisTokenCache.from_url(args.redis, prefix=args.prefix)
    async with wxqr.Client(
        args.appid,
        args.secret,
        api_base_url=args.base,
        mp_base_url=args.base,
        token_cache=cache,
        rate_limits={},
    ) as client:
        _wait_until(args.start_at)
        results = await asyncio.gather(
            *(
                client.qrcode.create_temporary(scene_id=i + 1, expire_seconds=EXPIRE)
                for i in range(args.calls)
            ),
            return_exceptions=True,
        )
        fetches = client._tokens.fetches
    errors = [r for r in results if isinstance(r, BaseException)]
    return {"fetches": fetches, "errors": len(errors), "first_error": repr(errors[:1])}


def _tokens_wechatpy(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    from ._servers import Server
    from .throughput import run_threads, wechatpy_call, wechatpy_client

    warnings.simplefilter("ignore")
    server = Server("?", args.base, args.appid, args.secret, lambda: 0, "")
    client = wechatpy_client(server, args.threads)
    call = wechatpy_call(client, "/cgi-bin/qrcode/create")
    _wait_until(args.start_at)
    run = run_threads(call, args.calls, args.threads)
    return {"fetches": None, "errors": run.errors, "first_error": ""}


async def _scale(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    import wxqr

    from ._common import mock_handler
    from ._servers import png_bytes

    base = "http://wechat.test"
    answer = mock_handler(png_bytes())

    async def handler(request: httpx.Request) -> httpx.Response:
        # 1 ms "on the wire", so that max_concurrency calls really are in flight at once.
        await asyncio.sleep(0.001)
        return answer(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = wxqr.Client(
        APPID,
        SECRET,
        api_base_url=base,
        mp_base_url=base,
        http_client=http,
        rate_limits={},
        max_concurrency=args.concurrency,
    )
    await client.access_token()
    # Warm every code path once so that lazily imported modules count in the baseline.
    await client.qrcode.create_temporary(scene_id=1, expire_seconds=EXPIRE)
    semaphore = asyncio.Semaphore(args.concurrency)

    async def bare(i: int) -> None:
        async with semaphore:
            await asyncio.sleep(0.001)

    before = _current_rss_kib()
    sampled = [before]
    stop = threading.Event()

    def sample() -> None:  # peak RSS during the gather, not the import-time high-water mark
        while not stop.wait(0.002):
            sampled.append(_current_rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    if args.kind == "wxqr":
        results = await asyncio.gather(
            *(
                client.qrcode.create_temporary(scene_id=i + 1, expire_seconds=EXPIRE)
                for i in range(args.n)
            )
        )
    else:
        results = await asyncio.gather(*(bare(i) for i in range(args.n)))
    wall = time.perf_counter() - started
    sampled.append(_current_rss_kib())
    stop.set()
    sampler.join()
    peak = max(sampled)
    assert len(results) == args.n
    in_flight = client._transport.max_in_flight
    await client.aclose()
    await http.aclose()
    return {
        "n": args.n,
        "wall": wall,
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "max_in_flight": in_flight,
    }


async def _tls_async(args: argparse.Namespace) -> Any:
    """wxqr default or raw aiohttp, ``n`` gathered create calls over HTTPS (run with
    ``SSL_CERT_FILE`` naming the benchmark's certificate: aiohttp reads it at import)."""
    from ._common import create_body, gather_bounded

    base, c = args.base, args.concurrency
    warmup = min(200, max(args.n // 10, 20))
    if args.kind == "wxqr":
        import wxqr

        async with wxqr.Client(
            APPID, SECRET, api_base_url=base, mp_base_url=base, rate_limits={}, max_concurrency=c
        ) as client:

            def call(i: int) -> Any:
                return client.qrcode.create_temporary(scene_id=i + 1, expire_seconds=EXPIRE)

            await gather_bounded(warmup, c, call)
            return await gather_bounded(args.n, c, call)
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:
        async with session.post(f"{base}/cgi-bin/stable_token", json={}) as response:
            token = json.loads(await response.read())["access_token"]
        url = f"{base}/cgi-bin/qrcode/create"

        async def raw(i: int) -> Any:
            params = {"access_token": token}
            async with session.post(url, params=params, json=create_body(i)) as response:
                response.raise_for_status()
                return json.loads(await response.read())

        await gather_bounded(warmup, c, raw)
        return await gather_bounded(args.n, c, raw)


def _tls(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "wechatpy":
        import warnings

        from ._servers import Server
        from .throughput import run_threads, wechatpy_call, wechatpy_client

        warnings.simplefilter("ignore")
        server = Server("?", args.base, APPID, SECRET, lambda: 0, "")
        client = wechatpy_client(server, args.concurrency)
        client._http.mount("https://", client._http.adapters["http://"])
        client.access_token  # noqa: B018 - one fetch before timing
        call = wechatpy_call(client, "/cgi-bin/qrcode/create")
        run_threads(call, min(200, max(args.n // 10, 20)), args.concurrency)
        run = run_threads(call, args.n, args.concurrency)
    else:
        run = asyncio.run(_tls_async(args))
    return {
        "n": run.n,
        "wall": run.wall,
        "cpu": run.cpu,
        "p50": run.pct(0.5),
        "p99": run.pct(0.99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._worker")
    sub = parser.add_subparsers(dest="what", required=True)
    tokens = sub.add_parser("tokens")
    tokens.add_argument("--mode", choices=("wxqr-redis", "wxqr-memory", "wechatpy"), required=True)
    tokens.add_argument("--base", required=True)
    tokens.add_argument("--appid", required=True)
    tokens.add_argument("--secret", required=True)
    tokens.add_argument("--redis", default="")
    tokens.add_argument("--prefix", default="wxqr-bench")
    tokens.add_argument("--calls", type=int, default=1000)
    tokens.add_argument("--threads", type=int, default=100)
    tokens.add_argument("--start-at", type=float, default=0.0)
    scale = sub.add_parser("scale")
    scale.add_argument("--n", type=int, required=True)
    scale.add_argument("--kind", choices=("wxqr", "bare"), default="wxqr")
    scale.add_argument("--concurrency", type=int, default=100)
    tls = sub.add_parser("tls")
    tls.add_argument("--kind", choices=("wxqr", "aiohttp", "wechatpy"), required=True)
    tls.add_argument("--base", required=True)
    tls.add_argument("--n", type=int, default=2000)
    tls.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args(argv)
    if args.what == "tokens":
        wechatpy = args.mode == "wechatpy"
        out = _tokens_wechatpy(args) if wechatpy else asyncio.run(_tokens_wxqr(args))
    elif args.what == "tls":
        out = _tls(args)
    else:
        out = asyncio.run(_scale(args))
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
