"""README is the front door: its commands and its API table must match the code."""

from __future__ import annotations

import re
from pathlib import Path

import wxqr

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_exactly_the_test_command_readme_gives() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_command = ci.strip().splitlines()[-1].strip()
    assert ci_command == "python -m pytest"
    assert re.search(r"^python3? -m pytest\b", README, re.MULTILINE)


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
