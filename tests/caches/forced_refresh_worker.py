"""One worker process of ``test_forced_refresh_redis.py`` (not collected).

Usage: ``python forced_refresh_worker.py '<json config>'`` with ``api``, ``redis``, ``appid``,
``secret``. It builds a ``wxqr.Client`` on a ``RedisTokenCache``, prints ``ready``, then for each
line ``call`` on stdin makes one API call (``openapi.get_quota``) and prints one JSON line:
``{"ok": bool, "error": "<type>: <message>" | null, "forced": <forced_refreshes()>}``.
``quit`` ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys

import wxqr
from wxqr.caches.redis import RedisTokenCache


async def main(config: dict) -> None:
    cache = RedisTokenCache.from_url(config["redis"])
    async with wxqr.Client(
        config["appid"],
        config["secret"],
        token_cache=cache,
        api_base_url=config["api"],
        retry_backoff=0,
    ) as wx:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while (command := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) != "quit":
            result: dict = {"ok": True, "error": None}
            if command == "call":
                try:
                    await wx.openapi.get_quota("/cgi-bin/qrcode/create")
                except wxqr.WxqrError as exc:
                    result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            result["forced"] = await wx.forced_refreshes()
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
