"""Sections 5 and 6: what production looks like — TLS, and a WeChat 20 ms away.

* **TLS**: nginx on loopback over HTTPS with a self-signed certificate made at benchmark time
  (``openssl``); each client runs in a fresh process that trusts it (``SSL_CERT_FILE``,
  ``REQUESTS_CA_BUNDLE``). nginx logs every API request with its connection number and
  ``$ssl_session_reused``: distinct connections are the TLS handshakes each client paid.
* **Latency**: ``_latency_server.py`` adds 20 ms to every answer; 2,000 gathered calls at
  ``max_concurrency`` 100 and 500, against the ideal ``concurrency / latency``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import EXPIRE, create_body, gather_bounded, ms, ratio, table, us
from ._servers import HERE, _stop, _wait_for_port, free_port

DELAY = 0.02


def _certificate(root: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


@contextlib.contextmanager
def tls_nginx() -> Iterator[tuple[str, Path, Path]]:
    """nginx over HTTPS; yields (base URL, certificate path, connection log path)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK) or shutil.which("openssl") is None:
        raise FileNotFoundError("nginx and openssl")
    root = Path(tempfile.mkdtemp(prefix="wxqr-bench-tls-"))
    try:
        root.chmod(0o755)
        (root / "www").mkdir(mode=0o755)
        _certificate(root)
        port = free_port()
        conf = (HERE / "nginx_tls.conf").read_text()
        conf = conf.replace("@PORT@", str(port)).replace("@ROOT@", str(root))
        (root / "nginx.conf").write_text(conf)
        (root / "conn.log").touch()
        (root / "conn.log").chmod(0o666)
        proc = subprocess.Popen(
            [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "e.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_port(port, proc, "nginx (TLS)")
            yield f"https://127.0.0.1:{port}", root / "cert.pem", root / "conn.log"
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _log_lines(log: Path) -> list[str]:
    with log.open() as fh:
        return fh.read().splitlines()


def _tls_run(kind: str, base: str, cert: Path, n: int, c: int) -> dict[str, Any]:
    env = dict(os.environ, SSL_CERT_FILE=str(cert), REQUESTS_CA_BUNDLE=str(cert))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._worker", "tls", "--kind", kind, "--base", base,
         "--n", str(n), "--concurrency", str(c)],
        capture_output=True, text=True, check=True, env=env, timeout=600,
        cwd=HERE.parent,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def tls_section(n: int, c: int, with_wechatpy: bool) -> str:
    kinds = [("wxqr", "wxqr default (aiohttp wire)"), ("aiohttp", "raw aiohttp ClientSession")]
    if with_wechatpy:
        kinds.append(("wechatpy", f"wechatpy 1.8.18, ThreadPoolExecutor({c})"))
    rows, results = [], {}
    with tls_nginx() as (base, cert, log):
        for kind, label in kinds:
            seen = len(_log_lines(log))
            result = results[kind] = _tls_run(kind, base, cert, n, c)
            lines = _log_lines(log)[seen:]
            connections: dict[str, str] = {}
            for line in lines:
                number, reused = line.split()
                connections.setdefault(number, reused)  # first request: how it shook hands
            resumed = sum(1 for r in connections.values() if r == "r")
            rows.append(
                [
                    label,
                    f"{result['n'] / result['wall']:,.0f}",
                    us(result["cpu"] / result["n"]),
                    ms(result["p50"]),
                    ms(result["p99"]),
                    f"{len(lines):,}",
                    f"{len(connections)} ({resumed} resumed)",
                ]
            )
    raw = results["aiohttp"]
    w = results["wxqr"]
    summary = table(
        ["ratio (same run)", "value"],
        [
            ["wxqr / raw aiohttp (req/s)", ratio(w["n"] / w["wall"], raw["n"] / raw["wall"])],
            ["wxqr / raw aiohttp (CPU per call)", ratio(w["cpu"], raw["cpu"])],
            *(
                [
                    [
                        "wxqr / wechatpy (req/s)",
                        ratio(w["wall"] ** -1, results["wechatpy"]["wall"] ** -1),
                    ]
                ]
                if "wechatpy" in results
                else []
            ),
        ],
    )
    body = table(
        ["client", "req/s", "CPU µs/call", "p50 ms", "p99 ms", "requests at nginx",
         "TLS handshakes (connections)"],
        rows,
    )  # fmt: skip
    return body + "\n\n" + summary


@contextlib.contextmanager
def latency_server(delay: float) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._latency_server", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"latency server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[-1])}"
    finally:
        proc.terminate()
        proc.wait(10)


async def _latency_wxqr(base: str, n: int, c: int) -> Any:
    import wxqr

    async with wxqr.Client(
        "wxbench0000000001", "bench-secret", api_base_url=base, mp_base_url=base,
        rate_limits={}, max_concurrency=c,
    ) as client:  # fmt: skip

        def call(i: int) -> Any:
            return client.qrcode.create_temporary(scene_id=i + 1, expire_seconds=EXPIRE)

        await gather_bounded(min(n, 500), c, call)
        return await gather_bounded(n, c, call)


async def _latency_raw(base: str, n: int, c: int) -> Any:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:
        async with session.post(f"{base}/cgi-bin/stable_token", json={}) as response:
            token = json.loads(await response.read())["access_token"]
        url = f"{base}/cgi-bin/qrcode/create"

        async def call(i: int) -> Any:
            params = {"access_token": token}
            async with session.post(url, params=params, json=create_body(i)) as response:
                response.raise_for_status()
                return json.loads(await response.read())

        await gather_bounded(min(n, 500), c, call)
        return await gather_bounded(n, c, call)


def latency_section(n: int, concurrencies: list[int]) -> str:
    rows = []
    with latency_server(DELAY) as base:
        for c in concurrencies:
            ideal = c / DELAY
            for label, runner in (
                ("wxqr default (aiohttp wire)", _latency_wxqr),
                ("raw aiohttp ClientSession", _latency_raw),
            ):
                run = asyncio.run(runner(base, n, c))
                rows.append(
                    [
                        str(c),
                        label,
                        f"{run.rate:,.0f}",
                        f"{ideal:,.0f}",
                        ratio(run.rate, ideal),
                        us(run.cpu_per_call),
                        ms(run.pct(0.50)),
                        ms(run.pct(0.99)),
                    ]
                )
    return table(
        ["max_concurrency", "client", "req/s", "ideal c / 20 ms", "vs ideal", "CPU µs/call",
         "p50 ms", "p99 ms"],
        rows,
    )  # fmt: skip
