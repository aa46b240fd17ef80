"""The wire: the one small interface through which wxqr sends an HTTP request.

``send(method, target, body, headers, timeout) -> (status, headers, body)`` — the shape of the
decoder's input — with two implementations (elastic-transport keeps its HTTP backends behind
one node interface the same way):

* :class:`~wxqr._wire_aiohttp.AiohttpWire` talks to ``aiohttp.ClientSession`` directly: no httpx
  objects on the hot path. The default on asyncio when aiohttp is installed (``wxqr[speed]``).
* :class:`HttpxWire` sends through any ``httpx.AsyncClient`` (a caller's ``http_client``, an
  ``httpx.MockTransport`` in tests) or, for wxqr's own client under trio or without aiohttp,
  straight through an ``httpx.AsyncHTTPTransport`` (no client layer: no cookie jar, no hooks).

Every wire gives the same guarantees, which the rest of wxqr relies on:

* **Bounded answers**: a ``Content-Length`` above ``max_response_bytes`` is refused before the
  body is read; otherwise the body is counted while it streams in, *after* decompression (a
  gzip bomb is stopped at the cap, never inflated), and the connection is dropped, not reused.
  Only ``gzip``/``deflate`` are asked for and accepted.
* **Bounded time**: ``timeout`` bounds the whole attempt — connecting, sending and reading the
  whole body — not each socket read (a server trickling one byte a second is cut off).
* **No redirects**, whatever the caller's client says: a 307 must not carry an AppSecret to
  another host. A 3xx reaches the decoder as a non-2xx status.
* **Retry safety**: a failure says whether the request surely never left this machine
  (``not_sent``: could not connect, so resending cannot repeat a side effect) or may have
  reached the server (lost after sending, timed out, malformed answer).
* **Clean exceptions**: :class:`WireError` is raised outside the foreign exception's handler,
  so no ``__context__`` chain carries an aiohttp/httpx message (they embed the URL, and with it
  a token or, in classic token mode, the AppSecret).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, Protocol

import anyio
import httpx

from .errors import ValidationError

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "JSON_HEADERS",
    "Answer",
    "BodyTooLarge",
    "HttpxWire",
    "Sealed",
    "Target",
    "Wire",
    "WireChoice",
    "WireError",
    "dumps",
    "foreign_detail",
    "make_wire",
    "redact",
]

#: Default cap on one answer's (decompressed) body: generous for images (a wxacode at the
#: largest width is ~200 KiB), small enough that a hostile answer cannot exhaust memory.
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024

#: What every wire asks for, and all it can decode.
ACCEPT_ENCODING: Final = "gzip, deflate"

WireChoice = Literal["auto", "aiohttp", "httpx"]

#: The headers of a JSON request body.
JSON_HEADERS: Final[Mapping[str, str]] = {"Content-Type": "application/json"}

#: ``(status, headers, body)``; headers are a case-insensitive mapping.
Answer = tuple[int, Mapping[str, str], bytes]


_SECRET_IN_URL = re.compile(r"((?:access_token|secret|appsecret)=)[^&\s\"'>]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Mask ``access_token=`` / ``secret=`` values in a URL or message."""
    return _SECRET_IN_URL.sub(r"\1***", text)


def foreign_detail(exc: BaseException) -> str:
    """``ClassName: message`` of a foreign exception, secrets masked, at most 200 chars."""
    text = redact(str(exc))[:200]
    name = exc.__class__.__name__
    return f"{name}: {text}" if text else name


_fast_dumps: Callable[[Any], bytes] | None
try:  # optional (``wxqr[speed]``): ~10x faster on small bodies
    import orjson

    _fast_dumps = orjson.dumps
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _fast_dumps = None


