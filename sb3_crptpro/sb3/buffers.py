"""A pixel replay buffer that stores each frame once and rebuilds frame stacks when sampling.

SB3's ``ReplayBuffer`` keeps ``obs`` and ``next_obs`` as full stacks: with 3 stacked frames that is 6 frames per
transition. Consecutive stacks share all but one frame, so :class:`FrameStackReplayBuffer` keeps one ring of frames
per env and, per transition, the ring indices of the frames that make up ``obs`` and ``next_obs``.

Deduplication is decided by comparing pixels, never assumed: a stack is reused only when ``obs`` equals the previous
``next_obs`` of that env, and ``next_obs`` shares frames with ``obs`` only when its older frames equal the newer
frames of ``obs``. Episode ends (terminal observations, timeouts), resets and several envs are therefore handled
exactly; inputs that are not frame stacks still round-trip, they just cost more frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.sb3.spaces import check_pixel_space

__all__ = ["FrameStackReplayBuffer"]

#: after this many added transitions, warn once if more than this many frames per transition were stored
_WARN_AFTER, _WARN_RATIO = 1000, 1.5


class FrameStackReplayBuffer(ReplayBuffer):
    """Replay buffer for channel-first stacked uint8 frames ``[k * c, H, W]`` (newest frame last) that stores about
    one frame per transition; a drop-in ``replay_buffer_class`` for SB3 off-policy algorithms.

    Frames live in one ring per env of ``buffer_size // n_envs + frame_margin`` frames. Sampling only returns
    transitions whose frames are all still stored (with frame stacks, every stored transition is).

    :param buffer_size: maximum number of transitions (as in SB3)
    :param observation_space: ``Box`` of shape ``[k * c, H, W]``
    :param action_space: action space
    :param device: torch device of the sampled tensors
    :param n_envs: number of parallel envs
    :param optimize_memory_usage: accepted for SB3 compatibility; frames are always stored once
    :param handle_timeout_termination: treat ``TimeLimit.truncated`` as not done when bootstrapping (as SB3)
    :param frame_channels: channels per frame ``c`` (default: 3 if the channel count divides by 3, else 1)
    :param frame_margin: extra ring frames per env beyond one per transition (default: 5% of the capacity, at
        least ``4 * k``)
    :param n_steps: sample ``n``-step returns (1: ordinary transitions). The targets are those of SB3's
        ``NStepReplayBuffer`` (the discounted sum of up to ``n`` rewards, cut at the first episode end or timeout and
        at the newest stored transition; ``next_observations`` and ``dones`` of the last step; ``discounts`` =
        ``gamma ** steps``), checked against it on the same transitions in the tests
    :param gamma: discount of the ``n``-step returns
    :raises ValueError: ``n_steps`` not an integer >= 1, ``gamma`` outside (0, 1], or channels that are not whole
        frames
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        frame_channels: int | None = None,
        frame_margin: int | None = None,
        n_steps: int = 1,
        gamma: float = 0.99,
    ) -> None:
        check_pixel_space(observation_space, type(self).__name__)
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.n_steps, self.gamma = int(n_steps), float(gamma)
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        channels = observation_space.shape[0]
        self.frame_channels = frame_channels or (3 if channels % 3 == 0 else 1)
        if channels % self.frame_channels:
            raise ValueError(f"{channels} channels are not a whole number of {self.frame_channels}-channel frames")
        self.frame_stack = channels // self.frame_channels
        margin = frame_margin if frame_margin is not None else max(self.buffer_size // 20, 4 * self.frame_stack)
        self.frame_capacity = self.buffer_size + margin
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination

        k, size, n = self.frame_stack, self.buffer_size, n_envs
        frame_shape = (self.frame_channels, *observation_space.shape[1:])
        self.frames = np.zeros((self.frame_capacity, n, *frame_shape), dtype=observation_space.dtype)
        self.frame_count = np.zeros(n, dtype=np.int64)  # frames ever written per env (absolute index of the next)
        self.obs_frames = np.zeros((size, n, k), dtype=np.int64)  # absolute frame indices of obs, oldest first
        self.next_frames = np.zeros((size, n, k), dtype=np.int64)
        self.actions = np.zeros((size, n, self.action_dim), dtype=self._maybe_cast_dtype(action_space.dtype))
        self.rewards = np.zeros((size, n), dtype=np.float32)
        self.dones = np.zeros((size, n), dtype=np.float32)
        self.timeouts = np.zeros((size, n), dtype=np.float32)
        self._last_next = np.zeros((n, *observation_space.shape), dtype=observation_space.dtype)
        self._last_next_frames = np.zeros((n, k), dtype=np.int64)
        self._has_last = np.zeros(n, dtype=bool)
        self.transitions_added = 0
        self._warned = False

    #: attributes added after sb3-crptpro 0.2.0, with the value that gives a buffer pickled before them (a replay
    #: buffer saved in a 0.2.0 checkpoint) its old behaviour: 1-step returns
    ADDED_SINCE_0_2_0: dict[str, Any] = {"n_steps": 1, "gamma": 0.99}  # noqa: RUF012 (read-only)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle (SB3's ``load_replay_buffer``); a buffer pickled by an older version gets the defaults of the
        attributes it lacks (:attr:`ADDED_SINCE_0_2_0`)."""
        self.__dict__.update({**self.ADDED_SINCE_0_2_0, **state})

    @property
    def frames_per_transition(self) -> float:
        """Frames written per transition added so far (about ``1 + 1 / episode_length`` for frame stacks)."""
        return float(self.frame_count.sum()) / max(self.transitions_added, 1)

    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays."""
        arrays = [self.frames, self.obs_frames, self.next_frames, self.actions, self.rewards, self.dones]
        return sum(a.nbytes for a in [*arrays, self.timeouts, self._last_next])

    def _frame(self, stack: np.ndarray, j: int) -> np.ndarray:
        return stack[j * self.frame_channels : (j + 1) * self.frame_channels]

    def _write(self, env: int, frame: np.ndarray) -> int:
        index = int(self.frame_count[env])
        self.frames[index % self.frame_capacity, env] = frame
        self.frame_count[env] += 1
        return index

    def _write_stack(self, env: int, stack: np.ndarray) -> np.ndarray:
        """Store the frames of a stack; a frame equal to its predecessor (e.g. a reset stack) is stored once."""
        indices = np.empty(self.frame_stack, dtype=np.int64)
        for j in range(self.frame_stack):
            frame = self._frame(stack, j)
            same = j > 0 and np.array_equal(frame, self._frame(stack, j - 1))
            indices[j] = indices[j - 1] if same else self._write(env, frame)
        return indices

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        obs = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))
        next_obs = np.asarray(next_obs).reshape((self.n_envs, *self.obs_shape))
        c = self.frame_channels
        for env in range(self.n_envs):
            if self._has_last[env] and np.array_equal(obs[env], self._last_next[env]):
                obs_idx = self._last_next_frames[env].copy()
            else:
                obs_idx = self._write_stack(env, obs[env])
            if np.array_equal(next_obs[env, :-c], obs[env, c:]):
                next_idx = np.append(obs_idx[1:], self._write(env, next_obs[env, -c:]))
            else:
                next_idx = self._write_stack(env, next_obs[env])
            self.obs_frames[self.pos, env], self.next_frames[self.pos, env] = obs_idx, next_idx
            self._last_next[env], self._last_next_frames[env] = next_obs[env], next_idx
        self._has_last[:] = True

        if isinstance(self.action_space, spaces.Discrete):
            action = action.reshape((self.n_envs, self.action_dim))
        self.actions[self.pos] = np.array(action)
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0
        self.transitions_added += self.n_envs
        self._maybe_warn()

    def _maybe_warn(self) -> None:
        if self._warned or self.transitions_added < _WARN_AFTER or self.frames_per_transition <= _WARN_RATIO:
            return
        self._warned = True
        warn_user(
            f"FrameStackReplayBuffer stored {self.frames_per_transition:.2f} frames per transition: the observations "
            "do not look like frame stacks (newest frame last), so older transitions get evicted early; "
            "use SB3's ReplayBuffer for such data"
        )

    def _valid(self, pos: np.ndarray, env: np.ndarray) -> np.ndarray:
        oldest = self.frame_count[env] - self.frame_capacity
        return np.minimum(self.obs_frames[pos, env, 0], self.next_frames[pos, env, 0]) >= oldest

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """Uniform sample over stored (position, env) pairs whose frames are all still in the ring."""
        upper = self.buffer_size if self.full else self.pos
        if upper == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        pos = np.random.randint(0, upper, size=batch_size)
        envs = np.random.randint(0, self.n_envs, size=batch_size)
        for _ in range(100):
            bad = ~self._valid(pos, envs)
            if not bad.any():
                break
            pos[bad] = np.random.randint(0, upper, size=int(bad.sum()))
            envs[bad] = np.random.randint(0, self.n_envs, size=int(bad.sum()))
        else:
            raise RuntimeError("could not find transitions whose frames are still stored; raise frame_margin")
        return self._get_samples(pos * self.n_envs + envs, env)

    def stacks(self, frame_indices: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Rebuild stacks ``[B, k * c, H, W]`` from absolute frame indices ``[B, k]`` of envs ``[B]``."""
        frames = self.frames[frame_indices % self.frame_capacity, envs[:, None]]  # [B, k, c, H, W]
        return frames.reshape((len(envs), *self.obs_shape))

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """``batch_inds`` are flat ``position * n_envs + env`` indices (see :meth:`sample`)."""
        pos, envs = np.divmod(np.asarray(batch_inds), self.n_envs)
        obs = self._normalize_obs(self.stacks(self.obs_frames[pos, envs], envs), env)
        if self.n_steps > 1:
            return self._n_step_samples(obs, pos, envs, env)
        next_obs = self._normalize_obs(self.stacks(self.next_frames[pos, envs], envs), env)
        data = (
            obs,
            self.actions[pos, envs, :],
            next_obs,
            (self.dones[pos, envs] * (1 - self.timeouts[pos, envs])).reshape(-1, 1),
            self._normalize_reward(self.rewards[pos, envs].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))  # type: ignore[arg-type]

    def _n_step_samples(
        self, obs: np.ndarray, pos: np.ndarray, envs: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        """SB3's ``NStepReplayBuffer._get_samples`` on frame indices: the same returns, cut points and discounts."""
        newest = (self.pos - 1) % self.buffer_size  # the step after it is older data (or nothing): cut there
        cut_newest = np.logical_not(self.dones[newest])  # [n_envs]: unless the episode ended there anyway

        def cut(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:  # timeouts, with the cut at the newest step
            return np.logical_or(self.timeouts[rows, cols], (rows == newest) & cut_newest[cols])

        indices = (pos[:, None] + np.arange(self.n_steps)[None, :]) % self.buffer_size  # [B, n]
        rewards = self._normalize_reward(self.rewards[indices, envs[:, None]], env)
        ends = np.logical_or(self.dones[indices, envs[:, None]], cut(indices, envs[:, None]))
        last = np.where(ends.any(axis=1), ends.argmax(axis=1), self.n_steps - 1)  # first end, inclusive
        mask = np.arange(self.n_steps)[None, :] <= last[:, None]
        discounts = self.gamma ** mask.sum(axis=1, keepdims=True).astype(np.float32)
        returns = (rewards * self.gamma ** np.arange(self.n_steps, dtype=np.float32)[None, :] * mask).sum(
            axis=1, keepdims=True
        )
        final = (pos + last) % self.buffer_size
        next_obs = self._normalize_obs(self.stacks(self.next_frames[final, envs], envs), env)
        dones = (self.dones[final, envs] * (1.0 - cut(final, envs)))[:, None].astype(np.float32)
        return ReplayBufferSamples(
            observations=self.to_torch(obs),  # type: ignore[arg-type]
            actions=self.to_torch(self.actions[pos, envs, :]),
            next_observations=self.to_torch(next_obs),  # type: ignore[arg-type]
            dones=self.to_torch(dones),
            rewards=self.to_torch(returns),
            discounts=self.to_torch(discounts),
        )
