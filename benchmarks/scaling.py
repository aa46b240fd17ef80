"""Section 4: wall time and peak RSS against N, one fresh subprocess per size.

Each call spends 1 ms "on the wire" in an async ``MockTransport`` handler, so
``max_concurrency`` calls really are in flight. The control row gathers the same number of bare
coroutines (a semaphore and a 1 ms sleep each): what ``asyncio.gather`` itself costs in memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._common import table

ROOT = Path(__file__).resolve().parent.parent


def _probe(n: int, kind: str, concurrency: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks._worker", "scale", "--n", str(n), "--kind", kind]
    argv += ["--concurrency", str(concurrency)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scale probe failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def section(sizes: list[int], concurrency: int) -> str:
    rows: list[list[str]] = []
    first: dict[str, dict[str, Any]] = {}
    growth: dict[int, dict[str, float]] = {}
    for n in sizes:
        for kind in ("wxqr", "bare"):
            r = _probe(n, kind, concurrency)
            grown = max(r["rss_peak_kib"] - r["rss_before_kib"], 0)
            growth.setdefault(n, {})[kind] = grown
            base = first.setdefault(kind, r)
            per_call = r["wall"] / r["n"]
            base_per_call = base["wall"] / base["n"]
            rows.append(
                [
                    f"{n:,}",
                    "wxqr create_temporary" if kind == "wxqr" else "control: bare gather",
                    f"{per_call / base_per_call:.2f}×",
                    f"{r['rss_peak_kib'] / base['rss_peak_kib']:.2f}×",
                    f"{grown / 1024:.1f}",
                    f"{grown / n:.2f}",
                    str(r["max_in_flight"]) if kind == "wxqr" else "-",
                ]
            )
    out = table(
        [
            "N",
            "work",
            f"time per call vs N={sizes[0]:,}",
            f"peak RSS during gather vs N={sizes[0]:,}",
            "RSS growth MiB",
            "KiB per gathered call",
            "max in flight",
        ],
        rows,
    )
    lo, hi = sizes[0], sizes[-1]
    extra_lo = growth[lo]["wxqr"] - growth[lo]["bare"]
    extra_hi = growth[hi]["wxqr"] - growth[hi]["bare"]
    out += (
        f"\n\nRSS growth beyond the bare gather: {extra_lo / 1024:.1f} MiB at N={lo:,}, "
        f"{extra_hi / 1024:.1f} MiB at N={hi:,} (N grew {hi / lo:.0f}×)."
    )
    return out
