"""The package layout (issue 16): imports only go down the pipeline stages, no cycles, every public name resolves
from the top level and from the module the lazy table names, and the check itself catches violations."""

from __future__ import annotations

import base64
import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import sb3_crptpro
from sb3_crptpro._moved import MOVED_MODULES

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


def test_module_paths_of_0_1_0_import_as_the_moved_modules_with_a_warning() -> None:
    code = (
        "import importlib, warnings\n"
        "import sb3_crptpro\n"
        "from sb3_crptpro._moved import MOVED_MODULES\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    for old, new in MOVED_MODULES.items():\n"
        "        assert importlib.import_module(old) is importlib.import_module(new), old\n"
        "    from sb3_crptpro.training import TrainConfig\n"
        "    assert TrainConfig is sb3_crptpro.TrainConfig\n"
        "moved = [w for w in caught if issubclass(w.category, DeprecationWarning) and 'moved' in str(w.message)]\n"
        "assert len(moved) == len(MOVED_MODULES), moved\n"
        "print(len(moved))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [str(len(MOVED_MODULES))]
    for module in ("sb3_crptpro.cli", "sb3_crptpro"):  # the old path still runs with -m, as the new name does
        run = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and run.stdout.strip() == f"sb3-crptpro {sb3_crptpro.__version__}", run.stderr


def test_a_model_and_replay_buffer_pickled_with_0_1_0_paths_load(
    tiny_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.1.0 saved ``sb3_crptpro.extractor.CRPTproExtractor`` etc. by reference; a fresh process loads them."""
    from sb3_crptpro import AugmentedFrameStackReplayBuffer, CRPTproExtractor, EncoderWeights, crptpro_kwargs

    for old in ("sb3_crptpro.extractor", "sb3_crptpro.sac"):  # in sys.modules, as they were when 0.1.0 saved
        importlib.import_module(old)

    for cls, old in ((CRPTproExtractor, "sb3_crptpro.extractor"), (EncoderWeights, "sb3_crptpro.extractor"),
                     (AugmentedFrameStackReplayBuffer, "sb3_crptpro.sac")):  # fmt: skip
        monkeypatch.setattr(cls, "__module__", old)
    env = sb3_crptpro.make_dmc_vec_env("cartpole_swingup", 1, seed=0, image_size=24, render="fast", action_repeat=50)
    model = sb3_crptpro.AugmentedSAC("CnnPolicy", env, policy_kwargs=crptpro_kwargs(tiny_artifact, net_arch=[16]),
                                     learning_starts=5, batch_size=4, buffer_size=100, device="cpu")  # fmt: skip
    model.learn(10)
    model.save(tmp_path / "old.zip")
    model.save_replay_buffer(tmp_path / "old_buffer.pkl")
    env.close()
    with zipfile.ZipFile(tmp_path / "old.zip") as archive:
        kwargs = json.loads(archive.read("data"))["policy_kwargs"][":serialized:"]
    assert b"sb3_crptpro.extractor" in base64.b64decode(kwargs)  # saved under the 0.1.0 path, as 0.1.0 did
    assert b"sb3_crptpro.sac" in (tmp_path / "old_buffer.pkl").read_bytes()
    monkeypatch.undo()
    code = (
        "import sys, pickle\n"
        "from sb3_crptpro import AugmentedSAC\n"
        f"model = AugmentedSAC.load({str(tmp_path / 'old.zip')!r}, device='cpu')\n"
        f"model.load_replay_buffer({str(tmp_path / 'old_buffer.pkl')!r})\n"
        "print(type(model.actor.features_extractor).__module__, type(model.replay_buffer).__module__,"
        " model.replay_buffer.size())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["sb3_crptpro.sb3.extractor", "sb3_crptpro.sb3.sac", "10"]
