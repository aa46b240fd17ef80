"""pytest fixtures for testing code that uses wxqr against the WeChat emulator.

Registered as the ``wxqr`` pytest plugin (entry point ``pytest11``), so installing wxqr makes
these fixtures available everywhere, to tests run by anyio's pytest plugin (asyncio or trio)
and by pytest-asyncio alike::

    import pytest
    import wxqr

    @pytest.mark.anyio
    async def test_ticket(wechat_sandbox):
        wx = wechat_sandbox.client
        ticket = await wx.qrcode.create_temporary(scene_id=1, expire_seconds=60)
        assert wechat_sandbox.state.calls["cgi-bin/qrcode/create"] == 1
        assert wxqr.image_kind(await wx.qrcode.show(ticket)) == "png"

    @pytest.mark.asyncio  # pytest-asyncio, strict mode or auto
    async def test_short_key(wechat_sandbox):
        key = await wechat_sandbox.client.shorten.gen("data", expire_seconds=60)
        assert (await wechat_sandbox.client.shorten.fetch(key)).long_data == "data"

* ``wechat_sandbox_state`` — a fresh :class:`~wxqr.sandbox.SandboxState` (configure accounts,
  faults and the clock on it before the client is used).
* ``wechat_sandbox`` — a :class:`WeChatSandbox` with ``.state``, ``.client`` (a ``wxqr.Client``
  for the default account, answered in-process) and ``.http`` (a raw ``httpx.AsyncClient`` on
  the same app, base URL ``http://sandbox``). It is a plain (synchronous) fixture: the client
  binds to whichever event loop first uses it, so any async test plugin can run the test.
  Drawing images needs the ``sandbox`` extra (``segno``); without it ``show()`` and the
  wxacode calls raise one ``ModuleNotFoundError`` line naming the extra.

This module imports nothing heavy at import time: not ``segno``, not ``uvicorn``, not
``wxqr.Client``; pytest loads it in every session of an environment that has wxqr installed.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx

    from wxqr import Client

    from ._state import SandboxState

__all__ = ["WeChatSandbox", "wechat_sandbox", "wechat_sandbox_state"]


class WeChatSandbox:
    """What the ``wechat_sandbox`` fixture yields.

    Attributes:
        state: the :class:`~wxqr.sandbox.SandboxState` answering the requests.
        client: a ``wxqr.Client`` for the default sandbox account.
        http: a raw ``httpx.AsyncClient`` on the same in-process app (base ``http://sandbox``).
    """

    def __init__(self, state: SandboxState, client: Client, http: httpx.AsyncClient) -> None:
        self.state = state
        self.client = client
        self.http = http

    def __repr__(self) -> str:
        return f"<WeChatSandbox accounts={list(self.state.accounts)}>"


@pytest.fixture
def wechat_sandbox_state() -> SandboxState:
    """A fresh sandbox state with the healthy default account."""
    from ._state import SandboxState

    return SandboxState()


@pytest.fixture
def wechat_sandbox(wechat_sandbox_state: SandboxState) -> Iterator[WeChatSandbox]:
    """A ``wxqr.Client`` wired to ``wechat_sandbox_state`` in-process, closed afterwards."""
    from ._clients import sandbox_client, sandbox_http_client

    http = sandbox_http_client(wechat_sandbox_state)
    client_http = sandbox_http_client(wechat_sandbox_state)
    client: Any = sandbox_client(wechat_sandbox_state, http_client=client_http)
    try:
        yield WeChatSandbox(wechat_sandbox_state, client, http)
    finally:
        for closing in (client.aclose(), client_http.aclose(), http.aclose()):
            _finish(closing)


def _finish(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a close that never waits (in-process: no socket, no task) without an event loop.

    A synchronous teardown works under every async test plugin; the test's own loop is gone
    by then (pytest-asyncio, anyio on asyncio or trio).
    """
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()  # it waited on something after all: nothing in-process is left to free
