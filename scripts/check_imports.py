"""Check the package layout: imports go down the pipeline, never up, and no import cycles (issue 16).

Stages, lowest first: ``common`` (with ``_version``, ``_compat``) -> ``envs`` -> ``data`` -> ``pretraining`` ->
``sb3`` -> ``app``. A module may import its own stage or a lower one; ``sb3_crptpro/__init__.py``,
``__main__.py`` and the ``zoo.py`` entry point sit above all. Every ``import`` counts, also those inside functions.
Prints the stage-to-stage import table; exit status 1 and one line per violation if any.

Usage: ``python scripts/check_imports.py`` (from the repository root)
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = "sb3_crptpro"
STAGES = ("common", "envs", "data", "pretraining", "sb3", "app")
INFRA = {"_version": "common", "_compat": "common", "_moved": "common"}
ENTRY = {PACKAGE, f"{PACKAGE}.__main__", f"{PACKAGE}.zoo"}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str | None:
    """The stage of a module, ``None`` for the entry points."""
    if module in ENTRY:
        return None
    first = module.split(".")[1]
    return INFRA.get(first, first)


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> package modules it imports`` for every module under ``root``."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.split(".")[0] == PACKAGE and target in modules and target != name:
                    graph[name].add(target)
        graph.setdefault(name, set())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, set()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    """One line per upward import, unknown stage or cycle."""
    out = []
    for module, targets in sorted(graph.items()):
        own = stage(module)
        if own is None:
            continue
        if own not in STAGES:
            out.append(f"{module}: not in a stage ({', '.join(STAGES)})")
            continue
        for target in sorted(targets):
            their = stage(target)
            if their is None or STAGES.index(their) > STAGES.index(own):
                out.append(f"{module} ({own}) imports {target} ({their or 'entry point'}): upward")
    out += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return out


def main() -> int:
    root = Path(__file__).resolve().parents[1] / PACKAGE
    graph = import_graph(root)
    table: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        if stage(module) is not None:
            table[stage(module)] |= {stage(t) for t in targets if stage(t) != stage(module)} - {None}
    for name in STAGES:
        print(f"{name:>12} imports {', '.join(s for s in STAGES if s in table[name]) or '-'}")
    problems = violations(graph)
    for line in problems:
        print(line, file=sys.stderr)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports: "
          f"{'OK, no upward imports, no cycles' if not problems else f'{len(problems)} problem(s)'}")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
