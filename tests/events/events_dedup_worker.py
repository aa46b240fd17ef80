"""One worker process of the RedisDedup test (run by test_events_redis_dedup.py, not collected).

Usage: ``python events_dedup_worker.py REDIS_URL NAME``. Builds a Receiver on a RedisDedup,
prints ``ready``, waits for a line on stdin (so both workers start together), then handles the
same push three times at once (WeChat's three deliveries, as if load-balanced over processes)
plus one push of its own, and prints one JSON line: the statuses it answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from events_helpers import TOKEN, event_xml, signed_query
from redis.asyncio import Redis

from wxqr import events


async def main(url: str, name: str) -> dict:
    redis = Redis.from_url(url)
    receiver = events.Receiver(TOKEN, dedup=events.RedisDedup(redis))

    @receiver.on_scan
    async def scanned(scan: events.QrScan) -> None:
        await redis.rpush("test:ran", f"{scan.scene}:{os.getpid()}")
        await asyncio.sleep(0.2)

    shared = event_xml("SCAN", "shared", "T").encode()
    own = event_xml("SCAN", f"own-{name}", "T").encode()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    async with receiver:
        answers = await asyncio.gather(
            *(receiver.handle("POST", signed_query(nonce=f"{name}{i}"), shared) for i in range(3)),
            receiver.handle("POST", signed_query(nonce=f"{name}-own"), own),
        )
    await redis.aclose()
    return {"statuses": [a.status for a in answers]}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))), flush=True)
