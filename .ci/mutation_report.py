"""Summarise mutmut's results per module: killed / total, and every survivor with its reason.

Run by ``.ci/mutation`` after ``mutmut run``; reads ``mutants/**/*.py.meta`` (mutmut's own
result files) and ``.ci/mutation-survivors.txt`` (one ``<mutant name> <reason>`` per line; a
reason starting with ``equivalent:`` marks a mutant no test can kill because behaviour does not
change). ``--modules`` prints the configured modules instead (from ``[tool.mutmut]``).
Exit status 1 when a module is below 90% of its non-equivalent mutants killed.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut brings the `toml` package there
    import toml as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.90

# mutmut's exit-code meanings (mutmut/stats.py, status_by_exit_code).
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
TIMEOUT = {-24, 24, 152, 255, 36}


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    modules = []
    for pattern in config["tool"]["mutmut"]["only_mutate"]:
        if pattern.endswith("/*"):
            folder = ROOT / pattern[:-2]
            modules += sorted(
                ".".join(p.relative_to(ROOT).with_suffix("").parts)
                for p in folder.glob("*.py")
                if p.name != "__init__.py"
            )
        else:
            modules.append(".".join(Path(pattern).with_suffix("").parts))
    return modules


def reasons() -> dict[str, str]:
    table = {}
    path = ROOT / ".ci" / "mutation-survivors.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            table[name] = reason.strip()
    return table


def main(argv: list[str]) -> int:
    if argv == ["--modules"]:
        print("\n".join(configured_modules()))
        return 0
    modules = argv or configured_modules()
    why = reasons()
    failing = False
    print(f"{'module':<24} {'killed':>7} {'total':>6} {'equiv.':>6} {'score':>7}  other")
    survivors: list[tuple[str, str]] = []
    for module in modules:
        meta = ROOT / "mutants" / (module.replace(".", "/") + ".py.meta")
        if not meta.exists():
            print(f"{module:<24} not run")
            failing = True
            continue
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        counts: Counter[str] = Counter()
        for name, code in sorted(codes.items(), key=lambda item: _order(item[0])):
            if code in KILLED or code in TIMEOUT:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
                reason = why.get(name, "UNEXPLAINED")
                if reason.startswith("equivalent:"):
                    counts["equivalent"] += 1
                survivors.append((name, reason))
            elif code in NO_TESTS:
                counts["no tests"] += 1
                survivors.append((name, why.get(name, "no fast test reaches this code")))
            elif code is None:
                counts["not checked"] += 1
            else:
                counts["suspicious"] += 1
                survivors.append((name, f"suspicious (exit code {code})"))
        total = sum(counts.values())
        relevant = total - counts["equivalent"]
        score = counts["killed"] / relevant if relevant else 1.0
        failing |= score < GOAL or counts["not checked"] > 0
        other = ", ".join(
            f"{counts[k]} {k}" for k in ("no tests", "not checked", "suspicious") if counts[k]
        )
        print(
            f"{module:<24} {counts['killed']:>7} {total:>6} {counts['equivalent']:>6} "
            f"{score:>7.1%}  {other}"
        )
    if survivors:
        print("\nsurvivors:")
        for name, reason in survivors:
            print(f"  {name}  {reason}")
    return 1 if failing else 0


def _order(name: str) -> tuple[str, int]:
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
