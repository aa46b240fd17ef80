"""The ``wxqr`` command, driven as a user drives it: ``python -m wxqr ...`` in a subprocess."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wxqr import image_kind
from wxqr._batch import file_stem, read_items
from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET, SandboxState, served

zxingcpp = pytest.importorskip("zxingcpp")
Image = pytest.importorskip("PIL.Image")

MANIFEST_FILES = ["manifest.csv", "manifest.json"]
FIELDS = ["scene", "status", "file", "ticket", "url", "error"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WXQR_")}
    return subprocess.run(
        [sys.executable, "-m", "wxqr", *args],
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


def decode(path: Path) -> str:
    (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(path.read_bytes())))
    return str(barcode.text)


TRICKY = ["order/9", "a?b", "a*b", "..", "../../etc/passwd", "你好", "007", "-5", "a b", "A_b"]


def test_qrcode_batch_from_file_in_the_sandbox(tmp_path):
    scenes = [str(i) for i in range(1, 31)] + TRICKY
    source = tmp_path / "scenes.txt"
    source.write_text("\n".join(scenes[:20]) + "\n\n  \n" + "\n".join(scenes[20:]) + "\n")
    out = tmp_path / "out"

    result = run("qrcode", "--sandbox", "--from", str(source), "--out", str(out))

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ok 40 / failed 0 / ")
    rows = manifest(out)
    assert [r["scene"] for r in rows] == scenes  # every scene, input order, blank lines skipped
    assert {r["status"] for r in rows} == {"ok"}
    names = {r["file"] for r in rows}
    assert len(names) == 40  # distinct scenes never share a file
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, *MANIFEST_FILES])
    for row in rows:
        image = out / row["file"]
        assert image.parent == out
        assert not row["file"].startswith(".")
        assert image.suffix == {"png": ".png", "jpeg": ".jpg"}[image_kind(image.read_bytes())]
        assert row["ticket"]
        assert row["url"].startswith("http://weixin.qq.com/q/")
        assert decode(image) == row["url"]


def test_every_scene_is_reported_and_bad_ones_do_not_stop_the_others(tmp_path):
    too_long = "x" * 65
    scenes = ["good-1", too_long, "0", "good-2", "good-1", "100001"]
    out = tmp_path / "out"

    result = run("qrcode", "--sandbox", "--permanent", *scenes, "--out", str(out))

    assert result.returncode == 1
    rows = manifest(out)
    assert [r["scene"] for r in rows] == scenes
    status = {r["scene"]: r for r in rows}
    assert status["good-1"]["status"] == status["good-2"]["status"] == "ok"
    # A duplicate is generated once: both of its rows name the same file and ticket.
    assert rows[0]["file"] == rows[4]["file"]
    assert rows[0]["ticket"] == rows[4]["ticket"]
    for scene, text in [
        (too_long, "ValidationError: scene_str: must be 1..64 chars long"),
        ("0", "ValidationError: scene_id: must be in 1..100000"),  # permanent ids: 1..100000
        ("100001", "ValidationError: scene_id: must be in 1..100000"),
    ]:
        assert status[scene]["status"] == "failed"
        assert status[scene]["error"].startswith(text)
        assert status[scene]["file"] == ""
    assert "ok 3 / failed 3 / " in result.stderr
    assert f"failed {too_long!r}: ValidationError" in result.stderr


def test_resume_redoes_only_what_is_missing_or_failed(tmp_path):
    out = tmp_path / "out"
    scenes = [f"s{i}" for i in range(10)]
    assert run("qrcode", "--sandbox", *scenes, "--out", str(out)).returncode == 0
    rows = manifest(out)
    # Simulate a partial run: two rows failed, two images lost, one row never finished.
    for row in rows[0:2]:
        row["status"], row["error"] = "failed", "SystemBusyError: -1"
    for row in rows[2:4]:
        (out / row["file"]).unlink()
    rows[4]["status"] = "pending"
    with (out / "manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    before = {r["scene"]: (out / r["file"]).stat() for r in rows[5:]}

    result = run("qrcode", "--sandbox", *scenes, "--out", str(out), "--resume")

    assert result.returncode == 0, result.stderr
    assert "ok 10 (5 kept) / failed 0 / " in result.stderr
    after = {r["scene"]: r for r in manifest(out)}
    assert [r["status"] for r in after.values()] == ["ok"] * 10
    for scene, stat in before.items():  # kept: same file, untouched, same ticket
        now = (out / after[scene]["file"]).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
        assert after[scene]["ticket"] == next(r["ticket"] for r in rows if r["scene"] == scene)
    for row in rows[:5]:  # redone: a new ticket from the new sandbox, and a real image
        assert after[row["scene"]]["ticket"] != row["ticket"]
        assert decode(out / after[row["scene"]]["file"]) == after[row["scene"]]["url"]


def test_without_credentials_it_says_so_and_exits_2(tmp_path):
    result = run("qrcode", "1", "--out", str(tmp_path / "out"))

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("wxqr: error: no credentials")
    assert "WXQR_APPID" in line
    assert "--sandbox" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["qrcode", "--sandbox"], id="no-scenes"),
        pytest.param(["qrcode", "--sandbox", "1", "--concurrency", "0"], id="bad-concurrency"),
        pytest.param(["qrcode", "--sandbox", "1", "--permanent", "--expire", "60"], id="exclusive"),
        pytest.param(["qrcode", "--sandbox", "1", "--api-base-url", "http://x"], id="sandbox+url"),
        pytest.param(["wxacode", "--sandbox", "1", "--env-version", "beta"], id="bad-choice"),
        pytest.param(["frobnicate"], id="unknown-command"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args):
    result = run(*args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "error" in result.stderr
    assert "Traceback" not in result.stderr


def test_wxacode_batch_in_the_sandbox(tmp_path):
    scenes = ["a=1", "id/7?x=y", "x*y", "b%2"]
    out = tmp_path / "out"

    result = run(
        "wxacode",
        "--sandbox",
        "--page",
        "pages/detail/detail",
        "--width",
        "300",
        *scenes,
        "--out",
        str(out),
    )

    assert result.returncode == 1
    rows = manifest(out)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "failed"]
    assert "'%'" in rows[3]["error"]
    assert rows[3]["error"].startswith("ValidationError")
    for row in rows[:3]:
        assert row["ticket"] == row["url"] == ""
        assert decode(out / row["file"]) == f"pages/detail/detail?scene={row['scene']}"


def test_csv_with_a_scene_header_and_stdin(tmp_path):
    source = tmp_path / "scenes.csv"
    source.write_text('\ufeffscene,note\nA-1,first\n"b,2",second\n,blank\nc3\n', encoding="utf-8")
    assert read_items(str(source)) == ["A-1", "b,2", "c3"]
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "wxqr", "wxacode", "--sandbox", "--from", "-", "--out", str(out)],
        input="k=1\n\nk=2\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [r["scene"] for r in manifest(out)] == ["k=1", "k=2"]


@pytest.mark.parametrize(
    "scene", ["../../x", "/etc/passwd", "..", ".hidden", "a\\b", "C:x", "你好", "x" * 500, "\x00"]
)
def test_file_names_stay_inside_the_output_directory(scene):
    stem = file_stem(scene)
    assert "/" not in stem
    assert "\\" not in stem
    assert ":" not in stem
    assert "\x00" not in stem
    assert not stem.startswith(".")
    assert len(stem) <= 51
    assert file_stem(scene) == stem != file_stem(scene + " ")


def test_against_a_served_sandbox_with_credentials_and_bounded_concurrency(tmp_path):
    state = SandboxState(seed=5)
    state.faults.add("cgi-bin/qrcode/create", "errcode", errcode=40053, times=2)
    state.faults.add("cgi-bin/qrcode/create", "latency", seconds=0.05, probability=1.0)
    out = tmp_path / "out"
    with served(state) as base_url:
        result = run(
            "qrcode", *[f"q{i}" for i in range(12)], "--out", str(out),
            "--api-base-url", base_url, "--concurrency", "3",
            env={"WXQR_APPID": DEFAULT_APPID, "WXQR_SECRET": DEFAULT_SECRET},
        )  # fmt: skip
    assert result.returncode == 1
    rows = manifest(out)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 2
    assert all("InvalidRequestError" in r["error"] for r in failed)
    assert all("40053" in r["error"] and "rid: " in r["error"] for r in failed)
    assert sum(r["status"] == "ok" for r in rows) == 10
    assert state.token_fetches["stable_token"] == 1
    assert state.max_in_flight["cgi-bin/qrcode/create"] == 3  # --concurrency, used and bounded
    assert DEFAULT_SECRET not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_interrupted_run_leaves_a_valid_manifest(tmp_path):
    out = tmp_path / "out"
    source = tmp_path / "scenes.txt"
    source.write_text("\n".join(str(i) for i in range(1, 3001)))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wxqr",
            "qrcode",
            "--sandbox",
            "--from",
            str(source),
            "--out",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(out.glob("*.png")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)

    assert proc.returncode == 130, stderr
    rows = manifest(out)
    assert len(rows) == 3000
    assert {r["status"] for r in rows} == {"ok", "pending"}
    done = {r["file"] for r in rows if r["status"] == "ok"}
    assert done == {p.name for p in out.glob("*.png")}  # no half-written or unlisted image
    assert not list(out.glob(".*"))


def test_wxacode_colour_and_transparency_options_reach_the_images(tmp_path):
    from PIL import Image

    out = tmp_path / "out"
    result = run(
        "wxacode", "--sandbox", "--line-color", "200,0,0", "--hyaline", "c=1", "--out", str(out)
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (row,) = manifest(out)
    picture = Image.open(out / row["file"]).convert("RGBA")
    pixels = {colour for _, colour in picture.getcolors(maxcolors=1 << 16)}
    assert {p for p in pixels if p[3] == 255} == {(200, 0, 0, 255)}  # opaque lines, red
    assert any(p[3] == 0 for p in pixels)  # the background is transparent
    assert decode(out / row["file"]) == "pages/index/index?scene=c=1"


@pytest.mark.parametrize("colour", ["red", "1,2", "0,0,256"])
def test_a_malformed_line_colour_is_a_usage_error(tmp_path, colour):
    result = run("wxacode", "--sandbox", "--line-color", colour, "s", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "R,G,B" in result.stderr
    assert not (tmp_path / "manifest.csv").exists()
