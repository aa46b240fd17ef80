"""README is the front door: its commands and its API table must match the code."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wxqr

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_the_second_is_ci() -> None:
    run_job, run_tests = quick_start()  # exactly two
    assert run_job.startswith("python3 -m venv .venv && ")  # its own set-up: PEP 668 is fine
    assert " --sandbox " in run_job
    assert run_tests == "bash .ci/run"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.strip().splitlines()[-1].strip() == "python -m pytest"
    assert '"$PY" -m venv "$VENV"' in ci  # CI makes its own virtualenv too


@pytest.mark.slow
def test_the_first_quick_start_command_works_in_a_bare_checkout(tmp_path: Path) -> None:
    """The README's first command, verbatim, in a copy of the checkout without any venv."""
    checkout = tmp_path / "wxqr"
    shutil.copytree(
        ROOT,
        checkout,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".ci-venv", "*.egg-info", "__pycache__", "qr-codes", "dist"
        ),
    )
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)
    )
    result = subprocess.run(
        ["bash", "-c", quick_start()[0]],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ok 3 / failed 0 / ")
    out = checkout / "qr-codes"
    images = sorted(p.name for p in out.glob("*.png"))
    assert len(images) == 3
    assert (out / "manifest.csv").read_text().count(",ok,") == 3
    assert (checkout / ".venv" / "bin" / "wxqr").exists()


def python_blocks() -> list[tuple[int, str]]:
    """Every ```python block of README with its line number."""
    blocks, lines, start = [], README.splitlines(), None
    for number, line in enumerate(lines, 1):
        if line.strip() == "```python":
            start = number
        elif line.strip() == "```" and start is not None:
            blocks.append((start, textwrap.dedent("\n".join(lines[start : number - 1]))))
            start = None
    return blocks


#: Names README's fragments use without defining them (what a reader has in scope).
PRELUDE = """\
from typing import Any
import wxqr
from wxqr.login import ScanLogin
from wxqr.sandbox import SandboxState, sandbox_client
appid: str = "wx"
secret: str = "s"
APPID: str = "wx"
SECRET: str = "s"
TOKEN: str = "t"
PUSH_TOKEN: str = "t"
AES_KEY: str = "k"
wx: wxqr.Client
state: SandboxState
redis: Any
app: Any
aio_app: Any
lifespan: Any
receiver: Any
store: Any
my_asgi_app: Any
"""


def bound_names(code: str) -> set[str]:
    """The names a block defines itself (assignments, defs, imports, ``as`` targets)."""
    tree = compile(code, "<readme>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def as_module(code: str) -> str:
    """A fragment as a module mypy can check: top-level ``await`` goes inside a coroutine.

    The placeholders of :data:`PRELUDE` are declared only for names the block does not define.
    """
    bound = bound_names(code)
    prelude = "\n".join(
        line
        for line in PRELUDE.splitlines()
        if not (":" in line and line.split(":", 1)[0] in bound)
    )
    try:
        compile(code, "<readme>", "exec")
        top_level_await = False
    except SyntaxError:  # "await" / "async with" outside a function
        top_level_await = True
    if not top_level_await:
        return prelude + "\n" + code + "\n"
    body = textwrap.indent(code, "    ")
    return prelude + "\nasync def _example() -> None:\n" + body + "\n"


@pytest.mark.slow
def test_readme_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 8
    files = []
    for line, code in blocks:
        path = tmp_path / f"readme_line_{line}.py"
        path.write_text(as_module(code), encoding="utf-8")
        files.append(str(path))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
         str(tmp_path / "cache"), "--config-file", str(ROOT / "pyproject.toml"), *files],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_resource_method_in_the_api_table_exists() -> None:
    client = wxqr.Client("wx_readme", "secret")
    for resource, method in re.findall(r"`wx\.(\w+)\.(\w+)`", README):
        assert hasattr(getattr(client, resource), method), f"wx.{resource}.{method}"


def test_every_exception_in_the_tree_is_public() -> None:
    tree = README.split("## Errors", 1)[1].split("```", 2)[1]
    names = re.findall(r"\b([A-Z]\w+(?:Error|Exception))\b", tree)
    assert len(names) >= 17
    for name in names:
        if name != "ValueError":
            assert isinstance(getattr(wxqr, name), type), name


def test_the_sandbox_example_runs_as_written() -> None:
    section = README.split("In-process (fast tests):", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    body = "\n".join("    " + line for line in code.strip().splitlines())
    namespace: dict[str, object] = {}
    exec(f"async def example():\n{body}\n    return state", namespace)

    import anyio

    state = anyio.run(namespace["example"])  # type: ignore[arg-type]
    assert state.calls["wxa/getwxacodeunlimit"] == 3  # type: ignore[attr-defined]
