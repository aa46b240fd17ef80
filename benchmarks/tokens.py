"""Section 3: token economy -- how many token fetches the server sees for the same work."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import wxqr

from ._common import EXPIRE, table
from ._servers import Server, redis_server
from .throughput import run_threads, wechatpy_call, wechatpy_client

ROOT = Path(__file__).resolve().parent.parent


async def _one_client(server: Server, calls: int) -> int:
    async with wxqr.Client(
        server.appid,
        server.secret,
        api_base_url=server.base_url,
        mp_base_url=server.base_url,
        rate_limits={},
    ) as client:
        await asyncio.gather(
            *(
                client.qrcode.create_temporary(scene_id=i + 1, expire_seconds=EXPIRE)
                for i in range(calls)
            )
        )
    return calls


def _counted(server: Server, work: object) -> int:
    """Token fetches the server answered while ``work()`` ran."""
    before = server.token_fetches()
    work()  # type: ignore[operator]
    time.sleep(0.05)  # let the server write its log line
    return server.token_fetches() - before


def _processes(
    server: Server, mode: str, procs: int, calls: int, redis_url: str, start_delay: float = 1.5
) -> int:
    start_at = time.time() + start_delay  # every process past its imports before the first call
    argv = [sys.executable, "-m", "benchmarks._worker", "tokens", "--mode", mode]
    argv += ["--base", server.base_url, "--appid", server.appid, "--secret", server.secret]
    argv += ["--calls", str(calls), "--start-at", str(start_at)]
    argv += ["--redis", redis_url, "--prefix", f"wxqr-bench-{time.time_ns()}"]
    before = server.token_fetches()
    children = [
        subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(procs)
    ]
    for child in children:
        out, err = child.communicate(timeout=300)
        if child.returncode != 0:
            raise RuntimeError(f"token worker ({mode}) failed: {err.strip()[-500:]}")
        result = json.loads(out.strip().splitlines()[-1])
        if result["errors"]:
            raise RuntimeError(f"token worker ({mode}): {result['errors']} errors")
    time.sleep(0.05)
    return server.token_fetches() - before


def _redis_importable() -> str | None:
    try:
        from wxqr.caches import RedisTokenCache  # noqa: F401
    except Exception as exc:  # ImportError, or a module still being written
        return f"wxqr.caches.RedisTokenCache not importable ({exc.__class__.__name__})"
    return None


def section(
    server: Server,
    calls: int,
    procs: int,
    per_proc: int,
    with_wechatpy: bool,
    start_delay: float = 1.5,
) -> str:
    rows: list[list[str]] = []
    notes: list[str] = []
    wxqr_one = _counted(server, lambda: asyncio.run(_one_client(server, calls)))
    line = f"{calls:,} gathered calls, one client, cold start"
    if with_wechatpy:

        def wechatpy_work() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                client = wechatpy_client(server, 100)
                run_threads(wechatpy_call(client, "/cgi-bin/qrcode/create"), calls, 100)

        wp_one = _counted(server, wechatpy_work)
        rows.append(
            [line, str(wxqr_one), f"{wp_one} (ThreadPoolExecutor(100))", _r(wp_one, wxqr_one)]
        )
    else:
        rows.append([line, str(wxqr_one), "skipped", "n/a"])

    line = f"{procs} processes × {per_proc:,} calls"
    skip = _redis_importable()
    if skip is None:
        try:
            with redis_server() as url:
                redis_fetches = _processes(server, "wxqr-redis", procs, per_proc, url, start_delay)
        except FileNotFoundError:
            skip = "redis-server not on PATH"
    memory_fetches = _processes(server, "wxqr-memory", procs, per_proc, "", start_delay)
    wp_procs = (
        _processes(server, "wechatpy", procs, per_proc, "", start_delay) if with_wechatpy else None
    )
    wp_cell = "skipped" if wp_procs is None else f"{wp_procs} (memory storage each)"
    if skip is None:
        rows.append(
            [line + ", one Redis", str(redis_fetches), wp_cell, _r(wp_procs, redis_fetches)]
        )
    else:
        notes.append(f"Redis row skipped: {skip}.")
    rows.append(
        [
            line + ", MemoryTokenCache each",
            str(memory_fetches),
            wp_cell,
            _r(wp_procs, memory_fetches),
        ]
    )
    out = table(
        ["work (qrcode.create_temporary)", "wxqr token fetches", "wechatpy token fetches", "ratio"],
        rows,
    )
    return out + "".join(f"\n\n{note}" for note in notes)


def _r(theirs: int | None, ours: int) -> str:
    if theirs is None:
        return "n/a"
    return f"{theirs / ours:.0f}× more fetches" if ours else "n/a"