def dumps(payload: Mapping[str, Any]) -> bytes:
    """Encode a request body once: compact UTF-8 JSON, as httpx's ``json=`` would.

    Through orjson when installed (the same JSON for the str/int/bool dicts wxqr sends);
    whatever orjson refuses, and any body with a ``null`` (orjson writes NaN as null, where
    ``json`` with ``allow_nan=False`` refuses it), is left to ``json``, which decides.
    """
    if _fast_dumps is not None and type(payload) is dict:
        try:
            encoded = _fast_dumps(payload)
        except TypeError:  # orjson.JSONEncodeError: a type or value it does not take
            pass
        else:
            if b"null" not in encoded:
                return encoded
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class WireError(Exception):
    """The exchange failed on the wire (internal: the transport turns it into a wxqr error).

    Attributes:
        detail: what happened, never including the URL.
        not_sent: the request surely never reached the server (safe to resend any call).
        undecodable: the HTTP exchange completed but its body did not decode (a bad
            ``Content-Encoding``): a :class:`~wxqr.ResponseDecodeError` rather than a
            :class:`~wxqr.TransportError`.
    """

    def __init__(self, detail: str, *, not_sent: bool, undecodable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.not_sent = not_sent
        self.undecodable = undecodable


class BodyTooLarge(Exception):
    """The answer is larger than ``max_response_bytes`` (internal).

    Attributes:
        limit: the cap.
        declared: the ``Content-Length`` the server announced, if that is how it was caught.
    """

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(limit, declared)
        self.limit = limit
        self.declared = declared


class Target:
    """A prepared request URL (built once per token, reused per call); its repr is masked.

    Attributes:
        native: what the wire sends to (``yarl.URL`` for aiohttp, ``httpx.URL`` for httpx).
        shown: the URL with ``access_token=`` / ``secret=`` masked, for logs.
    """

    __slots__ = ("native", "shown")

    def __init__(self, native: Any, url: str) -> None:
        self.native = native
        self.shown = redact(url)

    def __repr__(self) -> str:
        return "<wxqr request URL (masked)>"


class Sealed(bytes):
    """A request body that may hold a secret (the stable_token POST): its repr is masked."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} bytes (masked)>"


class Wire(Protocol):
    """What the transport and the token manager send through."""

    def target(self, url: str) -> Target:
        """Prepare an absolute, already percent-encoded URL for :meth:`send`."""
        ...

    async def send(
        self,
        method: str,
        target: Target,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> Answer:
        """Send one request; return ``(status, headers, body)``.

        Raises:
            WireError: the request failed (see ``not_sent``).
            BodyTooLarge: the answer exceeds the cap (the connection was dropped).
        """
        ...

    async def aclose(self) -> None:
        """Close what the wire owns (never a caller's ``http_client``). Idempotent."""
        ...


_INFLATE_STEP: Final = 1024 * 1024


class BodyReader:
    """Collects one body under the cap, decompressing ``gzip``/``deflate`` as it streams."""

    __slots__ = ("_chunks", "_decoder", "_encoding", "_left", "_limit")

    def __init__(self, limit: int, encoding: str | None) -> None:
        self._limit = limit
        self._left = limit
        self._chunks: list[bytes] = []
        encoding = (encoding or "").strip().lower()
        self._encoding = encoding
        self._decoder: Any = None
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._decoder = None  # zlib-wrapped or raw: decided on the first bytes
        elif encoding not in ("", "identity"):
            raise WireError(
                f"unsupported Content-Encoding {encoding[:20]!r}", not_sent=False, undecodable=True
            )

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if not self._encoding or self._encoding == "identity":
            self._keep(data)
            return
        if self._decoder is None:  # deflate: zlib header (RFC 1950) or raw (RFC 1951)
            raw = (data[0] & 0x0F) != 8
            self._decoder = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        try:
            while data:
                if self._decoder.eof:
                    break  # trailing bytes after the stream end are ignored
                # Inflated in steps of at most 1 MiB, and never more than one byte past the
                # cap, whatever the compression ratio.
                out = self._decoder.decompress(data, min(self._left + 1, _INFLATE_STEP))
                self._keep(out)
                data = self._decoder.unconsumed_tail
        except zlib.error:
            raise WireError(
                f"{self._encoding} body does not decompress", not_sent=False, undecodable=True
            ) from None

    def _keep(self, data: bytes) -> None:
        self._left -= len(data)
        if self._left < 0:
            raise BodyTooLarge(self._limit)
        self._chunks.append(data)

    def finish(self) -> bytes:
        if self._decoder is not None and self._encoding:
            try:
                self._keep(self._decoder.flush())
            except zlib.error:
                raise WireError(
                    f"{self._encoding} body does not decompress", not_sent=False, undecodable=True
                ) from None
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value.split(",", 1)[0])
    except ValueError:
        return None


_NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
# httpcore reports a vanished peer and a protocol violation with the same class.
_DISCONNECTED: Final = ("disconnected", "peer closed", "without sending", "connection closed")


def _httpx_failure(exc: httpx.HTTPError) -> WireError:
    detail = foreign_detail(exc)
    if isinstance(exc, _NOT_SENT):
        return WireError(f"{detail} (not sent)", not_sent=True)
    if isinstance(exc, httpx.TimeoutException):
        return WireError(f"{detail} (timed out waiting for the answer)", not_sent=False)
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc).lower()
        if not any(word in text for word in _DISCONNECTED):
            return WireError(f"malformed HTTP answer ({detail})", not_sent=False)
        return WireError(f"{detail} (connection lost before the whole answer)", not_sent=False)
    return WireError(f"{detail} (connection lost after sending)", not_sent=False)


