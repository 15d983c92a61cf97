"""Shared test setup: headless rendering and small, fast env settings."""

import os
import tarfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
import yaml

#: tasks the issue asks us to check; quadruped uses camera 2
CORE_TASKS = ["cheetah_run", "walker_run", "quadruped_run", "cartpole_swingup", "reacher_easy"]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (path relative to it -> content), the lock file left out: what a refused or failed
    command must leave unchanged."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".lock")
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


@pytest.fixture(scope="session")
def fast_env_kwargs() -> dict:
    """Small, fast-rendering env settings for tests that step many times."""
    return {"image_size": 32, "render": "fast"}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Two real DMC domains, 200 transitions each (4 episodes of 50 steps), 24 px, fast preset."""
    from sb3_crptpro.data import collect

    out = tmp_path_factory.mktemp("tiny_data")
    collect(["cartpole_swingup", "reacher_easy"], out, transitions_per_domain=200, chunk_transitions=100, n_workers=1,
            image_size=24, action_repeat=20, render="fast", progress=False)  # fmt: skip
    return out


@pytest.fixture(scope="session")
def tiny_artifact(tiny_data, tmp_path_factory):
    """A CRPTpro artifact (9x24x24 observations, 16 prototypes) pretrained for 2 updates on ``tiny_data``."""
    from sb3_crptpro.data import CrossDomainDataset
    from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer

    config = PretrainConfig(updates=2, batch_size=8, num_protos=16, progress=False, checkpoint_every=0)
    trainer = Pretrainer(config, CrossDomainDataset(tiny_data))
    trainer.fit()
    return trainer.save(tmp_path_factory.mktemp("artifact") / "encoder.safetensors")


#: a training run written by sb3-crptpro 0.2.0 (see tests/app/fixtures/README.md)
RUN_0_2_0 = Path(__file__).parent / "app" / "fixtures" / "run_0.2.0_reference.tar.xz"


@pytest.fixture
def run_0_2_0(tmp_path: Path) -> tuple[Path, Path]:
    """The 0.2.0 reference-mode run (stopped at its checkpoint of agent step 40, checkpoints every 20) unpacked in
    ``tmp_path``, and its encoder beside it, which moved: the run records it at a path of the machine that made the
    fixture."""
    with tarfile.open(RUN_0_2_0) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python < 3.10.12 has no filters
        archive.extractall(tmp_path, **safe)
    run = tmp_path / "sac" / "cartpole_swingup_1"
    saved = yaml.safe_load((run / "config.yml").read_text())
    assert saved["package_version"] == "0.2.0" and saved["train"]["mode"] == "reference"
    assert not Path(saved["encoder"]["path"]).exists()
    return run, tmp_path / "encoder.safetensors"
