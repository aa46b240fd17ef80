"""Fixtures for the reliability suite: one real-socket sandbox server whose state each test
replaces, socket counting through ``/proc``, and a small ``redis-server``.

The server (uvicorn with the sandbox's abortable h11 protocol, so ``drop`` really aborts the
socket) is started once per session; every test gets a fresh :class:`SandboxState` behind it
(``sandbox.use(state)``), so no state, quota window or force-refresh cooldown leaks between
tests. Starting ``served()`` per test would cost ~0.2 s each, ~1 minute over the fault matrix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from redisserver import RedisServer

from wxqr.sandbox import SandboxState, create_app, served


class SwitchableSandbox:
    """The sandbox on a real loopback socket, answering from whichever state was set last.

    One server for the whole session (starting one per matrix cell would cost a minute).
    """

    def __init__(self) -> None:
        self._app: Any = create_app(SandboxState(seed=0))
        self._serving = contextlib.ExitStack()
        self.base_url = ""
        self.port = 0

    def use(self, state: SandboxState) -> SandboxState:
        self._app = create_app(state)
        return state

    def start(self) -> None:
        async def dispatch(scope: Any, receive: Any, send: Any) -> None:
            await self._app(scope, receive, send)

        self.base_url = self._serving.enter_context(served(app=dispatch))
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self._serving.close()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SwitchableSandbox]:
    server = SwitchableSandbox()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def reliability_redis_url() -> Iterator[str]:
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()
