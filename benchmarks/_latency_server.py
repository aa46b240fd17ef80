"""A WeChat stand-in that adds a fixed delay to every answer (WeChat is ~20 ms away, not 0).

``python -m benchmarks._latency_server --delay 0.02`` prints ``listening on <port>`` and
serves canned token and ``qrcode/create`` answers over keep-alive HTTP/1.1 on 127.0.0.1 until
terminated. nginx cannot sleep per request (``echo_sleep`` is not in Debian's build), hence this
tiny asyncio server, run in its own process so that it does not share the client's core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ._common import TICKET_BODY, TOKEN_BODY


def _answer(body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


TOKEN_ANSWER = _answer(TOKEN_BODY)
TICKET_ANSWER = _answer(TICKET_BODY)


async def serve(delay: float) -> None:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                path = head.split(b" ", 2)[1].split(b"?", 1)[0]
                answer = TOKEN_ANSWER if path.endswith(b"token") else TICKET_ANSWER
                if answer is TICKET_ANSWER:
                    await asyncio.sleep(delay)
                writer.write(answer)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"listening on {port}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._latency_server")
    parser.add_argument("--delay", type=float, default=0.02)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.delay))


if __name__ == "__main__":
    main()
