"""Shared test configuration: every backend-neutral async test runs on asyncio and trio, and
the suites that need Redis share one real ``redis-server``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redisserver import RedisServer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole run, started on first use on a free loopback port.

    A test may stall it for a while (SIGSTOP, then SIGCONT) but never stops it: a test that
    needs an outage takes a server of its own (``tests/caches``' ``private_redis_server``).
    Each test cleans or namespaces what it stores.
    """
    with RedisServer() as server:
        yield server
