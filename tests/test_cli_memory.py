"""Memory per scene of a big batch: 100,000 scenes through the command's batch machinery.

A subprocess runs :func:`wxqr._batch.run_job` on 100,000 scenes read from a file, with a job
that answers at once with a ticket and URL as long as WeChat's (no HTTP: the client's memory is
bounded by ``--concurrency`` whatever the number of scenes, so only what grows with N is
measured), then again with ``--resume`` over a manifest whose 100,000 rows are ``ok`` with their
(empty) files present. Peak RSS is compared with the RSS before the scenes were read.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest

from wxqr._batch import file_stem

SMALL, BIG = 1_000, 12_000

MEASURE = textwrap.dedent(
    """
    import contextlib, json, resource, sys
    from pathlib import Path
    from wxqr._batch import Result, read_items, run_job

    def rss_mib():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    class InstantJob:
        command, key, columns = "qrcode", "scene", ("ticket", "url")
        options = {"kind": "temporary"}

        async def run(self, client, item):
            ticket = "gQ" + item.rjust(94, "A")  # as long as WeChat's tickets and URLs
            return Result(None, (ticket, "http://weixin.qq.com/q/" + item))

    @contextlib.asynccontextmanager
    async def no_client():
        yield None

    out, source, resume = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "resume"
    before = rss_mib()
    items = read_items(source)
    status = run_job(InstantJob(), items, out, no_client, account={"appid": "wx"},
                     resume=resume, concurrency=16)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"status": status, "before": before, "peak": peak}))
    """
)


def measure(tmp_path, scenes: int) -> dict[str, float]:
    """Peak RSS growth in MiB of a run and of a --resume over ``scenes`` scenes."""
    source = tmp_path / f"scenes-{scenes}.txt"
    source.write_text("".join(f"order-{i:07d}\n" for i in range(scenes)))
    out = tmp_path / f"out-{scenes}"
    growth = {}
    for mode in ("run", "resume"):
        if mode == "resume":  # every row ok, its file present (empty: disk is not measured)
            with (out / "manifest.csv").open(newline="") as fh:
                rows = list(csv.reader(fh))
            for row in rows[1:]:
                row[1], row[2] = "ok", file_stem(row[0]) + ".png"
                (out / row[2]).touch()
            with (out / "manifest.csv").open("w", newline="") as fh:
                csv.writer(fh, lineterminator="\n").writerows(rows)
        result = subprocess.run(
            [sys.executable, "-c", MEASURE, str(out), str(source), mode],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        figure = json.loads(result.stdout)
        assert figure["status"] == 0, result.stderr
        kept = f"ok {scenes} ({scenes} kept)" if mode == "resume" else f"ok {scenes} / failed 0"
        assert kept in result.stderr
        growth[mode] = figure["peak"] - figure["before"]
    return growth


@pytest.mark.slow
def test_memory_per_scene_stays_small(tmp_path):
    small, big = measure(tmp_path, SMALL), measure(tmp_path, BIG)
    for mode in ("run", "resume"):
        per_scene = (big[mode] - small[mode]) * 1024 * 1024 / (BIG - SMALL)
        print(f"{mode}: {big[mode]:.1f} MiB for {BIG} scenes, {per_scene:.0f} B per more scene")
        # The issue measured 176 MiB (371 MiB on --resume) for 100,000 scenes: 1.8 / 3.8 KiB.
        assert per_scene < 1024, (mode, small, big)
