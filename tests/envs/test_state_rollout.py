"""Rollouts of physics states, rendered afterwards, and frame stacks at any gap (per-variable state probes)."""

from __future__ import annotations

import numpy as np
import pytest

from sb3_crptpro import make_dmc_env
from sb3_crptpro.envs.state_rollout import render_rollout, rollout_states, stack_frames


def test_stack_frames_against_a_reference() -> None:
    frames = np.arange(7, dtype=np.uint8)[:, None, None, None].repeat(3, axis=1)  # frame i is all i: [7, 3, 1, 1]
    step = np.array([0, 1, 2, 3, 4, 0, 1])  # episodes of 5 and 2 records
    out = stack_frames(frames, step, gap=2)
    assert out.shape == (7, 9, 1, 1)
    newest_of_each = out[:, ::3, 0, 0]  # channel 0 of frames oldest, middle, newest
    expected = [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 3], [0, 2, 4], [5, 5, 5], [5, 5, 6]]
    np.testing.assert_array_equal(newest_of_each, expected)
    with pytest.raises(ValueError, match="gap"):
        stack_frames(frames, step, gap=0)


def test_rendered_rollout_equals_the_pixel_env_on_the_same_actions() -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, (12, 1)).astype(np.float32)
    it = iter(actions)
    rollout = rollout_states("cartpole_swingup", 1, action_repeat=4, record_every=2, policy=lambda s: next(it),
                             seed=3, max_records=12)  # fmt: skip
    assert len(rollout) == 12 and rollout.names[0] == "cart position" and rollout.state.shape == (12, 5)
    np.testing.assert_array_equal(rollout.step, np.arange(12))
    frames = render_rollout(rollout, image_size=32, render="fast")
    env = make_dmc_env("cartpole_swingup", image_size=32, render="fast", action_repeat=2, frame_stack=1, seed=3)
    try:
        obs, info = env.reset(seed=3)
        seen, states = [obs], [info["state"]]
        for i in range(11):
            obs, *_, info = env.step(actions[i // 2])  # an action is held for 2 records of 2 env steps
            seen.append(obs)
            states.append(info["state"])
    finally:
        env.close()
    np.testing.assert_array_equal(frames, np.stack(seen))
    np.testing.assert_allclose(rollout.state, np.stack(states), rtol=1e-6)
    assert len(rollout.episode_returns) == 1 and rollout.episode_returns[0] > 0


def test_rendered_rollout_shows_each_episodes_reacher_target() -> None:
    """reacher draws its target into the model at each reset (not into the state): every episode's frames show that
    episode's target, as the pixel env does."""
    actions = np.random.default_rng(1).uniform(-1, 1, (6, 2)).astype(np.float32)
    it = iter(actions)
    rollout = rollout_states("reacher_easy", 2, action_repeat=2, policy=lambda s: next(it), seed=5, max_records=3)
    assert rollout.geom_pos.shape[0] == 2 and not np.array_equal(rollout.geom_pos[0], rollout.geom_pos[1])
    frames = render_rollout(rollout, image_size=32, render="fast")
    env = make_dmc_env("reacher_easy", image_size=32, render="fast", action_repeat=2, frame_stack=1, seed=5)
    seen = []
    try:
        for ep in range(2):
            obs, _ = env.reset(seed=5 + ep)
            seen.append(obs)
            for i in range(2):
                obs, *_ = env.step(actions[3 * ep + i])
                seen.append(obs)
    finally:
        env.close()
    np.testing.assert_array_equal(frames, np.stack(seen))
    assert not np.array_equal(frames[0], frames[3])  # two targets, two first frames


def test_rollout_rejects_a_record_interval_that_does_not_divide_the_action_repeat() -> None:
    with pytest.raises(ValueError, match="record_every"):
        rollout_states("cartpole_swingup", 1, action_repeat=8, record_every=3)
