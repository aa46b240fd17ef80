"""Servers the benchmarks talk to: a static nginx (preferred), the wxqr sandbox, redis-server.

Everything listens on 127.0.0.1 only and is stopped by the context manager that started it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent

#: The token nginx hands out (canned; nginx checks nothing).
NGINX_TOKEN = "BENCH_TOKEN_0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(500):  # 5 s
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return
        time.sleep(0.01)
    raise RuntimeError(f"{what} did not start listening on port {port}")


def png_bytes() -> bytes:
    """A small real PNG (a QR code) to stand in for a wxacode image."""
    import segno

    buf = io.BytesIO()
    segno.make("https://example.com/benchmark?scene=a%3D1", error="m").save(
        buf, kind="png", scale=4
    )
    return buf.getvalue()


@attrs.define
class Server:
    """A running WeChat stand-in.

    Attributes:
        kind: ``"nginx"`` or ``"sandbox"``.
        base_url: scheme, host and port, used as both api and mp base URL.
        appid, secret: credentials the server accepts.
        token_fetches: returns how many token requests the server has answered so far.
    """

    kind: str
    base_url: str
    appid: str
    secret: str
    token_fetches: Callable[[], int]
    description: str


@contextlib.contextmanager
def nginx_server() -> Iterator[Server]:
    """Start nginx (one worker: the other core is the client's) from ``nginx.conf``."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if binary is None:
        raise FileNotFoundError("nginx")
    root = Path(tempfile.mkdtemp(prefix="wxqr-bench-nginx-"))
    try:
        root.chmod(0o755)  # the worker may run as "nobody"
        (root / "www").mkdir(mode=0o755)
        (root / "www" / "code.png").write_bytes(png_bytes())
        (root / "www" / "code.png").chmod(0o644)
        port = free_port()
        conf = (HERE / "nginx.conf").read_text()
        conf = conf.replace("@PORT@", str(port)).replace("@ROOT@", str(root))
        (root / "nginx.conf").write_text(conf)
        (root / "token.log").touch()
        (root / "token.log").chmod(0o666)
        proc = subprocess.Popen(
            [
                binary,
                "-p",
                str(root),
                "-c",
                str(root / "nginx.conf"),
                "-e",
                str(root / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_port(port, proc, "nginx")
            version = subprocess.run(
                [binary, "-v"], capture_output=True, text=True, check=False
            ).stderr.strip()
            log = root / "token.log"

            def token_fetches() -> int:
                # nginx writes access-log lines unbuffered (no `buffer=` set).
                with log.open("rb") as fh:
                    return sum(1 for _ in fh)

            yield Server(
                kind="nginx",
                base_url=f"http://127.0.0.1:{port}",
                appid="wxbench0000000001",
                secret="bench-secret",
                token_fetches=token_fetches,
                description=f"{version.split(': ')[-1]}, 1 worker, canned answers",
            )
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _sandbox_api() -> tuple[Any, Any, str, str]:
    from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, served

    return SandboxState, served, DEFAULT_APPID, DEFAULT_SECRET


@contextlib.contextmanager
def sandbox_server() -> Iterator[Server]:
    """The wxqr sandbox on uvicorn in a thread of this process (slower than nginx)."""
    sandbox_state, served, appid, secret = _sandbox_api()
    state = sandbox_state(seed=1)
    account = state.account(appid)
    # The benchmark sends far more than WeChat's 5,000 getwxacodeunlimit calls a minute.
    with contextlib.suppress(AttributeError):
        account.unlimited_per_minute = 10**9
    with served(state) as base_url:
        yield Server(
            kind="sandbox",
            base_url=base_url,
            appid=appid,
            secret=secret,
            token_fetches=lambda: sum(state.token_fetches.values()),
            description="wxqr.sandbox on uvicorn (in-process thread)",
        )


@contextlib.contextmanager
def wechat_server(kind: str = "auto") -> Iterator[Server]:
    """nginx when available (``kind="auto"``), else the sandbox."""
    if kind in ("auto", "nginx"):
        try:
            with nginx_server() as server:
                yield server
                return
        except FileNotFoundError:
            if kind == "nginx":
                raise
    with sandbox_server() as server:
        yield server


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away ``redis-server`` on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wxqr-bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def fetch_token(server: Server) -> str:
    """One stable_token fetch (for the raw-client baselines)."""
    import httpx

    response = httpx.post(
        f"{server.base_url}/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": server.appid, "secret": server.secret},
    )
    token: str = json.loads(response.content)["access_token"]
    return token
