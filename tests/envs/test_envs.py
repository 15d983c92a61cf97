"""Real-DMC tests of make_dmc_env / make_dmc_vec_env."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import CORE_TASKS
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import SubprocVecEnv

from sb3_crptpro import make_dmc_env, make_dmc_vec_env, resolve_task
from sb3_crptpro.envs import available_tasks


@pytest.mark.parametrize("task", CORE_TASKS)
def test_observation_space_and_first_obs(task: str) -> None:
    env = make_dmc_env(task, seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (9, 84, 84), np.uint8)
    obs, info = env.reset()
    assert obs.shape == (9, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert env.config.camera_id == (2 if task.startswith("quadruped") else 0)
    state_dim = info["state"].shape
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["state"].shape == state_dim and info["state"].dtype == np.float32
        assert isinstance(reward, float) and not terminated and not truncated
    env.close()


def test_sb3_check_env_passes() -> None:
    env = make_dmc_env("cartpole_swingup", image_size=64, render="fast", seed=0)
    check_env(env, warn=False)
    env.close()


@pytest.mark.parametrize("name", ["cheetah_run", "cheetah-run", "dm_control/cheetah-run-v0", "Cheetah_Run"])
def test_task_name_forms(name: str) -> None:
    assert resolve_task(name) == ("cheetah", "run")


def test_multi_underscore_names() -> None:
    assert resolve_task("ball_in_cup_catch") == ("ball_in_cup", "catch")
    assert resolve_task("finger-turn_hard") == ("finger", "turn_hard")


def test_unknown_task_lists_close_names() -> None:
    with pytest.raises(ValueError, match="cheetah_run"):
        make_dmc_env("cheeta_rnu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"render": "pretty"}, "render preset"), ({"frame_stack": 0}, "frame_stack"), ({"image_size": -1}, "image_size")],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_dmc_env("cheetah_run", **kwargs)


def _rollout(env: gym.Env, n: int, seed: int) -> tuple[list[np.ndarray], list[float]]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [obs], []
    for _ in range(n - 1):
        obs, reward, *_ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
    return observations, rewards


def test_same_seed_same_observations_and_rewards(fast_env_kwargs: dict) -> None:
    a = _rollout(make_dmc_env("walker_walk", **fast_env_kwargs), 10, seed=3)
    b = _rollout(make_dmc_env("walker_walk", **fast_env_kwargs), 10, seed=3)
    c = _rollout(make_dmc_env("walker_walk", **fast_env_kwargs), 10, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert a[1] == b[1]
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], c[0], strict=True))


def test_constructor_seed_is_deterministic(fast_env_kwargs: dict) -> None:
    first = [make_dmc_env("reacher_easy", seed=7, **fast_env_kwargs).reset()[0] for _ in range(2)]
    assert np.array_equal(*first)


def test_action_repeat_sums_rewards(fast_env_kwargs: dict) -> None:
    repeated = make_dmc_env("cheetah_run", action_repeat=2, seed=1, **fast_env_kwargs)
    single = make_dmc_env("cheetah_run", action_repeat=1, seed=1, **fast_env_kwargs)
    repeated.reset(seed=1)
    single.reset(seed=1)
    rng = np.random.default_rng(0)
    total = 0.0
    for _ in range(20):
        action = rng.uniform(-1, 1, size=6).astype(np.float32)
        obs_r, reward_r, _, _, info_r = repeated.step(action)
        manual = 0.0
        for _ in range(2):
            obs_s, reward_s, _, _, info_s = single.step(action)
            manual += reward_s
        assert reward_r == pytest.approx(manual, abs=1e-12)
        np.testing.assert_array_equal(obs_r[-3:], obs_s[-3:])
        np.testing.assert_array_equal(info_r["state"], info_s["state"])
        total += reward_r
    assert total > 0  # cheetah_run pays for forward speed; random pushes give some


def test_frame_stack_order_and_reset_fill(fast_env_kwargs: dict) -> None:
    env = make_dmc_env("cartpole_swingup", frame_stack=3, seed=0, **fast_env_kwargs)
    obs, _ = env.reset()
    first = obs[:3]
    np.testing.assert_array_equal(obs[3:6], first)
    np.testing.assert_array_equal(obs[6:9], first)
    frames = [first, first, first]  # reset fills the stack with the first frame
    for _ in range(4):
        obs, *_ = env.step(np.ones(1, dtype=np.float32))
        frames.append(env.render().transpose(2, 0, 1))
        # newest frame last, previous ones shifted left
        np.testing.assert_array_equal(obs[6:9], frames[-1])
        np.testing.assert_array_equal(obs[3:6], frames[-2])
        np.testing.assert_array_equal(obs[0:3], frames[-3])
    assert not np.array_equal(frames[0], frames[-1])
    assert len(frames) == 7


@pytest.mark.parametrize("action_repeat", [4, 3])
def test_truncation_after_1000_env_steps(action_repeat: int) -> None:
    env = make_dmc_env("cartpole_balance", image_size=16, render="fast", action_repeat=action_repeat, seed=0)
    env.reset()
    expected = -(-1000 // action_repeat)  # ceil: the last step is cut short
    for step in range(1, expected + 1):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        if step < expected:
            assert not truncated, step
    assert truncated


def test_fast_preset_close_to_paper_but_not_identical() -> None:
    paper = make_dmc_env("walker_run", render="paper", seed=0)
    fast = make_dmc_env("walker_run", render="fast", seed=0)
    assert paper.unwrapped.render_preset == "paper" and fast.unwrapped.metadata["render_preset"] == "fast"
    obs_p, _ = paper.reset()
    obs_f, _ = fast.reset()
    diffs = [np.abs(obs_p.astype(int) - obs_f.astype(int)).mean()]
    for _ in range(5):
        action = paper.action_space.sample()
        obs_p, *_ = paper.step(action)
        obs_f, *_ = fast.step(action)
        diffs.append(np.abs(obs_p.astype(int) - obs_f.astype(int)).mean())
    assert min(diffs) > 0.1  # shadows/reflections really are gone
    assert max(diffs) < 12.0  # ...but the scene is the same


def test_preset_reachable_through_wrappers() -> None:
    env = Monitor(make_dmc_env("cheetah_run", render="fast", image_size=16))
    assert env.unwrapped.render_preset == "fast"
    assert env.unwrapped.metadata["dmc_config"]["image_size"] == 16


def test_vec_env_dummy_with_monitor(tmp_path) -> None:
    venv = make_dmc_vec_env("reacher_easy", n_envs=2, seed=5, monitor_dir=tmp_path, image_size=32, render="fast")
    obs = venv.reset()
    assert obs.shape == (2, 9, 32, 32) and obs.dtype == np.uint8
    assert not np.array_equal(obs[0], obs[1])  # different seeds per env
    obs, rewards, _, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
    assert rewards.shape == (2,) and "state" in infos[0]
    assert venv.env_is_wrapped(Monitor) == [True, True]
    venv.close()


def test_vec_env_subprocess() -> None:
    venv = make_dmc_vec_env("cartpole_swingup", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, image_size=16)
    obs = venv.reset()
    assert obs.shape == (2, 9, 16, 16)
    venv.step(np.zeros((2, 1), dtype=np.float32))
    assert venv.get_attr("render_preset") == ["paper", "paper"]
    venv.close()


def test_fork_start_method_is_refused_not_hung(tiny_artifact) -> None:
    from sb3_crptpro import make_encoded_vec_env

    parent = make_dmc_env("cartpole_swingup", image_size=16)
    parent.reset(seed=0)  # this process has rendered: a forked worker's EGL context would hang
    with pytest.raises(ValueError, match=r"start_method='fork' hangs once this process has rendered.*forkserver"):
        make_dmc_vec_env("cartpole_swingup", n_envs=2, vec_env_cls=SubprocVecEnv, image_size=16,
                         vec_env_kwargs={"start_method": "fork"})  # fmt: skip
    with pytest.raises(ValueError, match="chooses vec_env_cls, vec_env_kwargs and wrapper_class itself"):
        make_encoded_vec_env("cartpole_swingup", 2, tiny_artifact, vec_env_kwargs={"start_method": "fork"})
    parent.close()


def _gl_in_subprocess(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    if value is not None:
        env["MUJOCO_GL"] = value
    code = "import os, sb3_crptpro; print(os.environ['MUJOCO_GL'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_mujoco_gl_default_and_user_value() -> None:
    assert _gl_in_subprocess(None) == "egl"
    assert _gl_in_subprocess("glfw") == "glfw"


def test_persistent_camera_renders_what_dm_control_renders() -> None:
    for preset in ("paper", "fast"):
        env = make_dmc_env("walker_run", render=preset, seed=0)
        env.reset()
        for _ in range(2):
            obs, *_ = env.step(env.action_space.sample())
            expected = env.unwrapped._physics.render(
                84, 84, camera_id=0, render_flag_overrides=env.unwrapped._render_overrides
            )
            np.testing.assert_array_equal(obs[-3:], expected.transpose(2, 0, 1))
        env.close()


def test_public_api_resolves() -> None:
    import sb3_crptpro

    for name in sb3_crptpro.__all__:
        assert getattr(sb3_crptpro, name) is not None
    with pytest.raises(AttributeError):
        _ = sb3_crptpro.not_a_name


def test_render_mode_through_gym_make_and_make_dmc_env() -> None:
    """rl-zoo3 and VecVideoRecorder pass render_mode (issue 14); 'human' has no window to go to."""
    import sb3_crptpro.zoo  # noqa: F401  (registers CRPTpro/<task>-v0)

    env = gym.make("CRPTpro/cartpole_swingup-v0", render_mode="rgb_array", image_size=32)
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert env.render_mode == "rgb_array" and frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, obs[-3:].transpose(1, 2, 0))  # the newest frame of the observation
    env.close()
    quiet = make_dmc_env("cartpole_swingup", image_size=32, render="fast", render_mode=None)
    quiet.reset(seed=0)
    assert quiet.render_mode is None and quiet.render().shape == (32, 32, 3)
    quiet.close()
    with pytest.raises(ValueError, match=r"render_mode must be None or 'rgb_array'.*got 'human'"):
        make_dmc_env("cartpole_swingup", image_size=32, render_mode="human")
    with pytest.raises(ValueError, match="render_mode must be None"):
        gym.make("CRPTpro/cartpole_swingup-v0", render_mode="human")


@pytest.mark.parametrize(("task", "frame_stack"), [("reacher_easy", 3), ("cheetah_run", 2), ("InvertedPendulum-v5", 3)])
def test_episode_state_replays_the_episode_exactly(task: str, frame_stack: int) -> None:
    """get_episode_state / set_episode_state put another env where this one is, mid-episode: reacher's target lives in
    the model (set at reset from the task's random state); InvertedPendulum-v5 is a Gymnasium env with a Generator,
    whose viewer aims its camera where the env was at its first render (so the camera is part of the state)."""
    import pickle

    from sb3_crptpro import make_pixel_env

    kwargs = {"image_size": 32, "frame_stack": frame_stack, "action_repeat": 4, "render": "fast", "seed": 5}
    env, other = make_pixel_env(task, **kwargs), make_pixel_env(task, **kwargs)
    rng = np.random.default_rng(0)
    assert other.set_episode_state(env.get_episode_state()) is None  # before any reset
    env.reset()
    for _ in range(300):  # through at least one episode end (250 agent steps per DMC episode)
        if any(env.step(rng.uniform(-1, 1, env.action_space.shape))[2:4]):
            env.reset()
    env.step(rng.uniform(-1, 1, env.action_space.shape))
    state = pickle.loads(pickle.dumps(env.get_episode_state()))
    observation = other.set_episode_state(state)
    assert np.array_equal(observation, np.concatenate(env._frames))  # the stack holds the same frames
    for _ in range(260):  # the same transitions from here on, across the next reset too
        action = rng.uniform(-1, 1, env.action_space.shape)
        a, b = env.step(action), other.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4] and np.array_equal(a[4]["state"], b[4]["state"])
        if a[2] or a[3]:
            assert np.array_equal(env.reset()[0], other.reset()[0])
    assert np.array_equal(env.action_space.sample(), other.action_space.sample())
    bad = {**state, "actions": np.zeros((2, 7))}
    with pytest.raises(ValueError, match="taken from another env"):
        other.set_episode_state(bad)
    env.close()
    other.close()


def test_every_registered_id_builds_and_only_suite_tasks_are_tasks() -> None:
    """shimmy's `dm_control/compatibility-env-v0` was read as a task: `CRPTpro/compatibility_env-v0` was registered
    and `gym.make` of it raised a TypeError."""
    from dm_control import suite

    from sb3_crptpro.sb3.zoo import register_envs

    assert sorted(available_tasks().values()) == sorted(suite.ALL_TASKS)
    with pytest.raises(ValueError, match=r"Unknown DeepMind Control task 'compatibility_env'"):
        resolve_task("compatibility_env")
    ids = register_envs()
    assert len(ids) == len(suite.ALL_TASKS)
    for ident in ids:
        gym.make(ident, image_size=16, frame_stack=1).close()
