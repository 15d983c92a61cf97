"""FrameStackReplayBuffer: the same stacks as SB3's ReplayBuffer on the same transitions, about one frame each."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

from sb3_crptpro import make_dmc_vec_env
from sb3_crptpro.sb3.buffers import FrameStackReplayBuffer
from sb3_crptpro.sb3.sac import AugmentedFrameStackReplayBuffer


class StackEnv(gym.Env):
    """Random 3-frame stacks (newest last); reset repeats the first frame; terminates at random."""

    def __init__(self, stack: bool = True) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (9, 12, 12), np.uint8)
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.stack = stack

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, (3, 12, 12), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.obs = np.concatenate([self._frame()] * 3)
        return self.obs.copy(), {}

    def step(self, action):
        fresh = np.concatenate([self._frame() for _ in range(3)])
        self.obs = np.concatenate([self.obs[3:], self._frame()]) if self.stack else fresh
        terminated = bool(self.np_random.random() < 0.04)
        return self.obs.copy(), float(self.np_random.normal()), terminated, False, {}


class TeeBuffer(FrameStackReplayBuffer):
    """Feeds SB3's ReplayBuffer (``NStepReplayBuffer`` when ``n_steps > 1``) the exact same ``add`` calls (SB3's own
    terminal-observation handling)."""

    def __init__(self, buffer_size, observation_space, action_space, **kwargs):
        super().__init__(buffer_size, observation_space, action_space, **kwargs)
        n_steps, gamma, n_envs = kwargs.get("n_steps", 1), kwargs.get("gamma", 0.99), kwargs["n_envs"]
        if n_steps > 1:
            self.reference = NStepReplayBuffer(buffer_size, observation_space, action_space, n_envs=n_envs,
                                               n_steps=n_steps, gamma=gamma)  # fmt: skip
        else:
            self.reference = ReplayBuffer(buffer_size, observation_space, action_space, n_envs=n_envs)

    def add(self, *args):
        super().add(*args)
        self.reference.add(*args)


def _fill(env, steps: int, buffer_size: int, **buffer_kwargs) -> TeeBuffer:
    model = SAC("MlpPolicy", env, buffer_size=buffer_size, learning_starts=10**9, replay_buffer_class=TeeBuffer,
                replay_buffer_kwargs=buffer_kwargs, seed=0)  # fmt: skip
    model.learn(steps)
    return model.replay_buffer


def _assert_same_as_reference(buffer: TeeBuffer, only_valid: bool = False) -> int:
    ref = buffer.reference
    assert (buffer.pos, buffer.full) == (ref.pos, ref.full)
    upper = buffer.buffer_size if buffer.full else buffer.pos
    pos, envs = np.divmod(np.arange(upper * buffer.n_envs), buffer.n_envs)
    if only_valid:
        keep = buffer._valid(pos, envs)
        pos, envs = pos[keep], envs[keep]
    ours = buffer._get_samples(pos * buffer.n_envs + envs)
    np.testing.assert_array_equal(ours.observations.numpy(), ref.observations[pos, envs])
    np.testing.assert_array_equal(ours.next_observations.numpy(), ref.next_observations[pos, envs])
    np.testing.assert_array_equal(ours.actions.numpy(), ref.actions[pos, envs])
    np.testing.assert_array_equal(ours.rewards.numpy()[:, 0], ref.rewards[pos, envs])
    expected_dones = ref.dones[pos, envs] * (1 - ref.timeouts[pos, envs])
    np.testing.assert_array_equal(ours.dones.numpy()[:, 0], expected_dones)
    return len(pos)


def test_same_stacks_as_sb3_across_episode_ends_timeouts_and_two_envs() -> None:
    env = make_vec_env(lambda: TimeLimit(StackEnv(), max_episode_steps=15), n_envs=2, seed=1)
    buffer = _fill(env, steps=400, buffer_size=2000)
    assert buffer.reference.dones.sum() > 10 and buffer.reference.timeouts.sum() > 5  # both kinds of episode end
    assert _assert_same_as_reference(buffer) == 400
    # one frame per step plus one per episode start (reset stacks repeat their first frame)
    starts = 2 + buffer.reference.dones[: buffer.pos - 1].sum()  # a done in the last step has no stored reset yet
    assert buffer.frame_count.sum() == 400 + starts
    assert buffer.frames_per_transition <= 1.1


def test_wraps_around_like_sb3() -> None:
    env = make_vec_env(lambda: TimeLimit(StackEnv(), max_episode_steps=15), n_envs=2, seed=2)
    buffer = _fill(env, steps=300, buffer_size=60)  # 30 positions per env, wrapped 5 times
    assert buffer.full
    assert _assert_same_as_reference(buffer) == 60
    batch = buffer.sample(16)
    assert batch.observations.shape == (16, 9, 12, 12)


def _assert_same_n_step_samples_as_sb3(buffer: TeeBuffer) -> int:
    """Every stored (position, env) through both buffers' ``_get_samples``: SB3's draws its env indices from
    ``np.random``, so the same seed gives ours the same ones."""
    upper = buffer.buffer_size if buffer.full else buffer.pos
    pos = np.repeat(np.arange(upper), 3)
    np.random.seed(5)
    envs = np.random.randint(0, buffer.n_envs, size=pos.shape)
    ours = buffer._get_samples(pos * buffer.n_envs + envs)
    np.random.seed(5)
    ref = buffer.reference._get_samples(pos)
    for field in ("observations", "actions", "next_observations", "dones", "rewards", "discounts"):
        np.testing.assert_array_equal(getattr(ours, field).numpy(), getattr(ref, field).numpy(), err_msg=field)
    discounts = ours.discounts.numpy()
    assert np.isclose(discounts, 0.9**3).any() and np.isclose(discounts, 0.9).any()  # full 3 steps, and cut at 1
    return len(pos)


@pytest.mark.parametrize("buffer_size", [2000, 60])  # not full; wrapped 5 times (the cut at the newest transition)
def test_n_step_samples_equal_sb3_n_step_buffer(buffer_size: int) -> None:
    env = make_vec_env(lambda: TimeLimit(StackEnv(), max_episode_steps=15), n_envs=2, seed=4)
    buffer = _fill(env, steps=300, buffer_size=buffer_size, n_steps=3, gamma=0.9)
    assert buffer.reference.dones.sum() > 2 and buffer.reference.timeouts.sum() > 2  # both kinds of episode end
    assert _assert_same_n_step_samples_as_sb3(buffer) == 3 * min(150, buffer_size // 2)  # positions x 3
    assert buffer.sample(8).discounts.shape == (8, 1)


def test_non_stack_observations_round_trip_and_warn() -> None:
    env = make_vec_env(lambda: StackEnv(stack=False), n_envs=1, seed=3)
    with pytest.warns(UserWarning, match="do not look like frame stacks"):
        buffer = _fill(env, steps=1200, buffer_size=1000)
    # the frame ring (1050 frames) holds only the newest transitions; those are exact, the others are never sampled
    assert 0 < _assert_same_as_reference(buffer, only_valid=True) < 1000
    sampled = buffer.sample(64).observations.numpy()
    stored = {buffer.reference.observations[p, 0].tobytes() for p in range(1000)}
    assert all(obs.tobytes() in stored for obs in sampled)


def test_real_dmc_env_two_envs_with_dmc_timeouts() -> None:
    env = make_dmc_vec_env("cartpole_swingup", n_envs=2, seed=0, image_size=16, action_repeat=50, render="fast")
    buffer = _fill(env, steps=100, buffer_size=400)  # 20 steps per episode: dm_control's own time limit
    assert buffer.reference.timeouts.sum() >= 4
    assert _assert_same_as_reference(buffer) == 100
    assert buffer.frames_per_transition <= 1.1
    frame_bytes = buffer.frames[0].nbytes
    stored_bytes = buffer.frames.nbytes + buffer.obs_frames.nbytes + buffer.next_frames.nbytes
    assert stored_bytes / buffer.buffer_size / buffer.n_envs < 1.1 * frame_bytes + 64


def test_rejects_non_image_spaces_and_odd_channels() -> None:
    action_space = gym.spaces.Box(-1, 1, (1,))
    with pytest.raises(ValueError, match="raw channel-first pixels"):
        FrameStackReplayBuffer(10, gym.spaces.Box(0, 1, (4,)), action_space)
    with pytest.raises(ValueError, match="whole number"):
        FrameStackReplayBuffer(10, gym.spaces.Box(0, 255, (9, 4, 4), np.uint8), action_space, frame_channels=2)


def test_augmenting_variant_shifts_samples() -> None:
    space = gym.spaces.Box(0, 255, (9, 16, 16), np.uint8)
    buffer = AugmentedFrameStackReplayBuffer(50, space, gym.spaces.Box(-1, 1, (1,)), augment_seed=0)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (1, 9, 16, 16), dtype=np.uint8)
    for _ in range(20):
        next_obs = np.concatenate([obs[:, 3:], rng.integers(0, 256, (1, 3, 16, 16), dtype=np.uint8)], axis=1)
        buffer.add(obs, next_obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
        obs = next_obs
    plain = FrameStackReplayBuffer._get_samples(buffer, np.arange(20))
    augmented = buffer._get_samples(np.arange(20))
    assert not np.array_equal(plain.observations.numpy(), augmented.observations.numpy())
    assert not np.array_equal(plain.next_observations.numpy(), augmented.next_observations.numpy())
    again = FrameStackReplayBuffer._get_samples(buffer, np.arange(20))  # storage untouched by augmentation
    np.testing.assert_array_equal(again.observations.numpy(), plain.observations.numpy())
