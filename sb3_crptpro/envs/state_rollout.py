"""Rollouts that record physics states, rendered afterwards under any frame settings: the input of per-variable
state probes (which state variable do an encoder's features carry, at which resolution, render preset and frame
stack?).

One rollout is stepped once without rendering; :func:`render_rollout` then renders its recorded physics states with a
fresh env of the wanted image size and render preset, so every setting sees exactly the same states, and
:func:`stack_frames` builds frame stacks at any time gap from the recorded frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sb3_crptpro.envs.factory import make_dmc_env

__all__ = ["StateRollout", "render_rollout", "rollout_states", "stack_frames"]

#: readable names of dm_control's flat state per domain, where the suite's observation keys do not say what a
#: dim is (dm_control ``suite/cartpole.py``: ``position`` = cart x, pole cos, pole sin; ``velocity`` = cart and
#: pole angular velocity). Other domains get ``<key>[<i>]``.
STATE_NAMES: dict[str, tuple[str, ...]] = {
    "cartpole": ("cart position", "pole cos", "pole sin", "cart velocity", "pole angular velocity"),
}


@dataclass
class StateRollout:
    """Records of one or more episodes, one record every ``record_every`` env steps (after reset, then each step).

    :ivar task: DMC task name
    :ivar record_every: env (physics-control) steps between two records
    :ivar action_repeat: env steps each action is held (a multiple of ``record_every``)
    :ivar physics: ``float64 [N, P]``: MuJoCo's full state (``physics.get_state()``) per record
    :ivar state: ``float32 [N, S]``: the flat proprioceptive state per record (``info["state"]``)
    :ivar episode: ``int64 [N]``: episode index per record
    :ivar step: ``int64 [N]``: record index inside its episode (0 at reset)
    :ivar names: ``S`` names of the state dims
    :ivar episode_returns: ``float64 [episodes]``: each episode's summed task reward (over the recorded steps)
    :ivar geom_pos: ``float64 [episodes, ngeom, 3]``: the model's geom positions after each episode's reset. Some
        tasks draw part of the scene into the model rather than the state (reacher's target, dm_control
        ``suite/reacher.py``: ``physics.named.model.geom_pos["target"]``), so the state alone does not render it.
    """

    task: str
    record_every: int
    action_repeat: int
    physics: np.ndarray
    state: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    names: tuple[str, ...]
    episode_returns: np.ndarray
    geom_pos: np.ndarray

    def __len__(self) -> int:
        return len(self.state)


def _state_names(env: object, task: str) -> tuple[str, ...]:
    domain = task.split("_")[0]
    spaces = env._env.observation_space  # type: ignore[attr-defined]  # dm_control's observation dict, in order
    names = tuple(f"{key}[{i}]" for key, space in spaces.items() for i in range(int(np.prod(space.shape))))
    readable = STATE_NAMES.get(domain)
    return readable if readable is not None and len(readable) == len(names) else names


def rollout_states(
    task: str,
    episodes: int,
    action_repeat: int,
    record_every: int | None = None,
    policy: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
    max_records: int | None = None,
) -> StateRollout:
    """Step ``episodes`` whole episodes (dm_control's 1,000 env steps each) and record their states.

    :param task: DMC task (``"cartpole_swingup"``)
    :param episodes: number of episodes
    :param action_repeat: env steps each action is held (the downstream agent's action repeat)
    :param record_every: env steps between records (default ``action_repeat``); must divide ``action_repeat``
    :param policy: ``flat state float32 [S] -> action``, queried every ``action_repeat`` env steps; ``None``: the
        uniform random policy (seeded by ``seed``)
    :param seed: seeds the task and the random policy
    :param max_records: stop each episode after this many records (``None``: the whole episode)
    :raises ValueError: ``record_every`` does not divide ``action_repeat``, or counts below 1
    """
    record_every = record_every or action_repeat
    if min(episodes, action_repeat, record_every) < 1 or action_repeat % record_every:
        raise ValueError(f"need episodes, action_repeat, record_every >= 1 and record_every dividing action_repeat, "
                         f"got {episodes}, {action_repeat}, {record_every}")  # fmt: skip
    env = make_dmc_env(task, observation="state", action_repeat=record_every, seed=seed)
    hold = action_repeat // record_every
    physics, states, episode_ids, steps, returns, geom_pos = [], [], [], [], [], []
    try:
        names = _state_names(env, task)
        for ep in range(episodes):
            state, _ = env.reset(seed=seed + ep)
            geom_pos.append(env._physics.model.geom_pos.copy())
            done, i, action, total = False, 0, None, 0.0
            while not done and (max_records is None or i < max_records):
                physics.append(env._physics.get_state().copy())
                states.append(state)
                episode_ids.append(ep)
                steps.append(i)
                if i % hold == 0:
                    action = env.action_space.sample() if policy is None else np.asarray(policy(state))
                state, reward, terminated, truncated, _ = env.step(action)
                done, i, total = terminated or truncated, i + 1, total + float(reward)
            returns.append(total)
    finally:
        env.close()
    return StateRollout(task, record_every, action_repeat, np.asarray(physics), np.asarray(states, np.float32),
                        np.asarray(episode_ids), np.asarray(steps), names, np.asarray(returns),
                        np.asarray(geom_pos))  # fmt: skip


def render_rollout(rollout: StateRollout, image_size: int, render: str, camera_id: int | None = None) -> np.ndarray:
    """Render every recorded physics state: ``uint8 [N, 3, image_size, image_size]`` (the env's camera and preset).

    Each state is set with ``physics.reset_context()`` (which recomputes positions before rendering), together with
    its episode's geom positions (:attr:`StateRollout.geom_pos`: reacher's target), so the frames equal what a
    :class:`~sb3_crptpro.envs.pixel_env.DMCPixelEnv` of these settings shows in that state.
    """
    env = make_dmc_env(rollout.task, image_size=image_size, render=render, camera_id=camera_id, frame_stack=1)
    try:
        env.reset(seed=0)
        frames = np.empty((len(rollout), 3, image_size, image_size), np.uint8)
        model = env._physics.model
        for i, state in enumerate(rollout.physics):
            with env._physics.reset_context():
                model.geom_pos[:] = rollout.geom_pos[rollout.episode[i]]
                env._physics.set_state(state)
            frames[i] = env.render_frame()
    finally:
        env.close()
    return frames


def stack_frames(frames: np.ndarray, step: np.ndarray, gap: int, frame_stack: int = 3) -> np.ndarray:
    """Frame stacks ``[N, 3 * frame_stack, H, W]``: record ``i`` with the records ``gap``, ``2 gap``, ... before it in
    its episode, oldest first; before the episode start the first frame repeats (what a frame-stacking env shows
    after ``reset``).

    :param frames: ``uint8 [N, 3, H, W]`` in record order, episodes contiguous
    :param step: ``[N]`` record index inside its episode (:attr:`StateRollout.step`)
    :param gap: records between stacked frames (downstream action repeat / ``record_every``)
    """
    if gap < 1 or frame_stack < 1:
        raise ValueError(f"gap and frame_stack must be >= 1, got {gap}, {frame_stack}")
    index = np.arange(len(frames))
    offsets = gap * np.arange(frame_stack - 1, -1, -1)  # oldest first
    back = np.minimum(offsets[None, :], step[:, None])  # never before the episode's first record
    rows = index[:, None] - back
    return frames[rows].reshape(len(frames), 3 * frame_stack, *frames.shape[2:])
