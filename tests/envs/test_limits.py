"""Limits a task sets itself: unbounded action spaces (refused by collection) and the episode length dm_control
enforces, which a longer Gymnasium ``TimeLimit`` cannot extend (warned about)."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from sb3_crptpro import check_time_limit, collect, make_dmc_env, make_pixel_vec_env
from sb3_crptpro.envs.tasks import check_bounded_actions

ENV = {"image_size": 16, "render": "fast", "frame_stack": 1}


def test_collect_refuses_unbounded_actions_before_writing(tmp_path: Path) -> None:
    env = make_dmc_env("lqr_lqr_2_1", **ENV)
    assert float(env.action_space.high.max()) == 1e10  # dm_control's bound for an actuator without a range
    env.close()
    with pytest.raises(ValueError, match=r"lqr_lqr_2_1 has unbounded actions \(bounds -1e\+10 to 1e\+10\)") as error:
        collect(["lqr_lqr_2_1"], tmp_path, transitions_per_domain=4, n_workers=1, progress=False, **ENV)
    assert "\n" not in str(error.value) and not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="size ~inf"):
        check_bounded_actions("x", gym.spaces.Box(-np.inf, np.inf, (2,)))
    check_bounded_actions("x", gym.spaces.Box(-1.0, 1.0, (2,)))  # a range: accepted


def test_train_refuses_unbounded_actions_and_leaves_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`train` ran on lqr_lqr_2_1 without a word: SAC's warm-up draws uniform actions of size ~1e10 there and its
    squashed actions are scaled to the same bounds."""
    from sb3_crptpro.app.cli import main

    argv = ["train", "--task", "lqr_lqr_2_1", "--encoder", "dmc-64px", "--mode", "embedding", "--steps", "4",
            "--learning-starts", "2", "--eval-freq", "0", "--log-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "lqr_lqr_2_1 has unbounded actions" in err and "SAC/TQC" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.rglob("config.yml"))  # the run directory it began is gone


def _episode_length(env: gym.Env) -> int:
    env.reset(seed=0)
    for step in range(1, 10_000):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            return step
    raise AssertionError("no episode end")


def test_a_time_limit_longer_than_dm_controls_is_warned_about_with_the_length_episodes_have() -> None:
    env = make_dmc_env("cartpole_swingup", action_repeat=8, **ENV)
    assert env.episode_limit == 125  # 1000 physics steps at action repeat 8
    longer = gym.wrappers.TimeLimit(env, max_episode_steps=400)
    with pytest.warns(UserWarning, match=r"max_episode_steps=400 is more than cartpole_swingup allows: it ends every "
                      r"episode after 125 agent steps"):  # fmt: skip
        assert check_time_limit(longer) == [400]
    assert _episode_length(longer) == 125  # what the warning says: the TimeLimit is never reached
    shorter = gym.wrappers.TimeLimit(make_dmc_env("cartpole_swingup", action_repeat=8, **ENV), max_episode_steps=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_time_limit(shorter) == []
    assert _episode_length(shorter) == 100
    longer.close()
    shorter.close()


def test_the_check_runs_on_gym_make_and_on_a_vec_env_wrapper_class() -> None:
    from sb3_crptpro.zoo import env_id, register_envs

    register_envs()
    with pytest.warns(UserWarning, match="max_episode_steps=400 is more than cartpole_swingup allows"):
        env = gym.make(env_id("cartpole_swingup"), max_episode_steps=400, action_repeat=8, **ENV)
    assert _episode_length(env) == 125
    env.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a limit within the task's own: no warning
        env = gym.make(env_id("cartpole_swingup"), max_episode_steps=100, action_repeat=8, **ENV)
    assert _episode_length(env) == 100
    env.close()
    with pytest.warns(UserWarning, match=r"after 250 agent steps at action repeat 4"):
        venv = make_pixel_vec_env("cartpole_swingup", 1, action_repeat=4,
                                  wrapper_class=lambda e: gym.wrappers.TimeLimit(e, 400), **ENV)  # fmt: skip
    venv.close()


def test_the_package_vec_env_wrappers_check_envs_wrapped_by_hand(tiny_artifact: Path) -> None:
    """`TimeLimit(make_dmc_env(...), 5000)` built by hand got no warning: the env cannot see the wrapper, and
    neither gym.make nor make_pixel_vec_env's wrapper_class was involved."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sb3_crptpro import PrototypeIntrinsicReward, VecEncodeObservation, env_settings, load_artifact

    settings = env_settings(load_artifact(tiny_artifact).metadata, 8)
    factories = [_HandWrapped(settings, 400), _HandWrapped(settings, 100)]  # 125 agent steps at action repeat 8
    venv = DummyVecEnv(factories)
    try:
        with pytest.warns(UserWarning, match="max_episode_steps=400 is more than cartpole_swingup allows") as caught:
            VecEncodeObservation(venv, tiny_artifact)
        assert len([w for w in caught if "max_episode_steps" in str(w.message)]) == 1  # the 100-step one is fine
        with pytest.warns(UserWarning, match="max_episode_steps=400"):
            PrototypeIntrinsicReward(venv, tiny_artifact)
    finally:
        venv.close()
    plain = DummyVecEnv([lambda: Monitor(make_dmc_env("cartpole_swingup", **settings))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no TimeLimit: nothing to say
        VecEncodeObservation(plain, tiny_artifact).close()


class _HandWrapped:
    """An env factory: a pixel env in a TimeLimit of ``limit`` agent steps, then SB3's Monitor."""

    def __init__(self, settings: dict, limit: int) -> None:
        self.settings, self.limit = settings, limit

    def __call__(self) -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        return Monitor(gym.wrappers.TimeLimit(make_dmc_env("cartpole_swingup", **self.settings), self.limit))
