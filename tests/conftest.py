"""Shared test setup: headless rendering and small, fast env settings."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

#: tasks the issue asks us to check; quadruped uses camera 2
CORE_TASKS = ["cheetah_run", "walker_run", "quadruped_run", "cartpole_swingup", "reacher_easy"]


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