class HttpxWire:
    """Sends through httpx: a caller's ``AsyncClient``, or directly through a transport.

    Args:
        client: a caller-owned ``httpx.AsyncClient`` (its auth, hooks and mounts apply; its
            redirect setting does not; never closed here).
        transport: a transport wxqr owns (used without an ``AsyncClient`` around it).
        max_response_bytes: the body cap.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if (client is None) == (transport is None):
            raise TypeError("pass exactly one of client and transport")
        self._client = client
        self._transport = transport
        self._limit = max_response_bytes
        self._timeouts: dict[float, tuple[httpx.Timeout, dict[str, float | None]]] = {}

    def target(self, url: str) -> Target:
        return Target(httpx.URL(url), url)

    async def send(
        self,
        method: str,
        target: Target,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> Answer:
        request_headers = {"accept-encoding": ACCEPT_ENCODING}
        if headers:
            request_headers.update(headers)
        failure: WireError | None = None
        answer: Answer | None = None
        # The whole attempt (connect, send, every read) runs under one deadline; httpx's own
        # timeouts are per operation, so a trickling server would never trip them.
        with anyio.move_on_after(timeout):
            try:
                answer = await self._exchange(method, target, body, request_headers, timeout)
            except httpx.HTTPError as exc:
                failure = _httpx_failure(exc)
        if failure is not None:
            raise failure  # outside the handler: no httpx message in any __context__
        if answer is None:
            raise WireError(f"timed out after {timeout:g}s (whole attempt)", not_sent=False)
        return answer

    async def _exchange(
        self,
        method: str,
        target: Target,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> Answer:
        cached = self._timeouts.get(timeout)
        if cached is None:
            # Connecting (and waiting for a pooled connection) gets 90% of the attempt, so
            # that a hanging connect ends as ConnectTimeout (nothing sent: safe to resend)
            # before the whole-attempt deadline fires (which counts as "may have been sent").
            short = timeout * 0.9
            config = httpx.Timeout(timeout, connect=short, pool=short)
            cached = self._timeouts[timeout] = (config, config.as_dict())
        if self._client is not None:
            request = self._client.build_request(
                method, target.native, content=body, headers=headers, timeout=cached[0]
            )
            response = await self._client.send(request, stream=True, follow_redirects=False)
        else:
            assert self._transport is not None
            request = httpx.Request(
                method,
                target.native,
                content=body,
                headers=headers,
                extensions={"timeout": cached[1]},
            )
            response = await self._transport.handle_async_request(request)
        try:
            status, response_headers = response.status_code, response.headers
            length = declared_length(response_headers)
            if length is not None and length > self._limit:
                raise BodyTooLarge(self._limit, length)
            try:
                # Built in memory (MockTransport): read, and decoded, by its maker already.
                content = response.content
            except httpx.ResponseNotRead:
                pass
            else:
                if len(content) > self._limit:
                    raise BodyTooLarge(self._limit)
                return status, response_headers, content
            reader = BodyReader(self._limit, response_headers.get("content-encoding"))
            async for chunk in response.aiter_raw():
                reader.feed(chunk)
            return status, response_headers, reader.finish()
        finally:
            # Closing an unfinished response drops its connection instead of reusing it.
            await response.aclose()

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def make_wire(
    choice: WireChoice,
    http_client: httpx.AsyncClient | None,
    *,
    max_connections: int,
    max_response_bytes: int,
) -> Wire:
    """The wire a client uses (see ``wxqr.Client``'s ``wire`` option).

    ``http_client`` given: an :class:`HttpxWire` around it. Otherwise ``"auto"`` picks aiohttp
    on asyncio when it is installed, else httpx's own transport.

    Raises:
        ValidationError: ``"aiohttp"`` was asked for outside asyncio.
    """
    if http_client is not None:
        return HttpxWire(client=http_client, max_response_bytes=max_response_bytes)
    if choice != "httpx":
        import sniffio

        on_asyncio = sniffio.current_async_library() == "asyncio"
        if choice == "aiohttp" and not on_asyncio:
            raise ValidationError("wire", "'aiohttp' needs asyncio (aiohttp is asyncio-only)")
        if on_asyncio:
            try:
                from ._wire_aiohttp import AiohttpWire
            except ImportError:
                if choice == "aiohttp":
                    raise
            else:
                return AiohttpWire(
                    max_connections=max_connections, max_response_bytes=max_response_bytes
                )
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return HttpxWire(
        transport=httpx.AsyncHTTPTransport(limits=limits), max_response_bytes=max_response_bytes
    )


def wire_name(wire: Wire) -> str:
    """``"aiohttp"`` or ``"httpx"`` (for benchmarks and reprs)."""
    return "httpx" if isinstance(wire, HttpxWire) else "aiohttp"
