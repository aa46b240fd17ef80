"""Fixtures for the reliability suite: one real-socket sandbox server whose state each test
replaces, socket counting through ``/proc``, and a small ``redis-server``.

The server (uvicorn with the sandbox's abortable h11 protocol, so ``drop`` really aborts the
socket) is started once per session; every test gets a fresh :class:`SandboxState` behind it
(``sandbox.use(state)``), so no state, quota window or force-refresh cooldown leaks between
tests. Starting ``served()`` per test would cost ~0.2 s each, ~1 minute over the fault matrix.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redisserver import RedisServer

from wxqr.sandbox import SandboxState, create_app
from wxqr.sandbox._serve import _base_url, _bind, _make_server


class SwitchableSandbox:
    """The sandbox on a real loopback socket, answering from whichever state was set last."""

    def __init__(self) -> None:
        self._app: Any = create_app(SandboxState(seed=0))

        async def dispatch(scope: Any, receive: Any, send: Any) -> None:
            await self._app(scope, receive, send)

        self._server = _make_server(dispatch, log_level="warning")
        self._sock = _bind("127.0.0.1", 0)
        self.base_url = _base_url(self._sock)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="reliability-sandbox",
            daemon=True,
        )

    def use(self, state: SandboxState) -> SandboxState:
        self._app = create_app(state)
        return state

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the reliability sandbox did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SwitchableSandbox]:
    server = SwitchableSandbox()
    server.start()
    yield server
    server.stop()


def own_sockets_to(port: int, *, established_only: bool = False) -> int:
    """TCP sockets held by *this process* whose remote end is ``127.0.0.1:port``.

    ``/proc/self/net/tcp`` lists every socket of the network namespace; the process's own are
    those whose inode is one of its file descriptors.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/self/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            state, inode = fields[3], fields[9]
            if remote_port != port or inode not in inodes:
                continue
            if established_only and state != "01":
                continue
            count += 1
    return count


@pytest.fixture(scope="session")
def reliability_redis_url() -> Iterator[str]:
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()
