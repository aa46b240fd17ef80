"""The pytest plugin's fixtures under every async test plugin, and its docstring example run.

Each case runs a real pytest session in a subprocess on a file written here, with anyio's
plugin and pytest-asyncio both installed (as in this project's dev environment).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wxqr.sandbox.pytest_plugin as plugin

pytest.importorskip("pytest_asyncio")
pytest.importorskip("trio")

CONFTEST = """
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""


def docstring_example() -> str:
    doc = plugin.__doc__
    assert doc is not None
    block = doc.split("::\n", 1)[1].split("\n\n*", 1)[0]
    return textwrap.dedent(block)


def pytest_session(
    tmp_path: Path, code: str, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_example.py").write_text(code)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error",
         "-o", "asyncio_default_fixture_loop_scope=function", *options, str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


STATE_FIRST = """
import pytest
import wxqr

@pytest.fixture
def wechat_sandbox_state(wechat_sandbox_state):
    wechat_sandbox_state.faults.add("cgi-bin/qrcode/create", "errcode", errcode=45009)
    return wechat_sandbox_state

@pytest.mark.asyncio
async def test_quota_under_pytest_asyncio(wechat_sandbox):
    with pytest.raises(wxqr.QuotaExceededError):
        await wechat_sandbox.client.qrcode.create_temporary(scene_id=1, expire_seconds=60)

@pytest.mark.anyio
async def test_quota_under_anyio(wechat_sandbox):
    with pytest.raises(wxqr.QuotaExceededError):
        await wechat_sandbox.client.qrcode.create_temporary(scene_id=1, expire_seconds=60)
    assert repr(wechat_sandbox).startswith("<WeChatSandbox")
"""


@pytest.mark.slow
def test_the_docstring_example_passes_under_anyio_and_pytest_asyncio(tmp_path):
    code = docstring_example()
    assert "@pytest.mark.anyio" in code
    assert "@pytest.mark.asyncio" in code
    (tmp_path / "test_state_first.py").write_text(STATE_FIRST)

    result = pytest_session(tmp_path, code, "-o", "asyncio_mode=strict", "-rA")

    assert result.returncode == 0, result.stdout + result.stderr
    passed = set(re.findall(r"^PASSED \S+::(\S+)", result.stdout, re.MULTILINE))
    assert passed == {
        "test_ticket[asyncio]",  # the docstring example, anyio on both backends
        "test_ticket[trio]",
        "test_short_key",  # ... and pytest-asyncio
        "test_quota_under_pytest_asyncio",  # a state configured before the client is used
        "test_quota_under_anyio[asyncio]",
        "test_quota_under_anyio[trio]",
    }, result.stdout


@pytest.mark.slow
def test_without_segno_show_names_the_extra_in_one_line(tmp_path):
    shadow = tmp_path / "shadow" / "segno"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'segno'\", name='segno')\n"
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = pytest_session(
        run_dir, docstring_example(), "-rf", env={"PYTHONPATH": str(tmp_path / "shadow")}
    )
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2  # test_ticket on both backends: it draws an image
    assert "1 passed" in result.stdout  # the short key needs no image
    assert "which is not installed: pip install 'wxqr[sandbox]'" in result.stdout
