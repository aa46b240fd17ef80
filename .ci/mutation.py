"""Helpers of ``.ci/mutation``: per-module mutmut workspaces and the summary of their results.

``python .ci/mutation.py modules``
    The modules to mutate (``[tool.wxqr-mutation]`` in pyproject.toml), one per line.
``python .ci/mutation.py prepare MODULE``
    Make ``.mutation/MODULE/``: symlinks to ``wxqr/`` and ``tests/`` and a copy of
    pyproject.toml whose ``[tool.mutmut]`` mutates that one module and runs only its unit tests.
    mutmut then keeps that module's mutants, test map and results in
    ``.mutation/MODULE/mutants/``, apart from the other modules'.
``python .ci/mutation.py survivors MODULE``
    The names of the mutants that survived the last run (``.ci/mutation`` runs them again).
``python .ci/mutation.py report [MODULE ...]``
    Per module: killed / total, and every survivor with its reason from
    ``.ci/mutation-survivors.txt`` (``<mutant name> <reason>`` per line; a reason starting with
    ``equivalent:`` marks a mutant that changes no behaviour, left out of the score). Exit
    status 1 when a module has unchecked mutants or kills under 90% of its non-equivalent ones.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut brings the `toml` package there
    import toml as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
GOAL = 0.90

# mutmut's exit-code meanings (mutmut/stats.py, status_by_exit_code).
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {-24, 24, 152, 255, 36}


def _pyproject() -> tuple[str, dict]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return text, tomllib.loads(text)


def modules() -> dict[str, list[str]]:
    """Module -> the unit test files that exercise it."""
    return dict(_pyproject()[1]["tool"]["wxqr-mutation"]["tests"])


def _cli_args(config: dict, module: str) -> list[str]:
    """pytest's arguments for ``module``: ``[tool.wxqr-mutation.args]`` or the common ones."""
    own = config["tool"]["wxqr-mutation"].get("args", {})
    return list(own.get(module, config["tool"]["mutmut"]["pytest_add_cli_args"]))


def prepare(module: str) -> Path:
    text, config = _pyproject()
    tests = modules()[module]
    base = config["tool"]["mutmut"]
    source = module.replace(".", "/") + ".py"
    section = "\n".join(
        [
            "[tool.mutmut]",
            f"source_paths = {json.dumps(base['source_paths'])}",
            f"only_mutate = {json.dumps([source])}",
            f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
            f"pytest_add_cli_args = {json.dumps(_cli_args(config, module))}",
            f"do_not_mutate_patterns = {json.dumps(base.get('do_not_mutate_patterns', []))}",
            "",
        ]
    )
    generated = re.sub(
        r"^\[tool\.mutmut\]\n.*?(?=^\[|\Z)",
        lambda _: section + "\n",
        text,
        flags=re.MULTILINE | re.DOTALL,
    )
    work = WORK / module
    work.mkdir(parents=True, exist_ok=True)
    for name in ("wxqr", "tests"):
        link = work / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name, target_is_directory=True)
    target = work / "pyproject.toml"
    if not target.exists() or target.read_text(encoding="utf-8") != generated:
        target.write_text(generated, encoding="utf-8")
    return work


def _results(module: str) -> dict[str, int | None] | None:
    meta = WORK / module / "mutants" / (module.replace(".", "/") + ".py.meta")
    if not meta.exists():
        return None
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return codes


def survivors(module: str) -> list[str]:
    """The mutants of ``module`` that survived (or had no test) in the last run."""
    codes = _results(module) or {}
    return [name for name, code in codes.items() if code in SURVIVED or code in NO_TESTS]


def reasons() -> dict[str, str]:
    table = {}
    path = ROOT / ".ci" / "mutation-survivors.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            table[name] = reason.strip()
    return table


def report(selected: list[str]) -> int:
    why = reasons()
    failing = False
    lines = [f"{'module':<20} {'killed':>6} {'total':>6} {'equiv.':>6} {'score':>7}  other"]
    survivors: list[str] = []
    for module in selected:
        codes = _results(module)
        if codes is None:
            lines.append(f"{module:<20} not run")
            failing = True
            continue
        counts: Counter[str] = Counter()
        for name, code in sorted(codes.items(), key=lambda item: _order(item[0])):
            if code in KILLED or code in TIMEOUT:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
                reason = why.get(name, "UNEXPLAINED")
                counts["equivalent"] += reason.startswith("equivalent:")
                survivors.append(f"  {name}  {reason}")
            elif code in NO_TESTS:
                counts["no tests"] += 1
                reason = why.get(name, "no unit test reaches this code")
                counts["equivalent"] += reason.startswith("equivalent:")
                survivors.append(f"  {name}  {reason}")
            elif code is None:
                counts["not checked"] += 1
            else:
                counts["suspicious"] += 1
                survivors.append(f"  {name}  suspicious (exit code {code})")
        total = len(codes)
        relevant = total - counts["equivalent"]
        score = counts["killed"] / relevant if relevant else 1.0
        failing |= score < GOAL or counts["not checked"] > 0
        other = ", ".join(
            f"{counts[k]} {k}" for k in ("no tests", "not checked", "suspicious") if counts[k]
        )
        lines.append(
            f"{module:<20} {counts['killed']:>6} {total:>6} {counts['equivalent']:>6} "
            f"{score:>7.1%}  {other}"
        )
    print("\n".join(lines))
    if survivors:
        print("\nsurvivors:\n" + "\n".join(survivors))
    return 1 if failing else 0


def _order(name: str) -> tuple[str, int]:
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("report", [])
    if command == "modules":
        print("\n".join(modules()))
        return 0
    if command == "prepare":
        for module in args:
            print(prepare(module))
        return 0
    if command == "survivors":
        for module in args:
            for name in survivors(module):
                print(name)
        return 0
    if command == "report":
        return report(args or list(modules()))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
