"""``wxqr sandbox`` as a user meets it, and missing extras: one line naming the extra to install."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wxqr.sandbox import DEFAULT_APPID, DEFAULT_SECRET


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WXQR_")}
    return subprocess.run(
        [sys.executable, "-m", "wxqr", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
    )


def shadow(tmp_path: Path, module: str) -> dict[str, str]:
    """An environment in which ``import module`` fails as if it were not installed."""
    package = tmp_path / "shadow" / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name='{module}')\n"
    )
    return {"PYTHONPATH": str(tmp_path / "shadow")}


@pytest.mark.parametrize(
    ("module", "args", "extra"),
    [
        pytest.param("segno", ["qrcode", "--sandbox", "1", "--out", "OUT"], "sandbox", id="segno"),
        pytest.param("uvicorn", ["sandbox", "--port", "0"], "sandbox", id="uvicorn"),
        pytest.param(
            "redis",
            ["qrcode", "--sandbox", "1", "--out", "OUT", "--redis", "redis://127.0.0.1:1"],
            "redis",
            id="redis",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(tmp_path, module, args, extra):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = run(*args, env=shadow(tmp_path, module))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"pip install 'wxqr[{extra}]'" in line
    assert module in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_sandbox_prints_the_credentials_it_accepts_at_start_up_and_in_help():
    helped = run("sandbox", "--help")
    assert helped.returncode == 0
    flat = " ".join(helped.stdout.split())
    assert DEFAULT_APPID in flat
    assert DEFAULT_SECRET in flat

    proc = subprocess.Popen(
        [sys.executable, "-m", "wxqr", "sandbox", "--port", "0", "--appid", "wx_me",
         "--secret", "s3cret", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        listening = proc.stdout.readline()
        accepts = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert listening.startswith("wxqr sandbox listening on http://127.0.0.1:")
    assert accepts.split() == ["accepts", "appid", "wx_me", "secret", "s3cret"]
    assert proc.returncode == 0


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("sandbox", "--port", str(port))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"wxqr sandbox: error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port" in line
