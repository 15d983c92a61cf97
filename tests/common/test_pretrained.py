"""Shipped encoders: loaded by name wherever a path is taken, listed, reproducible from their recorded commands."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from stable_baselines3 import SAC

from sb3_crptpro import (
    VecEncodeObservation,
    crptpro_kwargs,
    list_pretrained,
    load_artifact,
    make_dmc_env,
    make_dmc_vec_env,
    make_encoded_vec_env,
)
from sb3_crptpro.app.cli import main
from sb3_crptpro.app.demo import DemoConfig
from sb3_crptpro.common.artifact import PRETRAINED_DIR, pretrained_names, resolve_artifact_path
from sb3_crptpro.common.pretrained import DEFAULT_PRETRAINED
from sb3_crptpro.data.store import manifest_sha256

NAME = "dmc-64px"
#: the first 10 updates of the shipped encoder's recorded pretrain command (its ``--updates`` does not change the
#: trajectory, so a run with ``--updates 10`` is that prefix), as one random projection per tensor (``_fingerprint``).
#: Not a sha256: float kernels differ per CPU. The same code (torch 2.13 CPU) gave tensor sha256 e9d55f20... on the
#: AVX2 machine that made the encoder and 3935b288... on an AVX-512 one (AMD EPYC, Zen 4), where these values were
#: measured. There, forcing AVX2 kernels (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) moved the projections by
#: at most 1.3e-6 and SSE4.1 kernels by 4.2e-5, while one update fewer moved them by 3.7e-4, --lr 1.1e-4 by 5.2e-3
#: and --seed 1 by 0.55: PREFIX_ATOL sits between the two groups.
PREFIX_UPDATES = 10
PREFIX_FINGERPRINT = {
    "encoder.convs.0.bias": -0.0006958,
    "encoder.convs.0.weight": -0.2427224,
    "encoder.convs.2.bias": -0.0001329,
    "encoder.convs.2.weight": 0.1642154,
    "encoder.convs.4.bias": -0.0005818,
    "encoder.convs.4.weight": 0.0977228,
    "encoder.convs.6.bias": 0.0007364,
    "encoder.convs.6.weight": -0.0003235,
    "projector.linear.bias": -0.0379158,
    "projector.linear.weight": 0.0087458,
    "prototypes.linear.weight": -0.1067243,
}
#: the same for the encoder pretrained with the added inverse-dynamics loss (measured on the AVX-512 machine that
#: made it). There one update fewer moves the projector bias by 3.4e-3 (the other tensors by 7e-6 to 8e-5), and these
#: values differ from ``PREFIX_FINGERPRINT`` (no inverse-dynamics loss) by up to 1.5e-2.
INVDYN_NAME = "dmc-64px-invdyn"
INVDYN_PREFIX_FINGERPRINT = {
    "encoder.convs.0.bias": -0.0009666,
    "encoder.convs.0.weight": -0.2425962,
    "encoder.convs.2.bias": 0.0002927,
    "encoder.convs.2.weight": 0.1646381,
    "encoder.convs.4.bias": -0.0001587,
    "encoder.convs.4.weight": 0.0972250,
    "encoder.convs.6.bias": 0.0010530,
    "encoder.convs.6.weight": -0.0000752,
    "projector.linear.bias": -0.0228376,
    "projector.linear.weight": 0.0089015,
    "prototypes.linear.weight": -0.1069304,
}
PREFIX_ATOL = 1e-4


def _fingerprint(path: Path) -> dict[str, float]:
    """Each tensor of an artifact projected on a fixed standard-normal vector (seed 0), divided by sqrt(numel)."""
    out = {}
    for name, tensor in sorted(load_file(path).items()):
        x = tensor.double().flatten()
        direction = torch.randn(x.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        out[name] = float(x @ direction) / x.numel() ** 0.5
    return out


@pytest.mark.parametrize("name", [NAME, INVDYN_NAME])
def test_the_shipped_encoder_loads_by_name_everywhere_a_path_is_taken(name: str, tmp_path: Path) -> None:
    assert name in pretrained_names()
    art = load_artifact(name)
    assert art.path == PRETRAINED_DIR / f"{name}.safetensors"
    assert art.obs_shape == (9, 64, 64) and art.metadata["stats"]["updates"] == 6000
    kwargs = crptpro_kwargs(name)
    env = make_dmc_env("walker_walk", image_size=64, render="fast", action_repeat=50, seed=0)
    model = SAC("CnnPolicy", env, buffer_size=100, learning_starts=10, batch_size=4, policy_kwargs=kwargs)
    model.learn(12)
    assert model.policy.actor.features_extractor.pretrained_metadata["tensor_sha256"] == art.metadata["tensor_sha256"]
    env.close()
    venv = VecEncodeObservation(make_dmc_vec_env("walker_walk", 1, image_size=64, render="fast", seed=0), name)
    assert venv.reset().shape == (1, 128)
    venv.close()
    encoded = make_encoded_vec_env("walker_walk", 1, name, subprocess=False, seed=0, action_repeat=50)
    assert encoded.reset().shape == (1, 128)
    encoded.close()
    # an existing file of that name wins over the shipped one
    (tmp_path / name).write_bytes(b"not an artifact")
    with pytest.raises(ValueError, match=r"not a readable artifact|not a sb3-crptpro artifact"):
        load_artifact(tmp_path / name)


def test_an_unknown_name_lists_the_shipped_ones_and_paths_still_work(tiny_artifact: Path) -> None:
    with pytest.raises(FileNotFoundError, match=rf"neither a file nor a shipped encoder \(shipped: .*{NAME}"):
        load_artifact("dmc-128px")
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_artifact_path("missing/dmc-64px")  # a path with a folder is never a name
    assert resolve_artifact_path(tiny_artifact) == tiny_artifact
    assert main(["train", "--task", "walker_walk", "--encoder", "dmc-128px", "--steps", "5"]) == 2


def test_list_and_inspect_show_budget_diagnostics_and_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = list_pretrained()
    assert list(shipped) == [NAME, INVDYN_NAME]
    for info in shipped.values():  # the same data, budget and seed; only the loss differs
        assert info["tasks"] == ["cheetah_run", "reacher_easy", "walker_run"] and info["image_size"] == 64
        assert info["updates"] == 6000 and info["batch_size"] == 64 and info["seed"] == 0
        assert info["diagnostics"]["eff_rank_min"] > 5  # not collapsed
        assert 8 * 2**20 < info["bytes"] < 12 * 2**20
    assert shipped[NAME]["inverse_dynamics"] == 0.0 and shipped[INVDYN_NAME]["inverse_dynamics"] == 1.0
    # one default, named in one place: the demo's encoder is it
    assert [n for n, info in shipped.items() if info["default"]] == [INVDYN_NAME] == [DEFAULT_PRETRAINED]
    assert DemoConfig().encoder == DEFAULT_PRETRAINED
    assert main(["inspect", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{NAME}\n") and "6000 updates at batch 64, seed 0" in out and "10.1 MiB" in out
    first, second = out.split(f"\n\n{INVDYN_NAME}\n")
    assert re.search(r"loss +CRPTpro\n", first) and re.search(
        r"loss +CRPTpro \+ inverse dynamics \(weight 1\)\n", second
    )
    assert "default " not in first and re.search(r"\n +default +yes: the encoder of the demo", second)
    assert main(["inspect", NAME]) == 0
    out = capsys.readouterr().out
    assert re.search(r"made by \(1\) +sb3-crptpro collect --tasks cheetah_run walker_run reacher_easy", out)
    assert re.search(r"made by \(2\) +sb3-crptpro pretrain --data data --out dmc-64px.safetensors", out)
    assert main(["inspect", "--list", "x"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fingerprint"), [(NAME, PREFIX_FINGERPRINT),
                                                   (INVDYN_NAME, INVDYN_PREFIX_FINGERPRINT)])  # fmt: skip
def test_the_recorded_commands_reproduce_the_data_and_a_prefix_of_the_run(name: str, fingerprint: dict[str, float],
                                                                          tmp_path: Path) -> None:  # fmt: skip
    meta = load_artifact(name).metadata
    collect_cmd, pretrain_cmd = meta["provenance"]["commands"]
    data, out = tmp_path / "data", tmp_path / "prefix.safetensors"
    argv = shlex.split(collect_cmd)[1:]
    argv[argv.index("--out") + 1] = str(data)
    assert main([*argv, "--no-progress"]) == 0
    for task, sha in meta["datasets"].items():  # the same frames, bit for bit
        assert manifest_sha256(data / task) == sha, task
    argv = shlex.split(pretrain_cmd)[1:]
    argv[argv.index("--data") + 1], argv[argv.index("--out") + 1] = str(data), str(out)
    argv[argv.index("--updates") + 1] = str(PREFIX_UPDATES)
    assert main([*argv, "--no-progress"]) == 0
    got = _fingerprint(out)
    assert got.keys() == fingerprint.keys()
    assert all(abs(got[k] - v) < PREFIX_ATOL for k, v in fingerprint.items()), got


@pytest.mark.slow
def test_the_wheel_contains_the_encoder_and_loads_it_after_installation(tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    wheel_dir = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(wheel_dir), str(root)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheel_dir.glob("sb3_crptpro-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert {f"sb3_crptpro/pretrained/{n}.safetensors" for n in (NAME, INVDYN_NAME)} <= set(names)
    # a fresh venv that installs the package from the wheel and borrows the dependencies of this environment (no
    # network): a plain path in a .pth file, so this environment's editable install of the package is not seen
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "deps.pth").write_text("\n".join(deps) + "\n")
    install = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall",
                              str(wheel)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    code = ("import sb3_crptpro, sys; from sb3_crptpro import load_artifact; a = load_artifact('dmc-64px'); "
            "print(a.path); print(a.metadata['tensor_sha256'])")  # fmt: skip
    proc = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path, sha = proc.stdout.split()
    assert str(venv) in path and sha == load_artifact(NAME).metadata["tensor_sha256"]
