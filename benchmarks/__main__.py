"""``python -m benchmarks``: run the sections and print one markdown report.

Sections: ``throughput`` (loopback, nginx or the sandbox), ``overhead`` (CPU per call on
MockTransport), ``tokens`` (token fetches seen by the server), ``scaling`` (time and RSS vs N),
``tls`` (HTTPS through nginx, handshakes counted) and ``latency`` (a server 20 ms away).
``--profile`` adds a cProfile listing of the wxqr-side functions of one call path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import platform
import pstats
import sys
import time

SECTIONS = ("throughput", "overhead", "tokens", "scaling", "tls", "latency")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run (< 20 s)")
    parser.add_argument("-n", "--calls", type=int, help="calls per throughput run (5000)")
    parser.add_argument("-c", "--concurrency", type=int, default=100, help="in flight (100)")
    parser.add_argument("--token-calls", type=int, help="calls through one client (10000)")
    parser.add_argument("--procs", type=int, default=4, help="token-economy processes (4)")
    parser.add_argument("--proc-calls", type=int, help="calls per token process (1000)")
    parser.add_argument("--sizes", help="scaling sizes, comma-separated (1000,10000,50000)")
    parser.add_argument("--overhead-calls", type=int, help="sequential calls per round (5000)")
    parser.add_argument("--tls-calls", type=int, help="calls per TLS run (5000)")
    parser.add_argument("--latency-calls", type=int, help="calls per latency run (2000)")
    parser.add_argument(
        "--server", choices=("auto", "nginx", "sandbox"), default="auto", help="loopback server"
    )
    parser.add_argument("--no-wechatpy", action="store_true", help="skip the wechatpy rows")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile N MockTransport calls"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.calls = args.calls or (200 if quick else 5000)
    args.warmup = min(200, max(args.calls // 10, 20))
    args.token_calls = args.token_calls or (500 if quick else 10000)
    args.proc_calls = args.proc_calls or (50 if quick else 1000)
    if quick and args.procs == 4:
        args.procs = 2
    args.sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([200, 1000] if quick else [1000, 10000, 50000])
    )
    args.overhead_calls = args.overhead_calls or (200 if quick else 5000)
    args.tls_calls = args.tls_calls or (300 if quick else 5000)
    args.latency_calls = args.latency_calls or (300 if quick else 2000)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    args.chosen = chosen
    return args


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("wxqr", "httpx", "aiohttp", "orjson", "wechatpy"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _profile(n: int, concurrency: int) -> str:
    from ._common import APPID, EXPIRE, SECRET, gather_bounded, mock_handler
    from ._servers import png_bytes

    async def work() -> None:
        import httpx

        import wxqr

        base = "http://wechat.test"
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(mock_handler(png_bytes()))) as http,
            wxqr.Client(
                APPID, SECRET, api_base_url=base, mp_base_url=base, http_client=http, rate_limits={}
            ) as client,
        ):
            await client.access_token()
            profiler = cProfile.Profile()
            profiler.enable()
            await gather_bounded(
                n,
                concurrency,
                lambda i: client.qrcode.create_temporary(scene_id=i + 1, expire_seconds=EXPIRE),
            )
            profiler.disable()
            stats.append(profiler)

    stats: list[cProfile.Profile] = []
    asyncio.run(work())
    buf = io.StringIO()
    ps = pstats.Stats(stats[0], stream=buf).sort_stats("tottime")
    ps.print_stats(r"wxqr/", 20)
    buf.write("\n--- all functions, by own time ---\n")
    ps.print_stats(20)
    return "```\n" + buf.getvalue().strip() + "\n```"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    out = sys.stdout
    out.write("## wxqr benchmarks\n\n")
    out.write(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {_versions()}.\n"
        "Every ratio compares figures measured in this same run; event loop: asyncio's own "
        "(wxqr never installs one; uvloop measured no gain in CPU per call here).\n"
        f"Load average at start: {_load()} (other work on the machine skews throughput rows).\n"
    )
    out.flush()
    server = None
    with contextlib.ExitStack() as stack:
        with_wechatpy = False
        if "throughput" in args.chosen or "tokens" in args.chosen:
            from ._servers import wechat_server
            from .throughput import wechatpy_available

            with_wechatpy = not args.no_wechatpy and wechatpy_available()
            server = stack.enter_context(wechat_server(args.server))
            out.write(f"Loopback server: **{server.kind}** ({server.description}).\n")
            if not with_wechatpy:
                out.write("wechatpy rows skipped (not installed, or --no-wechatpy).\n")
        if "throughput" in args.chosen:
            from . import throughput

            assert server is not None
            out.write(
                f"\n### 1. Loopback throughput: {args.calls:,} gathered calls, "
                f"{args.concurrency} in flight\n\n"
                "wxqr's client-side rate limit is switched off (`rate_limits={}`): its "
                "5,000/min for getwxacodeunlimit would otherwise be all this measures. "
                "Latency is timed per call inside a caller semaphore of the same size "
                "(queueing excluded); the bare-gather row has none.\n\n"
            )
            out.flush()
            section = throughput.section(
                server, args.calls, args.concurrency, args.warmup, with_wechatpy
            )
            out.write(section + "\n")
            out.flush()
        if "overhead" in args.chosen:
            from . import overhead

            out.write(
                f"\n### 2. CPU per call over the raw client, httpx.MockTransport, "
                f"{args.overhead_calls:,} sequential calls, best of 3\n\n"
            )
            out.flush()
            out.write(overhead.section(args.overhead_calls) + "\n")
            out.flush()
        if "tokens" in args.chosen:
            from . import tokens

            assert server is not None
            out.write("\n### 3. Token economy: token requests the server answered\n\n")
            out.flush()
            section = tokens.section(
                server,
                args.token_calls,
                args.procs,
                args.proc_calls,
                with_wechatpy,
                start_delay=0.8 if args.quick else 1.5,
            )
            out.write(section + "\n")
            out.flush()
    if "scaling" in args.chosen:
        from . import scaling

        out.write(
            f"\n### 4. Scaling: one gather of N calls, max_concurrency={args.concurrency}, "
            "fresh process per row\n\n"
        )
        out.flush()
        out.write(scaling.section(args.sizes, args.concurrency) + "\n")
    if "tls" in args.chosen:
        from . import production
        from .throughput import wechatpy_available

        out.write(
            f"\n### 5. TLS: {args.tls_calls:,} gathered create_temporary calls over HTTPS, "
            f"{args.concurrency} in flight (nginx, self-signed certificate made for this run)\n\n"
        )
        out.flush()
        try:
            tls_wechatpy = not args.no_wechatpy and wechatpy_available()
            out.write(production.tls_section(args.tls_calls, args.concurrency, tls_wechatpy) + "\n")
        except FileNotFoundError as exc:
            out.write(f"skipped: {exc} not found\n")
        out.flush()
    if "latency" in args.chosen:
        from . import production

        out.write(
            f"\n### 6. Latency: a server 20 ms away, {args.latency_calls:,} gathered "
            "create_temporary calls\n\n"
        )
        out.flush()
        out.write(production.latency_section(args.latency_calls, [100, 500]) + "\n")
        out.flush()
    if args.profile:
        out.write(f"\n### Profile: {args.profile:,} create_temporary calls on MockTransport\n\n")
        out.write(_profile(args.profile, args.concurrency) + "\n")
    out.write(
        f"\n_Run took {time.perf_counter() - started:.0f} s; load average at end: {_load()}._\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
