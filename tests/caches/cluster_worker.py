"""One worker process of the cluster tests (run by ``test_redis_cluster.py``, not collected).

Usage: ``python cluster_worker.py '<json config>'``. The worker builds its ``wxqr.Client``,
prints ``ready``, waits for a line on stdin (so that every worker starts at the same moment),
runs its calls concurrently, and prints one JSON line with what it saw.

Config keys: ``api`` (stand-in URL), ``redis`` (URL), ``appid``, ``secret``, ``cache``
(``"redis"`` or ``"memory"``), ``stable`` (bool), ``job`` (``"tokens"`` or ``"rate"``),
``calls`` (int), ``limit`` ([calls, period], for ``"rate"``).
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
from redis.asyncio import Redis

import wxqr
from wxqr._ratelimit import RateLimit
from wxqr.caches import MemoryTokenCache
from wxqr.caches.redis import RedisRateLimiter, RedisTokenCache


async def main(config: dict) -> dict:
    cache = (
        RedisTokenCache.from_url(config["redis"])
        if config["cache"] == "redis"
        else MemoryTokenCache()
    )
    limiter_client = Redis.from_url(config["redis"])
    options: dict = {}
    if config["job"] == "rate":
        options["rate_limits"] = {"getwxacodeunlimit": RateLimit(*config["limit"])}
        options["rate_limiter"] = RedisRateLimiter(limiter_client)
    # Caller-owned, so it can be warmed up: connection setup must not delay the measured calls.
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
    )
    async with (
        http,
        wxqr.Client(
            config["appid"],
            config["secret"],
            token_cache=cache,
            stable_token=config["stable"],
            api_base_url=config["api"],
            http_client=http,
            max_retries=0,
            **options,
        ) as client,
    ):
        if config["job"] == "rate":
            # Warm up: the race below is for the rate budget only, not for the token or for
            # opening connections (which would delay some admitted calls by ~0.2 s).
            await client.access_token()
            await asyncio.gather(*(http.get(f"{config['api']}/warmup") for _ in range(50)))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def one(i: int) -> str:
            if config["job"] == "tokens" and i % 2:
                return await client.access_token()
            png = await client.wxacode.get_unlimited(scene=f"n={i}", check_path=False)
            assert png.startswith(b"\x89PNG")
            return "png"

        results = await asyncio.gather(*(one(i) for i in range(config["calls"])))
        tokens = sorted({r for r in results if r != "png"})
    await limiter_client.aclose()
    return {"tokens": tokens, "pngs": results.count("png")}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))), flush=True)
