"""Build pixel envs and SB3 VecEnvs of them from a task name or a :class:`~sb3_crptpro.envs.tasks.DMCConfig`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.envs.pixel_env import DMCPixelEnv, GymPixelEnv, PixelEnv
from sb3_crptpro.envs.tasks import DMCConfig, build_config, resolve_env, resolve_task

if TYPE_CHECKING:  # SB3 (and torch behind it) is imported only when a VecEnv is built: workers start faster
    from stable_baselines3.common.vec_env import VecEnv

__all__ = [
    "TimeLimitCheck",
    "check_time_limit",
    "check_vec_env_time_limits",
    "make_dmc_env",
    "make_dmc_vec_env",
    "make_pixel_env",
    "make_pixel_vec_env",
    "pixel_env",
]


def pixel_env(
    config: DMCConfig, seed: int | None = None, render_mode: str | None = "rgb_array", observation: str = "pixels"
) -> PixelEnv:
    """The env a config describes: :class:`DMCPixelEnv` for a DMC task, :class:`GymPixelEnv` for a Gymnasium id."""
    cls = DMCPixelEnv if config.backend == "dmc" else GymPixelEnv
    return cls(config, seed=seed, render_mode=render_mode, observation=observation)


def make_pixel_env(
    name: str,
    *,
    image_size: int = 84,
    frame_stack: int = 3,
    action_repeat: int = 2,
    camera_id: int | None = None,
    render: str = "paper",
    seed: int | None = None,
    render_mode: str | None = "rgb_array",
    observation: str = "pixels",
) -> PixelEnv:
    """Build a pixel env from a DMC task name or any Gymnasium id that renders (issue 15), e.g. ``"cheetah_run"``,
    ``"Hopper-v5"``; how the name is read: :func:`resolve_env`.

    For a Gymnasium id, ``camera_id`` defaults to the env's own camera (``-1``), ``action_repeat`` counts the env's
    own steps (``HalfCheetah-v5`` already skips 5 MuJoCo steps per step) and ``render="fast"`` applies to MuJoCo
    envs only.

    :param name: DMC task (``"cheetah_run"``, ``"cheetah-run"``) or Gymnasium id (``"Hopper-v5"``)
    :param image_size: frame height and width in pixels
    :param frame_stack: number of stacked RGB frames (observation has ``3 * frame_stack`` channels)
    :param action_repeat: physics-control steps per agent step; rewards are summed
    :param camera_id: MuJoCo camera; default 2 for quadruped and 0 otherwise (as in the reference code)
    :param render: render preset, ``"paper"`` (dm_control's default scene) or ``"fast"`` (no shadows,
        reflections or multisampling)
    :param seed: seeds the task's random state and the action space
    :param render_mode: ``"rgb_array"`` (default) or ``None``; :meth:`PixelEnv.render` returns the newest
        ``(image_size, image_size, 3)`` frame either way (Gymnasium's ``gym.make(..., render_mode=...)`` passes it)
    :param observation: ``"pixels"`` (default) or ``"state"``: the flat proprioceptive ``float32`` vector of
        ``info["state"]``, nothing rendered per step (the state-based upper anchor of ``benchmarks/downstream.py``)
    :return: a :class:`PixelEnv` with a ``Box(0, 255, (3 * frame_stack, H, W), uint8)`` observation space
    :raises ValueError: unknown name (close matches from DMC and Gymnasium), bad sizes, preset, modes, or a
        non-continuous action space
    """
    config = build_config(
        name,
        image_size=image_size,
        frame_stack=frame_stack,
        action_repeat=action_repeat,
        camera_id=camera_id,
        render=render,
    )
    return pixel_env(config, seed=seed, render_mode=render_mode, observation=observation)


def make_dmc_env(task: str, **kwargs: Any) -> DMCPixelEnv:
    """Build a pixel-based DeepMind Control task: :func:`make_pixel_env` for DMC names only.

    :param task: ``"cheetah_run"``, ``"cheetah-run"``, ``"ball_in_cup_catch"``, ...
    :param kwargs: those of :func:`make_pixel_env` (``image_size``, ``frame_stack``, ``action_repeat``,
        ``camera_id``, ``render``, ``seed``, ``render_mode``, ``observation``)
    :return: a Gymnasium env with a ``Box(0, 255, (3 * frame_stack, H, W), uint8)`` observation space (pixels)
    :raises ValueError: unknown task (with close matches), a Gymnasium id (use :func:`make_pixel_env`), bad sizes,
        preset, ``render_mode`` or ``observation``
    """
    _dmc_only(task)
    env = make_pixel_env(task, **kwargs)
    assert isinstance(env, DMCPixelEnv)
    return env


def make_pixel_vec_env(
    task: str,
    n_envs: int = 1,
    *,
    seed: int | None = None,
    vec_env_cls: type[VecEnv] | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | Path | None = None,
    wrapper_class: Callable[[gym.Env], gym.Env] | None = None,
    monitor_kwargs: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> VecEnv:
    """Build ``n_envs`` copies of :func:`make_pixel_env` in an SB3 VecEnv, each wrapped in a ``Monitor``.

    :param task: DMC task or Gymnasium id, as for :func:`make_pixel_env`
    :param n_envs: number of environments
    :param seed: env ``i`` is seeded with ``seed + i``
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``
    :param vec_env_kwargs: keyword arguments for the VecEnv class (e.g. ``start_method``: not ``"fork"``)
    :param monitor_dir: where Monitor writes its CSV files (none written when ``None``)
    :param wrapper_class: optional Gymnasium wrapper applied after the Monitor
    :param monitor_kwargs: for SB3's ``Monitor`` (``{"override_existing": False}`` appends to existing CSV files)
    :param env_kwargs: forwarded to :func:`make_pixel_env`
    :raises ValueError: ``n_envs < 1``; ``start_method="fork"``, which hangs after this process has rendered
        (dm_control's EGL context, measured here); bad env arguments
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if (vec_env_kwargs or {}).get("start_method") == "fork":
        raise ValueError(
            "start_method='fork' hangs once this process has rendered (the EGL context of dm_control and MuJoCo does "
            "not survive fork): use 'forkserver' (SB3's default on Linux) or 'spawn'"
        )
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    resolve_env(task)  # fail fast, in this process, on a bad name
    if wrapper_class is not None:
        wrapper_class = _CheckedWrapper(wrapper_class)
    return make_vec_env(
        _EnvFactory(task, env_kwargs),
        n_envs=n_envs,
        seed=seed,
        vec_env_cls=vec_env_cls or DummyVecEnv,
        vec_env_kwargs=vec_env_kwargs,
        monitor_dir=None if monitor_dir is None else str(monitor_dir),
        wrapper_class=wrapper_class,
        monitor_kwargs=monitor_kwargs,
    )


def make_dmc_vec_env(task: str, n_envs: int = 1, **kwargs: Any) -> VecEnv:
    """:func:`make_pixel_vec_env` for DeepMind Control task names only (the same arguments).

    :raises ValueError: unknown DMC task (with close matches), including a Gymnasium id
    """
    _dmc_only(task)
    return make_pixel_vec_env(task, n_envs, **kwargs)


def check_time_limit(env: gym.Env) -> list[int]:
    """Warn about each Gymnasium ``TimeLimit`` around a :class:`PixelEnv` that is longer than the episodes the env
    itself allows (:attr:`PixelEnv.episode_limit`): such a limit is never reached, its episodes end earlier.

    ``TimeLimit`` can only cut episodes short (Gymnasium's issue 291): ``max_episode_steps=400`` on
    ``cartpole_swingup`` at action repeat 8 gives episodes of 125 agent steps, dm_control's own 1000 physics steps.
    :func:`make_pixel_vec_env` runs this check on its ``wrapper_class``; call it on an env built with ``gym.make(id,
    max_episode_steps=...)`` or wrapped by hand, where the env itself cannot see the wrapper.

    :param env: a wrapped (or bare) pixel env
    :return: the ``max_episode_steps`` found that exceed the env's limit (a :class:`UserWarning` each)
    """
    limits, inner = [], env
    while isinstance(inner, gym.Wrapper):
        if isinstance(inner, gym.wrappers.TimeLimit):
            limits.append(int(inner._max_episode_steps))
        inner = inner.env
    if not isinstance(inner, PixelEnv):
        return []
    return _warn_too_long(limits, inner.episode_limit, inner.config)


def check_vec_env_time_limits(venv: VecEnv) -> list[int]:
    """:func:`check_time_limit` through SB3's VecEnv interface (``env_is_wrapped``, ``get_attr``), for the envs of
    ``venv`` (below any ``VecEnvWrapper``) that a ``TimeLimit`` wraps, such as ``TimeLimit(make_dmc_env(...), 400)``
    built by hand. ``VecEncodeObservation`` and ``PrototypeIntrinsicReward`` run it on the VecEnv they wrap; envs
    that are not :class:`PixelEnv` are skipped. Tested with ``DummyVecEnv``; ``SubprocVecEnv`` answers the same
    calls, but its test once found no warning in a full test run (not reproduced in isolation), so it is not
    claimed.

    :return: the ``max_episode_steps`` (the outermost ``TimeLimit`` of each env) that exceed the env's limit
    """
    try:
        indices = [i for i, wrapped in enumerate(venv.env_is_wrapped(gym.wrappers.TimeLimit)) if wrapped]
        if not indices:
            return []
        episode_limits = venv.get_attr("episode_limit", indices)
        configs = venv.get_attr("config", indices)
        limits = venv.get_attr("_max_episode_steps", indices)
    except (AttributeError, NotImplementedError):  # not pixel envs of this package, or a VecEnv without the calls
        return []
    too_long: list[int] = []
    for limit, episode_limit, config in zip(limits, episode_limits, configs, strict=True):
        if hasattr(config, "task") and hasattr(config, "action_repeat") and limit is not None:  # a DMCConfig
            too_long += _warn_too_long([int(limit)], episode_limit, config)
    return sorted(set(too_long))


def _warn_too_long(limits: list[int], episode_limit: float, config: DMCConfig) -> list[int]:
    """Warn once per ``TimeLimit`` length in ``limits`` above ``episode_limit``; return those lengths."""
    too_long = [limit for limit in limits if limit > episode_limit]
    for limit in too_long:
        warn_user(
            f"TimeLimit max_episode_steps={limit} is more than {config.task} allows: it ends every episode "
            f"after {episode_limit} agent steps at action repeat {config.action_repeat}, and a TimeLimit "
            "can only end episodes earlier; use max_episode_steps <= that, or a smaller action repeat",
            UserWarning,
        )
    return too_long


class TimeLimitCheck(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A pass-through wrapper that runs :func:`check_time_limit` on the env it wraps: the ``CRPTpro/<task>-v0`` ids
    list it in their ``additional_wrappers``, which ``gym.make`` applies after its ``TimeLimit``, so that
    ``gym.make(id, max_episode_steps=...)`` warns about a limit the task never reaches."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        check_time_limit(env)


class _CheckedWrapper:
    """``wrapper_class`` of :func:`make_pixel_vec_env`, followed by :func:`check_time_limit` (picklable)."""

    def __init__(self, wrapper_class: Callable[[gym.Env], gym.Env]) -> None:
        self.wrapper_class = wrapper_class

    def __call__(self, env: gym.Env, **kwargs: Any) -> gym.Env:
        wrapped = self.wrapper_class(env, **kwargs)
        check_time_limit(wrapped)
        return wrapped


def _dmc_only(task: str) -> None:
    if resolve_env(task)[0] == "gymnasium":
        raise ValueError(f"{task!r} is a Gymnasium id; make_dmc_env/make_dmc_vec_env take DeepMind Control tasks: "
                         "use make_pixel_env/make_pixel_vec_env")  # fmt: skip
    resolve_task(task)


class _EnvFactory:
    """Picklable env factory (SubprocVecEnv children import this module, which registers the dm_control ids)."""

    def __init__(self, task: str, env_kwargs: dict[str, Any]) -> None:
        self.task = task
        self.env_kwargs = env_kwargs

    def __call__(self, **kwargs: Any) -> PixelEnv:
        return make_pixel_env(self.task, **self.env_kwargs)
