"""Serving the sandbox on a real socket: :func:`served` (tests), :func:`serve` and the CLI.

``uvicorn`` (the ``sandbox`` extra) is imported only here, and only when serving. The server
uses uvicorn's h11 protocol with one addition: it hands the app a way to abort the connection
(the ``wxqr.abort`` scope extension), so the ``drop`` fault closes the socket without sending a
byte, and a real client sees a genuine connection error.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .._extras import MissingExtraError, require
from ._app import create_app
from ._faults import FaultKind
from ._http import ASGIApp, Receive, Scope, Send
from ._state import DEFAULT_APPID, DEFAULT_SECRET, SandboxState

__all__ = ["build_parser", "serve", "serve_main", "served"]


def _make_server(app: ASGIApp, *, log_level: str) -> Any:
    uvicorn = require("uvicorn", "sandbox", "serving the sandbox on a socket needs uvicorn")
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class _AbortableH11Protocol(H11Protocol):
        """uvicorn's h11 protocol, exposing ``transport.abort`` to the app for ``drop``."""

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            inner = self.app

            async def with_abort(scope: Scope, receive: Receive, send: Send) -> None:
                scope = dict(scope)
                scope["extensions"] = {**scope.get("extensions", {}), "wxqr.abort": transport.abort}
                await inner(scope, receive, send)

            self.app = with_abort

    config = uvicorn.Config(
        app,
        http=_AbortableH11Protocol,
        # Always ASGI 3: uvicorn's guess takes a bound ``async def`` method for ASGI 2.
        interface="asgi3",
        lifespan="auto",
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def served(
    state: SandboxState | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
    app: ASGIApp | None = None,
) -> Iterator[str]:
    """Serve the sandbox with uvicorn in a background thread; yield its base URL.

    Use the base URL as both ``api_base_url`` and ``mp_base_url``::

        with served(state) as base_url:
            httpx.get(f"{base_url}/cgi-bin/token", params={...})

    Args:
        state: the state to serve (a fresh :class:`SandboxState` when omitted).
        host: interface to bind (loopback by default).
        port: port to bind; 0 picks a free one.
        log_level: uvicorn's log level.
        startup_timeout: seconds to wait for the server to start.
        app: serve this ASGI app instead of ``create_app(state)`` — e.g. a wrapper that
            switches states between tests or adds endpoints of your own (``drop`` faults keep
            working for whatever it delegates to the sandbox).

    Raises:
        RuntimeError: the server did not start in time.
    """
    server = _make_server(app or create_app(state or SandboxState()), log_level=log_level)
    sock = _bind(host, port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="wxqr-sandbox", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("the wxqr sandbox server did not start")
        yield _base_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()


def serve(
    state: SandboxState | None = None,
    host: str = "127.0.0.1",
    port: int = 8900,
    *,
    log_level: str = "info",
    announce: bool = True,
    app: ASGIApp | None = None,
) -> None:
    """Serve the sandbox in the foreground until interrupted (Ctrl-C).

    Args:
        state: the state to serve (a fresh :class:`SandboxState` when omitted).
        host: interface to bind.
        port: port to bind; 0 picks a free one.
        log_level: uvicorn's log level.
        announce: print ``wxqr sandbox listening on <base URL>`` once the socket listens, and
            the appid/secret of every account it accepts (emulator credentials, not secrets).
        app: serve this ASGI app instead of ``create_app(state)`` (see :func:`served`).
    """
    state = state or SandboxState()
    server = _make_server(app or create_app(state), log_level=log_level)
    sock = _bind(host, port)
    if announce:
        print(f"wxqr sandbox listening on {_base_url(sock)}", flush=True)
        for account in list(state.accounts.values()):
            print(f"  accepts appid {account.appid} secret {account.secret}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def build_parser(prog: str = "wxqr sandbox") -> argparse.ArgumentParser:
    """The argument parser of ``wxqr sandbox`` / ``python -m wxqr.sandbox``."""
    kinds = ", ".join(kind.value for kind in FaultKind)
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the wxqr WeChat emulator (api.weixin.qq.com + mp.weixin.qq.com). "
        "It accepts the account given by --appid/--secret and prints both at start-up.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="port, 0 = any (default 8900)")
    parser.add_argument(
        "--appid", default=DEFAULT_APPID, help="the account's AppID (default %(default)s)"
    )
    parser.add_argument(
        "--secret", default=DEFAULT_SECRET, help="the account's AppSecret (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible runs")
    parser.add_argument(
        "--personal", action="store_true", help="personal-type account (jump rules: 85075)"
    )
    parser.add_argument(
        "--unreleased",
        action="store_true",
        help="Mini Program without a released version (publish: 85074)",
    )
    parser.add_argument(
        "--ip-whitelist",
        nargs="+",
        metavar="IP",
        default=None,
        help="only these client IPs may fetch tokens (others: 40164)",
    )
    parser.add_argument(
        "--frozen-secret", action="store_true", help="AppSecret frozen (token fetches: 40243)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ENDPOINT:KIND[:ARG][@TIMES|%PROB]",
        help=f"inject a fault, repeatable; KIND is one of: {kinds}. "
        "E.g. wxa/getwxacodeunlimit:errcode:45011@3, '*:latency:0.5%%0.1', cgi-bin/token:drop",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    push = parser.add_argument_group("scan pushes (POST /sandbox/scan triggers a scan)")
    push.add_argument("--push-url", metavar="URL", help="your server URL, where scans are pushed")
    push.add_argument("--push-token", metavar="T", help="the Token pushes are signed with")
    push.add_argument("--push-aes-key", metavar="K", help="the 43-char EncodingAESKey")
    push.add_argument(
        "--push-mode", choices=("plain", "compatible", "safe"), default=None,
        help="encryption mode (default: safe with --push-aes-key, else plain)",
    )  # fmt: skip
    push.add_argument(
        "--push-duplicate", type=int, default=0, metavar="N",
        help="fault: deliver every successful push N more times (test your de-duplication)",
    )  # fmt: skip
    return parser


def state_from_args(args: argparse.Namespace) -> SandboxState:
    """Build the :class:`SandboxState` the parsed CLI arguments describe."""
    state = SandboxState(seed=args.seed, default_account=False)
    state.add_account(
        args.appid,
        args.secret,
        personal=args.personal,
        released=not args.unreleased,
        ip_whitelist=args.ip_whitelist,
        secret_frozen=args.frozen_secret,
    )
    for spec in args.fault:
        state.faults.add_spec(spec)
    if args.push_url is not None or args.push_token is not None:
        if not args.push_url or not args.push_token:
            raise ValueError("--push-url and --push-token go together")
        mode = args.push_mode or ("safe" if args.push_aes_key else "plain")
        state.configure_push(
            args.push_url, token=args.push_token, encoding_aes_key=args.push_aes_key,
            mode=mode, appid=args.appid, duplicate=args.push_duplicate,
        )  # fmt: skip
    return state


def serve_main(argv: Sequence[str] | None = None) -> int:
    """Run ``wxqr sandbox [options]``; return the process exit status.

    Args:
        argv: the arguments after ``sandbox`` (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    try:
        state = state_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve(state, args.host, args.port, log_level=args.log_level)
    except MissingExtraError as exc:
        print(f"wxqr sandbox: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(
            f"wxqr sandbox: error: cannot listen on {args.host}:{args.port}: {exc.strerror} "
            "(choose another --port, or --port 0 for any free one)",
            file=sys.stderr,
        )
        return 1
    return 0
