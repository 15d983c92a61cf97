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
