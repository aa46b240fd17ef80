"""Fixtures of the scan-login tests: every store (memory on asyncio and trio, Redis on asyncio).

``flavour`` picks the store and the event loop together: redis-py is asyncio-only, so the Redis
store runs on asyncio only, the memory store on both.
"""

from __future__ import annotations

import itertools

import pytest

from wxqr.login import MemoryLoginStore, RedisLoginStore

_prefixes = itertools.count()


@pytest.fixture(
    params=[
        pytest.param(("memory", "asyncio"), id="memory-asyncio"),
        pytest.param(("memory", "trio"), id="memory-trio"),
        pytest.param(("redis", "asyncio"), id="redis-asyncio", marks=pytest.mark.redis),
    ]
)
def flavour(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(flavour: tuple[str, str]) -> str:
    return flavour[1]


@pytest.fixture
async def make_store(flavour: tuple[str, str], request: pytest.FixtureRequest):
    """``make_store()`` -> a fresh store of the flavour; Redis stores of one test share a prefix,
    each on its own client (as separate worker processes would be)."""
    import redis.asyncio

    prefix = f"wxqr:test{next(_prefixes)}:login:"
    clients: list[redis.asyncio.Redis] = []
    memory = MemoryLoginStore()

    def make(**options: object) -> MemoryLoginStore | RedisLoginStore:
        if flavour[0] == "memory":
            return memory  # one process: every "worker" shares the process's store
        server = request.getfixturevalue("redis_server")
        client = redis.asyncio.Redis.from_url(server.url)
        clients.append(client)
        return RedisLoginStore(client, prefix=prefix, **options)  # type: ignore[arg-type]

    make.prefix = prefix  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()
