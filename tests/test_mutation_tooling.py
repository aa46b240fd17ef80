"""The mutation-testing habit (issue 17) stays runnable: its configuration names files that exist,
every listed survivor has a reason, the score is computed as README says, and one module's run
works end to end with the documented command (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tool():
    """``.ci/mutation.py``, imported afresh (tests patch its WORK and ROOT)."""
    spec = importlib.util.spec_from_file_location("ci_mutation", ROOT / ".ci" / "mutation.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tomllib = load_tool().tomllib  # the stdlib's, or the `toml` package on Python 3.10
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MUTATION = PYPROJECT["tool"]["wxqr-mutation"]
SURVIVORS = ROOT / ".ci" / "mutation-survivors.txt"

# The modules issue 17 names: the core, the caches and the receiving side.
REQUIRED = {
    "wxqr._decoder",
    "wxqr._tokens",
    "wxqr._transport",
    "wxqr._validate",
    "wxqr.errors",
    "wxqr.caches._base",
    "wxqr.caches.memory",
    "wxqr.caches.redis",
    "wxqr.events._signature",
    "wxqr.events._crypto",
    "wxqr.events._parse",
    "wxqr.events._errors",
    "wxqr.events._dedup",
    "wxqr.events._receiver",
    "wxqr.events._adapters",
}


def test_every_module_the_issue_names_is_measured_against_existing_test_files():
    assert set(MUTATION["tests"]) >= REQUIRED
    for module, files in MUTATION["tests"].items():
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
        assert files, module
        for name in files:
            assert (ROOT / name).is_file(), f"{module}: {name} does not exist"
    # Modules with their own pytest arguments are measured modules.
    assert set(MUTATION.get("args", {})) <= set(MUTATION["tests"])


def test_every_listed_survivor_has_a_reason_and_belongs_to_a_measured_module():
    measured = set(MUTATION["tests"])
    seen = set()
    for line in SURVIVORS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        assert name not in seen, f"listed twice: {name}"
        seen.add(name)
        assert "__mutmut_" in name, line
        module = name.rsplit(".x", 1)[0]
        assert module in measured, line
        kind, _, why = reason.partition(":")
        assert kind in {"equivalent", "gap"}, line
        assert len(why.strip()) >= 10, f"a one-line reason is needed: {line}"


def write_results(work: Path, module: str, codes: dict[str, int | None]) -> None:
    meta = work / module / "mutants" / (module.replace(".", "/") + ".py.meta")
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")


def test_the_score_leaves_out_equivalent_mutants_and_fails_under_90_percent(
    tmp_path, monkeypatch, capsys
):
    tool = load_tool()
    monkeypatch.setattr(tool, "WORK", tmp_path)
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "mutation-survivors.txt").write_text(
        "# comment\n\nm.a.x_f__mutmut_9 equivalent: a memo only\nm.b.x_g__mutmut_2 gap: later\n",
        encoding="utf-8",
    )
    killed = {f"m.a.x_f__mutmut_{i}": 1 for i in range(1, 9)}  # 8 killed (exit 1)
    write_results(tmp_path, "m.a", {**killed, "m.a.x_f__mutmut_9": 0, "m.a.x_f__mutmut_10": 24})
    # m.b: 8 of 10 killed, the 2 others a gap and a mutant no test reaches: 80% < 90%.
    write_results(
        tmp_path,
        "m.b",
        {
            **{f"m.b.x_g__mutmut_{i}": 3 for i in range(3, 11)},
            "m.b.x_g__mutmut_1": 33,
            "m.b.x_g__mutmut_2": 0,
        },
    )

    assert tool.report(["m.a"]) == 0
    out = capsys.readouterr().out
    # 9 killed (a timeout counts) of 10, 1 equivalent: 9 / 9.
    assert "m.a                       9     10      1  100.0%" in out
    assert "m.a.x_f__mutmut_9  equivalent: a memo only" in out

    assert tool.report(["m.a", "m.b"]) == 1
    out = capsys.readouterr().out
    assert "m.b                       8     10      0   80.0%  1 no tests" in out
    assert "m.b.x_g__mutmut_2  gap: later" in out
    assert "m.b.x_g__mutmut_1  no unit test reaches this code" in out

    assert tool.report(["m.c"]) == 1  # never run is a failure too
    assert "m.c                  not run" in capsys.readouterr().out


def test_a_modules_workspace_mutates_only_it_with_its_own_tests_and_arguments(
    tmp_path, monkeypatch
):
    tool = load_tool()
    monkeypatch.setattr(tool, "WORK", tmp_path)
    work = tool.prepare("wxqr.caches.redis")
    generated = tomllib.loads((work / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    assert generated["mutmut"]["only_mutate"] == ["wxqr/caches/redis.py"]
    assert (
        generated["mutmut"]["pytest_add_cli_args_test_selection"]
        == (MUTATION["tests"]["wxqr.caches.redis"])
    )
    assert generated["mutmut"]["pytest_add_cli_args"] == ["-m", "not slow"]  # Redis tests run
    assert (work / "wxqr").resolve() == ROOT / "wxqr"

    plain = tomllib.loads(
        (tool.prepare("wxqr._decoder") / "pyproject.toml").read_text(encoding="utf-8")
    )["tool"]["mutmut"]
    assert plain["pytest_add_cli_args"] == ["-m", "not slow and not redis"]


@pytest.mark.slow
def test_the_documented_command_measures_a_module_end_to_end(tmp_path):
    mutmut = Path(sys.executable).parent / "mutmut"
    if not mutmut.exists():
        pytest.skip(f"mutmut is not installed next to {sys.executable} (the dev extra has it)")
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("wxqr", "tests", ".ci"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    result = subprocess.run(
        ["bash", ".ci/mutation", "wxqr.events._signature"],
        cwd=copy,
        env={**os.environ, "PYTHON": sys.executable, "MUTMUT_CHILDREN": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("wxqr.events."))
    name, killed, total, equivalent, score = row.split()[:5]
    assert name == "wxqr.events._signature"
    assert int(total) >= 40  # the module's mutants were all generated and checked
    assert int(killed) / (int(total) - int(equivalent)) >= 0.90
    assert float(score.rstrip("%")) >= 90.0
