"""pytest fixtures for testing code that uses wxqr against the WeChat emulator.

Registered as the ``wxqr`` pytest plugin (entry point ``pytest11``), so installing wxqr makes
these fixtures available everywhere::

    @pytest.mark.anyio
    async def test_ticket(wechat_sandbox):
        ticket = await wechat_sandbox.client.qrcode.create_temporary(scene_id=1)
        assert wechat_sandbox.state.calls["cgi-bin/qrcode/create"] == 1

* ``wechat_sandbox_state`` — a fresh :class:`~wxqr.sandbox.SandboxState` (configure accounts,
  faults and the clock on it before the client is used).
* ``wechat_sandbox`` — a :class:`WeChatSandbox` with ``.state``, ``.client`` (a ``wxqr.Client``
  for the default account, answered in-process) and ``.http`` (a raw ``httpx.AsyncClient`` on
  the same app, base URL ``http://sandbox``). It is an async fixture: use it from tests run by
  anyio's pytest plugin (``@pytest.mark.anyio``).

This module imports nothing heavy at import time: not ``segno``, not ``uvicorn``, not
``wxqr.Client``; pytest loads it in every session of an environment that has wxqr installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
async def wechat_sandbox(wechat_sandbox_state: SandboxState) -> AsyncIterator[WeChatSandbox]:
    """A ``wxqr.Client`` wired to ``wechat_sandbox_state`` in-process, closed afterwards."""
    from ._clients import sandbox_client, sandbox_http_client

    http = sandbox_http_client(wechat_sandbox_state)
    client_http = sandbox_http_client(wechat_sandbox_state)
    client: Any = sandbox_client(wechat_sandbox_state, http_client=client_http)
    try:
        async with client:
            yield WeChatSandbox(wechat_sandbox_state, client, http)
    finally:
        await client_http.aclose()
        await http.aclose()
