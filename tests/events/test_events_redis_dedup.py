"""RedisDedup against a real redis-server: SET NX EX, TTL, namespacing, time bounds, and two OS
processes sharing one dedup store. asyncio only (redis-py's asyncio client)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from events_helpers import TOKEN, event_xml, signed_query

from wxqr import ValidationError, events

pytestmark = [pytest.mark.anyio, pytest.mark.redis]
redis_asyncio = pytest.importorskip("redis.asyncio")
HERE = Path(__file__).resolve().parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def redis(redis_server):
    client = redis_asyncio.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


async def test_claim_is_set_nx_ex_with_a_namespaced_key(redis):
    dedup = events.RedisDedup(redis)
    assert await dedup.claim("gh_a:abc") is True
    assert await dedup.claim("gh_a:abc") is False
    assert await dedup.claim("gh_a:other") is True
    keys = sorted(k.decode() for k in await redis.keys("*"))
    assert keys == ["wxqr:events:dedup:gh_a:abc", "wxqr:events:dedup:gh_a:other"]
    assert 59_000 < await redis.pttl("wxqr:events:dedup:gh_a:abc") <= 60_000
    await dedup.release("gh_a:abc")
    assert await dedup.claim("gh_a:abc") is True


async def test_receiver_keys_hold_no_secret_and_a_failure_releases(redis):
    attempts = []

    async def flaky(scan):
        attempts.append(scan.scene)
        if len(attempts) == 1:
            raise RuntimeError("boom")

    receiver = events.Receiver(TOKEN, dedup=events.RedisDedup(redis, ttl=120))
    receiver.on_scan(flaky)
    body = event_xml("SCAN", "scene-7", "TICKET-7").encode()
    statuses = [(await receiver.handle("POST", signed_query(nonce=n), body)).status for n in "abc"]
    assert statuses == [500, 200, 200]
    assert attempts == ["scene-7", "scene-7"]
    (key,) = [k.decode() for k in await redis.keys("*")]
    for secret_or_data in (TOKEN, "scene-7", "TICKET-7", "o9AgO5Kd5ggOC"):
        assert secret_or_data not in key
    assert await redis.ttl(key) > 60


async def test_an_unresponsive_redis_is_time_bounded_and_the_scan_still_handled(caplog):
    # A socket that accepts connections and never answers: every call must give up in time.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        client = redis_asyncio.Redis(host="127.0.0.1", port=port)
        dedup = events.RedisDedup(client, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(events.DedupError):
            await dedup.claim("k")
        assert time.monotonic() - started < 2.0

        seen = []
        receiver = events.Receiver(TOKEN, dedup=dedup)

        @receiver.on_scan
        async def scanned(scan):
            seen.append(scan)

        answer = await receiver.handle("POST", signed_query(), event_xml().encode())
        assert answer.status == 200
        assert len(seen) == 1  # fail open: a lost dedup is better than a lost scan
        assert "dedup store failed" in caplog.text
        await client.aclose(close_connection_pool=True)


def test_arguments_are_validated():
    with pytest.raises(ValidationError) as caught:
        events.RedisDedup(object(), ttl=10)  # WxJava's 10 s: shorter than WeChat's resends
    assert caught.value.argument == "ttl"
    with pytest.raises(ValidationError):
        events.RedisDedup(object(), timeout=0)
    with pytest.raises(ValidationError):
        events.MemoryDedup(ttl=30)
    with pytest.raises(ValidationError):
        events.MemoryDedup(max_size=0)


async def test_memory_dedup_is_bounded():
    dedup = events.MemoryDedup(max_size=3)
    for key in "abcde":
        assert await dedup.claim(key)
    assert len(dedup) == 3
    assert not await dedup.claim("e")
    assert await dedup.claim("a")  # the oldest were forgotten first


@pytest.mark.slow
def test_two_processes_share_one_dedup(redis_server):
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "events_dedup_worker.py"), redis_server.url, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        for name in ("p1", "p2")
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [
            json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1]) for proc in procs
        ]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [r["statuses"] for r in results] == [[200] * 4, [200] * 4]

    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        ran = [item.decode() for item in client.lrange("test:ran", 0, -1)]
    finally:
        client.close()
    scenes = sorted(item.split(":")[0] for item in ran)
    assert scenes == ["own-p1", "own-p2", "shared"]  # six deliveries of "shared", one run
    pids = {item.split(":")[1] for item in ran}
    assert len(pids) == 2  # both processes did work
