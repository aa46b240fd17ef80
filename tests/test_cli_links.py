"""``wxqr links``, driven as a user drives it: ``python -m wxqr links ...`` in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wxqr.cli import main
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, served

FIELDS = ["query", "status", "link", "expire_time", "error"]
URL_LINK = re.compile(r"https://wxaurl\.cn/[0-9A-Za-z]{11}")
SCHEME = re.compile(r"weixin://dl/business/\?t=[0-9A-Za-z]{11}")
SHORT_LINK = re.compile(r"#小程序://[^/]+/[^/]+/[0-9A-Za-z]{15}")
DAY = 86400
CREDENTIALS = {"WXQR_APPID": DEFAULT_APPID, "WXQR_SECRET": DEFAULT_SECRET}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 90):
    base = {k: v for k, v in os.environ.items() if not k.startswith("WXQR_")}
    return subprocess.run(
        [sys.executable, "-m", "wxqr", "links", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=timeout,
    )


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == FIELDS
        return list(reader)


def test_50_url_links_from_a_file_in_the_sandbox(tmp_path):
    queries = [f"id={i}&src=sms" for i in range(50)]
    source = tmp_path / "queries.txt"
    source.write_text("\n".join(queries[:25]) + "\n\n" + "\n".join(queries[25:]) + "\n")
    out = tmp_path / "out"
    before = int(time.time())
    result = run(
        "--sandbox", "--kind", "urllink", "--path", "pages/index/index",
        "--expires-in-days", "7", "--from", str(source), "--out", str(out),
    )  # fmt: skip
    after = int(time.time())
    assert result.returncode == 0, result.stderr
    rows = manifest(out)
    assert [r["query"] for r in rows] == queries  # one row per input, in input order
    assert {r["status"] for r in rows} == {"ok"}
    assert all(URL_LINK.fullmatch(r["link"]) for r in rows)
    assert len({r["link"] for r in rows}) == 50
    assert all(before + 7 * DAY <= int(r["expire_time"]) <= after + 7 * DAY for r in rows)
    assert {r["error"] for r in rows} == {""}
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "manifest.json"]  # no files
    job = json.loads((out / "manifest.json").read_text())
    assert job["command"] == "links"
    assert job["options"]["kind"] == "urllink"
    assert job["options"]["expires_in_days"] == "7"
    assert "ok 50 / failed 0" in result.stderr


def test_against_a_served_sandbox_the_links_are_real_and_100_per_second_is_kept(tmp_path):
    state = SandboxState(seed=3)
    state.default_account.links_per_second = 5  # the emulated WeChat's per-second cap
    out = tmp_path / "out"
    queries = [f"n={i}" for i in range(12)]
    with served(state) as base_url:
        started = time.monotonic()
        result = run(
            "--kind", "scheme", "--path", "pages/detail/detail", *queries,
            "--api-base-url", base_url, "--rate-limit", "wxalink=5/1", "--concurrency", "8",
            "--out", str(out), env=CREDENTIALS,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    rows = manifest(out)
    assert [r["query"] for r in rows] == queries
    for row in rows:
        assert SCHEME.fullmatch(row["link"])
        stored = state.links[row["link"]]  # WeChat (emulated) really issued it, for that query
        assert (stored.kind, stored.path, stored.query) == (
            "scheme",
            "pages/detail/detail",
            row["query"],
        )
        assert abs(int(row["expire_time"]) - stored.expires_at) <= 5  # default: 30 days
    answered = [r.errcode for r in state.requests_to("wxa/generatescheme")]
    # The client sends at most 5 in any second; arrival jitter (the first calls also wait for
    # the token) can still put a 6th into one of the server's calendar seconds, and that 44990
    # is waited out and retried. Unlimited, 8 workers would hit it on most of the 12 calls.
    assert answered.count(None) == 12
    assert answered.count(44990) <= 3
    assert elapsed >= 2.0  # 12 calls at 5 a second need at least two full seconds
    assert DEFAULT_SECRET not in result.stderr + result.stdout


def test_failures_are_rows_and_resume_redoes_only_them(tmp_path):
    out = tmp_path / "out"
    args = ["--sandbox", "--kind", "scheme", "--out", str(out)]
    first = run(*args, "a=1", "bad query", "b=你", "a=1", "c=3")
    assert first.returncode == 1
    rows = manifest(out)
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "ok", "ok"]
    assert rows[0]["link"] == rows[3]["link"]  # a query given twice is generated once
    assert "ValidationError: query" in rows[1]["error"]
    assert rows[1]["link"] == rows[1]["expire_time"] == ""
    assert "failed 'bad query'" in first.stderr
    again = run(*args, "a=1", "c=3", "d=4")
    assert again.returncode == 0, again.stderr
    before = manifest(out)
    assert [r["query"] for r in before] == ["a=1", "c=3", "d=4"]
    resumed = run(*args, "a=1", "c=3", "d=4", "e=5", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    after = manifest(out)
    assert after[:3] == before  # kept as they were, links and expiry included
    assert after[3]["status"] == "ok"
    assert "(3 kept)" in resumed.stderr
    other = run("--sandbox", "--kind", "urllink", "--out", str(out), "a=1", "--resume")
    assert other.returncode == 2
    assert "different job" in other.stderr


def test_short_links_with_title_and_permanent(tmp_path):
    out = tmp_path / "out"
    result = run(
        "--sandbox", "--kind", "shortlink", "--path", "pages/index/index", "--title",
        "Spring sale", "--permanent", "id=7", "id=8", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = manifest(out)
    assert all(SHORT_LINK.fullmatch(r["link"]) and "/Spring sale/" in r["link"] for r in rows)
    assert [r["expire_time"] for r in rows] == ["0", "0"]  # permanent


def test_a_quota_every_query_would_hit_stops_the_run(tmp_path):
    # The sandbox's 500,000 generations a day, made to run out: 44993 stops the run (exit 3).
    state = SandboxState(seed=4)
    state.default_account.links_daily_limit = 3
    out = tmp_path / "out"
    with served(state) as base_url:
        result = run(
            "--kind", "urllink", *[f"q={i}" for i in range(8)], "--concurrency", "1",
            "--api-base-url", base_url, "--out", str(out), env=CREDENTIALS,
        )  # fmt: skip
    assert result.returncode == 3, result.stderr
    statuses = [r["status"] for r in manifest(out)]
    assert statuses[:3] == ["ok"] * 3
    assert statuses[3] == "failed"
    assert set(statuses[4:]) == {"skipped"}
    assert "44993" in result.stderr
    assert "--resume" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["a=1"], id="no-kind"),
        pytest.param(["--kind", "qr", "a=1"], id="bad-kind"),
        pytest.param(["--kind", "scheme"], id="no-queries"),
        pytest.param(["--kind", "scheme", "--expires-in-days", "31", "a=1"], id="days-31"),
        pytest.param(["--kind", "urllink", "--expires-in-days", "0", "a=1"], id="days-0"),
        pytest.param(["--kind", "urllink", "--path", "pages/a?x=1", "a=1"], id="path-query"),
        pytest.param(["--kind", "scheme", "--title", "t", "a=1"], id="title-not-shortlink"),
        pytest.param(["--kind", "urllink", "--permanent", "a=1"], id="permanent-not-shortlink"),
        pytest.param(["--kind", "shortlink", "a=1"], id="shortlink-without-path"),
        pytest.param(
            ["--kind", "shortlink", "--path", "pages/a", "--expires-in-days", "3", "a=1"],
            id="shortlink-days",
        ),
        pytest.param(["--kind", "scheme", "--env-version", "beta", "a=1"], id="bad-env"),
    ],
)
def test_usage_errors_exit_2_before_any_request(tmp_path, capsys, args):
    # In-process (the same main() the subprocess runs): eleven interpreter start-ups saved.
    status = main(["links", "--sandbox", *args, "--out", str(tmp_path / "out")])
    assert status == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_help_and_errors_speak_of_queries_not_scenes(tmp_path, capsys):
    assert main(["links", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "[QUERY ...]" in shown
    assert "SCENE" not in shown
    flat = " ".join(shown.split())
    assert "a CSV with a 'query' column" in flat
    assert "0 every query ok; 1 some queries failed" in flat

    assert main(["links", "--sandbox", "--kind", "scheme", "--out", str(tmp_path)]) == 2
    assert "no queries: give QUERY arguments or --from FILE" in capsys.readouterr().err


def test_the_code_commands_keep_speaking_of_scenes(capsys):
    assert main(["wxacode", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "[SCENE ...]" in shown
    assert "QUERY" not in shown
