"""A tiny hostile HTTP/1.1 server of the tests' own, on a real loopback socket.

It answers the token endpoints like WeChat and every other path with the current ``mode``:

=============  =====================================================================
``ok``          a small JSON ticket answer (keep-alive)
``huge``        ``Content-Length: 10 GB``, then zeros for as long as the client reads
``endless``     a chunked body that never ends (64 KiB chunks from a generator)
``trickle``     ``Content-Length: 64``, one byte a second
``gzip-bomb``   ~255 KiB of gzip that inflates to 256 MiB (``Content-Encoding: gzip``)
``redirect``    ``307`` to ``/elsewhere`` on this server (which counts its visitors)
``status-999``  ``HTTP/1.1 999`` with a JSON body
``malformed``   a status line that is not HTTP
``gzip-json``   the ticket answer, gzip-compressed (a well-behaved compressing proxy)
``deflate-json`` the ticket answer, zlib-deflated
``br-json``     ``Content-Encoding: br`` (never asked for)
=============  =====================================================================

With ``tokens_too`` the token endpoints get the hostile answer as well.

It counts requests per path and the bytes it managed to push per connection, and runs in a
thread with its own event loop; ``stop()`` closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import zlib
from collections import Counter
from functools import cache

TOKEN = "HOSTILE_TOKEN_0123456789"
TOKEN_BODY = json.dumps({"access_token": TOKEN, "expires_in": 7200}).encode()
TICKET_BODY = json.dumps(
    {"ticket": "gQH47joAAAAAAAAAASxodHRwOi8v", "expire_seconds": 60, "url": "http://w.q/q"}
).encode()
BOMB_INFLATED = 256 * 1024 * 1024
CHUNK = b"\0" * 65536
#: A bound on what any hostile answer pushes, so a broken client cannot make a test run away.
MAX_PUSHED = 400 * 1024 * 1024


@cache
def gzip_bomb() -> bytes:
    """256 MiB of zeros, gzip-compressed (about 255 KiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    mib = b"\0" * (1024 * 1024)
    parts = [compressor.compress(mib) for _ in range(BOMB_INFLATED // len(mib))]
    parts.append(compressor.flush())
    return b"".join(parts)


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HostileServer:
    def __init__(self, mode: str = "ok", *, tokens_too: bool = False) -> None:
        self.mode = mode
        self.tokens_too = tokens_too  # hostile on the token endpoints as well
        self.connections = 0
        self.requests: Counter[str] = Counter()
        self.pushed: list[int] = []  # bytes of body pushed, per hostile answer
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_requests(self) -> int:
        return sum(n for path, n in self.requests.items() if "token" not in path)

    def start(self) -> HostileServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("hostile server did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every connection (idempotent)."""
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            self.connections += 1
            try:
                await self._connection(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                tasks.discard(task)
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            for task in list(tasks):
                task.cancel()
            await asyncio.sleep(0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            _method, target, _ = request_line.split(" ", 2)
            path = target.split("?", 1)[0]
            headers = {
                k.strip().lower(): v.strip()
                for k, v in (line.split(":", 1) for line in header_lines if ":" in line)
            }
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            self.requests[path] += 1
            if "token" in path and not (self.tokens_too and self.mode != "ok"):
                await self._answer(writer, "200 OK", TOKEN_BODY)
            elif path == "/elsewhere" or self.mode == "ok":
                await self._answer(writer, "200 OK", TICKET_BODY)
            elif self.mode.endswith("-json"):  # well-behaved, only compressed
                await self._encoded(writer, self.mode.split("-")[0])
            else:
                await self._hostile(writer)
                return

    async def _answer(self, writer: asyncio.StreamWriter, status: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        writer.write(_head(status, headers) + body)
        await writer.drain()

    async def _encoded(self, writer: asyncio.StreamWriter, encoding: str) -> None:
        if encoding == "gzip":
            compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
            body = compressor.compress(TICKET_BODY) + compressor.flush()
        elif encoding == "deflate":
            body = zlib.compress(TICKET_BODY)
        else:
            body = b"\x0b\x02\x80not really brotli"
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": encoding,
            "Content-Length": str(len(body)),
        }
        writer.write(_head("200 OK", headers) + body)
        await writer.drain()

    async def _push(self, writer: asyncio.StreamWriter, chunks: object) -> None:
        pushed = 0
        try:
            for chunk in chunks:  # type: ignore[attr-defined]
                writer.write(chunk)
                await writer.drain()
                pushed += len(chunk)
                if pushed >= MAX_PUSHED:
                    break
        finally:
            self.pushed.append(pushed)

    async def _hostile(self, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode == "huge":
            writer.write(
                _head("200 OK", {"Content-Type": "image/jpeg", "Content-Length": "10" + "0" * 9})
            )
            await self._push(writer, iter(lambda: CHUNK, None))
        elif mode == "endless":
            writer.write(
                _head("200 OK", {"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"})
            )
            frame = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
            await self._push(writer, iter(lambda: frame, None))
        elif mode == "trickle":
            writer.write(
                _head("200 OK", {"Content-Type": "application/json", "Content-Length": "64"})
            )
            await writer.drain()
            pushed = 0
            try:
                for _ in range(64):
                    writer.write(b" ")
                    await writer.drain()
                    pushed += 1
                    await asyncio.sleep(1.0)
            finally:
                self.pushed.append(pushed)
        elif mode == "gzip-bomb":
            bomb = gzip_bomb()
            headers = {
                "Content-Type": "image/jpeg",
                "Content-Encoding": "gzip",
                "Content-Length": str(len(bomb)),
            }
            writer.write(_head("200 OK", headers))
            await self._push(writer, (bomb[i : i + 65536] for i in range(0, len(bomb), 65536)))
        elif mode == "redirect":
            location = f"http://127.0.0.1:{self.port}/elsewhere"
            writer.write(
                _head("307 Temporary Redirect", {"Location": location, "Content-Length": "0"})
            )
        elif mode == "status-999":
            body = b'{"errcode":0}'
            writer.write(
                _head(
                    "999 Whatever",
                    {"Content-Type": "application/json", "Content-Length": str(len(body))},
                )
                + body
            )
        elif mode == "malformed":
            writer.write(b"HTTP/1.1 2OO NOT-A-STATUS\r\nthis is: not\r\nhttp at all\r\n\r\n{}")
        else:
            raise AssertionError(f"unknown mode {mode!r}")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
