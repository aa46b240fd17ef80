"""Clients wired to an in-process sandbox (no socket): for the pytest plugin and other tests.

``wxqr.Client`` is imported inside :func:`sandbox_client` only: the emulator itself never
depends on the client it is used to test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import httpx

from ._app import create_app
from ._state import DEFAULT_APPID, DEFAULT_SECRET, SandboxState

if TYPE_CHECKING:
    from wxqr import Client

__all__ = ["SANDBOX_BASE_URL", "sandbox_client", "sandbox_http_client"]

#: The base URL in-process sandbox clients use for both WeChat hosts.
SANDBOX_BASE_URL: Final = "http://sandbox"


def sandbox_http_client(state: SandboxState, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose requests are answered in-process by the sandbox.

    ``base_url`` defaults to :data:`SANDBOX_BASE_URL`, so ``await http.get("/cgi-bin/token",
    params=...)`` works. The caller closes it (``await http.aclose()``).

    Args:
        state: the sandbox state to answer from.
        kwargs: more ``httpx.AsyncClient`` arguments.
    """
    kwargs.setdefault("base_url", SANDBOX_BASE_URL)
    transport = httpx.ASGITransport(app=create_app(state))
    return httpx.AsyncClient(transport=transport, **kwargs)


def sandbox_client(state: SandboxState, **client_kwargs: Any) -> Client:
    """A ``wxqr.Client`` for the default sandbox account, talking to ``state`` in-process.

    Args:
        state: the sandbox state to answer from.
        client_kwargs: ``wxqr.Client`` arguments; ``appid`` / ``secret`` default to
            :data:`DEFAULT_APPID` / :data:`DEFAULT_SECRET`, ``api_base_url`` / ``mp_base_url``
            to :data:`SANDBOX_BASE_URL`, ``http_client`` to :func:`sandbox_http_client`.

    Returns:
        the client. Being handed its ``http_client``, the client never closes it; an
        in-process httpx client holds no sockets, so leaving it to the garbage collector is
        harmless, or pass your own ``http_client`` and close it.
    """
    from wxqr import Client

    appid = client_kwargs.pop("appid", DEFAULT_APPID)
    secret = client_kwargs.pop("secret", DEFAULT_SECRET)
    client_kwargs.setdefault("api_base_url", SANDBOX_BASE_URL)
    client_kwargs.setdefault("mp_base_url", SANDBOX_BASE_URL)
    if client_kwargs.get("http_client") is None:
        client_kwargs["http_client"] = sandbox_http_client(state)
    return Client(appid, secret, **client_kwargs)
