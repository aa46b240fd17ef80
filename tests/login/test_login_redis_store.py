"""RedisLoginStore specifics against a real redis-server (asyncio only: redis-py).

What Redis holds (digests, no id, no scene, no token), TTLs, the subscribe-before-read window
inside the store, outages and a server that never answers (every operation is time-bounded).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from login_helpers import fake_login
from redis.asyncio import Redis
from redisserver import free_port

from wxqr.login import LoginStoreError, MemoryLoginStore, RedisLoginStore, ScanLogin

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def redis(redis_server):
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def _dump(redis: Redis, prefix: str) -> dict[str, object]:
    out: dict[str, object] = {}
    async for key in redis.scan_iter(match=prefix + "*"):
        kind = (await redis.type(key)).decode()
        out[key.decode()] = (
            await redis.hgetall(key) if kind == "hash" else await redis.get(key),
            await redis.pttl(key),
        )
    return out


async def test_redis_holds_digests_only_and_expires_with_the_attempt(redis):
    prefix = "wxqr:keys-test:login:"
    login, _, issuer = fake_login(
        RedisLoginStore(redis, prefix=prefix), expire_seconds=120, grace_seconds=10
    )
    attempt = await login.start()
    scene = issuer.scenes[attempt.ticket]
    await login.on_scan(issuer.scan_of(attempt.ticket, "oREDIS"))

    stored = await _dump(redis, prefix)
    assert len(stored) == 2
    text = repr(stored)
    assert attempt.id not in text
    assert scene not in text
    assert "TOKEN" not in text  # FakeWeChat's access tokens are "TOKEN<n>-..."
    for key, (_, ttl) in stored.items():
        assert key.startswith(prefix)
        assert 125_000 < ttl <= 130_000, (key, ttl)
    values = next(v for v, _ in stored.values() if isinstance(v, dict))
    assert values[b"st"] == b"scanned"
    assert values[b"op"] == b"oREDIS"

    assert (await login.wait(attempt.id, timeout=5)).openid == "oREDIS"
    values = next(v for v, _ in (await _dump(redis, prefix)).values() if isinstance(v, dict))
    assert values[b"st"] == b"consumed"
    assert b"op" not in values


async def test_a_publish_right_after_the_store_read_is_received(redis):
    """Inside RedisLoginStore.wait: subscribed (confirmed), read "pending", then the scan."""
    prefix = "wxqr:window-test:login:"
    scanner, _, issuer = fake_login(RedisLoginStore(redis, prefix=prefix))
    attempt = await scanner.start()

    class ScanRightAfterRead(RedisLoginStore):
        reads = 0

        async def get(self, key):
            record = await super().get(key)
            type(self).reads += 1
            if type(self).reads == 2:  # the read inside wait(), after subscribing
                await scanner.on_scan(issuer.scan_of(attempt.ticket, "oWINDOW"))
            return record

    other = Redis.from_url(_url(redis))
    try:
        waiting = ScanLogin(scanner._client, store=ScanRightAfterRead(other, prefix=prefix))
        started = time.monotonic()
        result = await waiting.wait(attempt.id, timeout=20)
        assert result is not None
        assert result.openid == "oWINDOW"
        assert time.monotonic() - started < 10
        assert ScanRightAfterRead.reads >= 3
    finally:
        await other.aclose()


def _url(redis: Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


async def test_waiters_release_their_connections(redis):
    prefix = "wxqr:conn-test:login:"
    login, _, _ = fake_login(RedisLoginStore(redis, prefix=prefix))
    attempt = await login.start()
    for _ in range(5):
        assert await login.wait(attempt.id, timeout=0.05) is None
    clients = await redis.client_list()
    pubsubs = [c for c in clients if c.get("sub", "0") != "0"]
    assert pubsubs == []


async def test_redis_down_is_a_login_store_error_without_the_id():
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    dead = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    try:
        login, _, _ = fake_login(RedisLoginStore(dead))
        attempt_id = "Q" * 43
        with pytest.raises(LoginStoreError, match="Redis get failed: ConnectionError") as info:
            await login.status(attempt_id)
        assert attempt_id not in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
        with pytest.raises(LoginStoreError):
            await login.start()
        with pytest.raises(LoginStoreError):
            await login.wait(attempt_id, timeout=1)
    finally:
        await dead.aclose()


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


async def test_every_operation_is_bounded_by_op_timeout(silent_server):
    hung = Redis(host="127.0.0.1", port=silent_server)
    try:
        login, _, issuer = fake_login(RedisLoginStore(hung, op_timeout=0.3))
        for call in (
            lambda: login.status("Q" * 43),
            lambda: login.wait("Q" * 43, timeout=30),
            lambda: login.start(),
            lambda: login.on_scan(issuer.scan_of(next(iter(issuer.scenes)), "oX")),
        ):
            started = time.monotonic()
            with pytest.raises(LoginStoreError, match=r"did not answer within 0\.3 s"):
                await call()
            assert time.monotonic() - started < 5
    finally:
        await hung.aclose()


async def test_store_options_are_validated(redis):
    from wxqr import ValidationError

    with pytest.raises(ValidationError, match="op_timeout"):
        RedisLoginStore(redis, op_timeout=0)
    with pytest.raises(ValidationError, match="prefix"):
        RedisLoginStore(redis, prefix=b"x")  # type: ignore[arg-type]
    assert "wxqr:login:" in repr(RedisLoginStore(redis))


async def test_the_memory_store_forgets_closed_attempts():
    store = MemoryLoginStore()
    clock_now = [1_700_000_000.0]
    login, _, _ = fake_login(store, expire_seconds=60, grace_seconds=0, clock=lambda: clock_now[0])
    for _ in range(5):
        await login.start()
    assert len(store._entries) == 5
    clock_now[0] += 61
    await login.start()
    assert len(store._entries) == 1
    assert len(store._scenes) == 1


async def test_the_memory_store_forgets_pending_confirmations():
    store = MemoryLoginStore()
    clock_now = [1_700_000_000.0]
    login, _, issuer = fake_login(
        store, expire_seconds=60, grace_seconds=0, site="s.example", confirm=True,
        clock=lambda: clock_now[0],
    )  # fmt: skip
    first = await login.start()
    await login.on_scan(issuer.scan_of(first.ticket, "oSAME"))
    clock_now[0] += 30
    second = await login.start()
    await login.on_scan(issuer.scan_of(second.ticket, "oSAME"))  # the index moves to it
    clock_now[0] += 31  # the first closes; the second's index must survive the purge
    await login.start()
    assert len(store._confirming) == 1
    clock_now[0] += 60
    await login.start()
    assert store._confirming == {}
    assert len(store._entries) == 1
