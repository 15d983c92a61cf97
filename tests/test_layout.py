"""The package layout (issue 16): imports only go down the pipeline stages, no cycles, every public name resolves
from the top level and from the module the lazy table names, and the check itself catches violations."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import sb3_crptpro

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import check_imports  # noqa: E402


def test_package_imports_go_down_the_pipeline_without_cycles() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_imports.py")], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no upward imports, no cycles" in proc.stdout
    graph = check_imports.import_graph(ROOT / "sb3_crptpro")
    stages = {check_imports.stage(m) for m in graph} - {None}
    assert stages == set(check_imports.STAGES)  # every module sits in a stage
    assert "sb3_crptpro.common.networks" in graph["sb3_crptpro.common.artifact"]  # edges are found


def test_the_check_reports_upward_imports_and_cycles() -> None:
    graph = {
        "sb3_crptpro.envs.tasks": {"sb3_crptpro.sb3.encode"},  # upward
        "sb3_crptpro.sb3.encode": {"sb3_crptpro.sb3.reward"},
        "sb3_crptpro.sb3.reward": {"sb3_crptpro.sb3.encode"},  # cycle within a stage
        "sb3_crptpro.app.cli": {"sb3_crptpro"},  # the top level is above every stage
        "sb3_crptpro.misc": set(),
    }
    problems = check_imports.violations(graph)
    assert "sb3_crptpro.envs.tasks (envs) imports sb3_crptpro.sb3.encode (sb3): upward" in problems
    assert "sb3_crptpro.app.cli (app) imports sb3_crptpro (entry point): upward" in problems
    assert "import cycle: sb3_crptpro.sb3.encode -> sb3_crptpro.sb3.reward" in problems
    assert any(p.startswith("sb3_crptpro.misc: not in a stage") for p in problems)
    assert len(problems) == 4


def test_every_public_name_resolves_from_the_top_level_and_its_module() -> None:
    assert len(sb3_crptpro.__all__) == len(set(sb3_crptpro.__all__))
    for name in sb3_crptpro.__all__:
        value = getattr(sb3_crptpro, name)
        if name != "__version__":
            module = importlib.import_module(sb3_crptpro._LAZY[name])
            assert getattr(module, name) is value, name
    assert sb3_crptpro.__version__ == "0.2.0"
