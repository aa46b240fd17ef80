"""An httpx transport that sends over aiohttp: wxqr 0.1's default wire, kept for the benchmark.

wxqr itself now drives aiohttp directly (``wxqr/_wire_aiohttp.py``); this file is the baseline
the "raw httpx over an aiohttp transport" row measures. Its original notes follow.

Why not httpcore: its connection pool rescans every waiting request against every connection at
each step, so plain httpx falls to ~300 req/s at 100 requests in flight, slower than requests in
threads (see README "Performance"). aiohttp's connector holds up.

Why our own and not the ``httpx-aiohttp`` package: that one maps every
``aiohttp.ClientConnectionError`` (server disconnects and resets included) to
``httpx.ConnectTimeout``, which would tell wxqr's retry policy that a request that may have reached
WeChat was never sent — and ``shorten.gen``/``qrcode_jump.publish`` must not be resent then. This
transport keeps "could not connect" (``ConnectError``/``ConnectTimeout``: safe to resend) apart
from "connection lost after sending" (``ReadError``/``ReadTimeout``). It also reads each (small)
body in one call instead of streaming it in chunks.

asyncio only (aiohttp is); wxqr keeps httpcore under trio and for caller-supplied clients.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
import yarl

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests through one lazily created ``aiohttp.ClientSession``.

    Args:
        limits: ``max_connections`` bounds the connector; ``keepalive_expiry`` its idle time.
    """

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        self._limits = limits if limits is not None else httpx.Limits()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, Any, Any], aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry or 5.0,
            )
            # auto_decompress off: httpx decodes Content-Encoding itself when building the
            # Response, so the body must reach it as sent.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
            # aiohttp silently resends a GET once when a kept-alive connection drops. wxqr's
            # retry policy owns every resend (the classic token GET spends a 2,000/day quota),
            # so that hidden retry is switched off. There is no public switch; the attribute
            # has existed since aiohttp 3.9, and without it behaviour merely stays aiohttp's.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        session = self._get_session()
        body = request.content or None
        key = (timeout.get("pool"), timeout.get("connect"), timeout.get("read"))
        client_timeout = self._timeouts.get(key)
        if client_timeout is None:
            client_timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                connect=key[0], sock_connect=key[1], sock_read=key[2]
            )
        sent = False
        try:
            async with session.request(
                request.method,
                # httpx URLs are already percent-encoded: spare yarl a second parse/quote.
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=client_timeout,
            ) as response:
                sent = True
                content = await response.read()
                status = response.status
                headers = response.raw_headers
                reason = response.reason
        except aiohttp.ClientConnectorError as exc:
            # DNS failure, refused, unreachable: nothing was sent.
            raise httpx.ConnectError(_describe(exc), request=request) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from exc
        except (aiohttp.SocketTimeoutError, asyncio.TimeoutError) as exc:
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.ReadError(_describe(exc), request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(
                "server closed the connection without an answer", request=request
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise httpx.UnsupportedProtocol("invalid URL", request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            error = httpx.ReadError if sent else httpx.WriteError
            raise error(_describe(exc), request=request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if reason:
            extensions["reason_phrase"] = reason.encode()
        return httpx.Response(
            status, headers=headers, content=content, request=request, extensions=extensions
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _describe(exc: BaseException) -> str:
    # aiohttp messages name host and port, never the query string.
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
