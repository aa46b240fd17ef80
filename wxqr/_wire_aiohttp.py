"""The aiohttp wire: ``aiohttp.ClientSession`` driven directly, the default on asyncio.

Why aiohttp: httpcore's pool rescans every waiting request against every connection at each
step, so plain httpx falls to a few hundred req/s at 100 requests in flight; aiohttp's connector
holds up (README "Performance"). Why directly and not behind httpx's API: building httpx
Request/Response objects around every aiohttp exchange was the largest remaining cost of a call.

Retry safety (the reason wxqr never used the ``httpx-aiohttp`` package, which maps every
connection error to ``ConnectTimeout``): "could not connect" (``ClientConnectorError``, a
connect timeout: nothing was sent) is kept apart from "lost after sending" (disconnects,
resets, read timeouts), and aiohttp's hidden resend of a GET on a dropped kept-alive connection
is switched off — wxqr's retry policy owns every resend (the classic token GET spends a
2,000/day quota).

asyncio only (aiohttp is).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final

import aiohttp
import yarl

from ._wire import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_RESPONSE_BYTES,
    JSON_HEADERS,
    Answer,
    BodyReader,
    BodyTooLarge,
    Target,
    WireError,
    foreign_detail,
)

__all__ = ["AiohttpWire"]

_NEVER_ROUND: Final = 1e9
_NO_HEADERS: Final = {"Accept-Encoding": ACCEPT_ENCODING}
_JSON: Final = {**_NO_HEADERS, **JSON_HEADERS}


def _headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    if headers is None:
        return _NO_HEADERS
    if headers is JSON_HEADERS:  # the common case, merged once
        return _JSON
    return {**_NO_HEADERS, **headers}


class AiohttpWire:
    """Sends through one lazily created ``aiohttp.ClientSession``.

    Args:
        max_connections: the connector's bound (wxqr's ``max_concurrency``).
        max_response_bytes: the body cap.
        keepalive: seconds an idle connection is kept.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        keepalive: float = 15.0,
    ) -> None:
        self._max_connections = max_connections
        self._limit = max_response_bytes
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, keepalive_timeout=self._keepalive
        )
        session = aiohttp.ClientSession(
            connector=connector,
            # Decompression is ours (BodyReader): counted against the cap as it inflates.
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),  # WeChat sets no cookie wxqr needs
        )
        # No public switch; the attribute exists since aiohttp 3.9 (without it, behaviour
        # merely stays aiohttp's).
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._session = session
        return session

    def target(self, url: str) -> Target:
        # The URL is already percent-encoded: spare yarl a second parse/quote on every call.
        return Target(yarl.URL(url, encoded=url.isascii()), url)

    async def send(
        self,
        method: str,
        target: Target,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> Answer:
        session = self._session
        if session is None or session.closed:
            session = self._open()
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            # total: the whole attempt, body included (aiohttp's timer covers reads of the
            # payload). sock_connect: 90% of it, so that a connect that hangs ends as a
            # connect timeout (known to have sent nothing: safe to resend) before the total
            # fires. ceil_threshold: aiohttp rounds timeouts >= 5 s up to a whole second of
            # loop time, up to +1 s past `timeout`; never here.
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(
                total=timeout, sock_connect=timeout * 0.9, ceil_threshold=_NEVER_ROUND
            )
        failure: WireError | None = None
        try:
            async with session.request(
                method,
                target.native,
                data=body,
                headers=_headers(headers),
                allow_redirects=False,
                timeout=client_timeout,
            ) as response:
                try:
                    return await self._read(response)
                except BaseException:
                    response.close()  # never reuse a connection with an unread body
                    raise
        except (WireError, BodyTooLarge):
            raise
        except aiohttp.ClientConnectorError as exc:  # DNS, refused, unreachable, TLS
            # Its text names host and port, never the path or query.
            failure = WireError(f"{foreign_detail(exc)} (not sent)", not_sent=True)
        except aiohttp.ConnectionTimeoutError:
            failure = WireError("timed out connecting", not_sent=True)
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError):
            failure = WireError(f"timed out after {timeout:g}s (whole attempt)", not_sent=False)
        except aiohttp.ServerDisconnectedError:
            failure = WireError("server closed the connection without an answer", not_sent=False)
        except aiohttp.ClientPayloadError:
            failure = WireError("connection lost before the whole answer", not_sent=False)
        except aiohttp.InvalidURL:
            failure = WireError("invalid URL", not_sent=True)
        except aiohttp.ClientResponseError as exc:
            # The status line or headers did not parse (aiohttp's text embeds the URL).
            failure = WireError(f"malformed HTTP answer ({exc.__class__.__name__})", not_sent=False)
        except aiohttp.ClientOSError as exc:
            failure = WireError(
                f"{foreign_detail(exc)} (connection lost after sending)", not_sent=False
            )
        except (aiohttp.ClientError, OSError) as exc:
            failure = WireError(
                f"{exc.__class__.__name__} (connection lost after sending)", not_sent=False
            )
        assert failure is not None
        # Raised here, outside the handler: aiohttp's messages (with the URL, hence a token or
        # the classic AppSecret) stay out of the __context__ chain.
        raise failure

    async def _read(self, response: aiohttp.ClientResponse) -> Answer:
        headers = response.headers
        length = response.content_length
        if length is not None and length > self._limit:
            raise BodyTooLarge(self._limit, length)
        encoding = headers.get("Content-Encoding")
        if encoding is None and length is not None:
            # The common case: aiohttp stops at Content-Length, which is within the cap.
            return response.status, headers, await response.read()
        reader = BodyReader(self._limit, encoding)
        stream = response.content
        while True:
            chunk = await stream.readany()
            if not chunk:
                break
            reader.feed(chunk)
        return response.status, headers, reader.finish()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
