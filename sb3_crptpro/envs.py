"""Pixel environments for SB3: DeepMind Control tasks (through shimmy's Gymnasium registration) and any Gymnasium
env that renders (issue 15).

:func:`make_pixel_env` (any name, :func:`resolve_env`) and :func:`make_dmc_env` (DMC names) return a channel-first
``uint8`` frame-stack environment (``(3 * frame_stack, H, W)``), which is exactly what SB3's ``CnnPolicy`` expects,
with action repeat, the reference camera per DMC domain and a *render preset* (see :data:`RENDER_PRESETS`). The
proprioceptive state is exposed as ``info["state"]`` for probes and datasets.

Gymnasium's wrappers were weighed for this (issue 15): ``AddRenderObservation`` + ``FrameStackObservation`` +
``ResizeObservation`` would render once per *env* step below an action-repeat wrapper that Gymnasium does not have,
return channel-last stacks (``(k, H, W, 3)``) that need another transposing wrapper, drop the state into a Dict
observation, and ``ResizeObservation`` needs OpenCV; one ``PixelEnv`` loop renders once per agent step, stacks
channel-first with one ``concatenate`` and keeps ``info["state"]``.
"""

from __future__ import annotations

import difflib
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

# mujoco / dm_control are imported below: importing this module first ran sb3_crptpro/__init__.py, whose
# prepare_rendering() chose the GL backend and loaded triton's LLVM before any GL context (_gl.py)
import gymnasium as gym
import numpy as np

from sb3_crptpro._gl import forget_current_dm_control_context

with warnings.catch_warnings():
    # gymnasium's MuJoCo viewer imports glfw, which warns when there is no X display; we render headless (EGL)
    warnings.filterwarnings("ignore", message=".*DISPLAY environment variable is missing")
    import shimmy  # noqa: F401  (registers the dm_control/* Gymnasium ids)

if TYPE_CHECKING:  # SB3 (and torch behind it) is imported only when a VecEnv is built: workers start faster
    from stable_baselines3.common.vec_env import VecEnv

__all__ = [
    "RENDER_PRESETS",
    "DMCConfig",
    "DMCPixelEnv",
    "GymPixelEnv",
    "PixelEnv",
    "available_tasks",
    "build_config",
    "make_dmc_env",
    "make_dmc_vec_env",
    "make_pixel_env",
    "make_pixel_vec_env",
    "pixel_env",
    "resolve_env",
    "resolve_task",
]

#: ``"paper"``: dm_control's default scene (shadows, reflections, 4x multisampling), as in the reference code.
#: ``"fast"``: shadows, reflections and multisampling off; measured ~15x faster with software rendering at 84x84
#: for a mean pixel difference of a few levels out of 255.
RENDER_PRESETS: dict[str, dict[str, bool]] = {
    "paper": {},
    "fast": {"shadow": False, "reflection": False},
}

#: Camera used by the reference code: 2 for quadruped (a tracking camera), 0 otherwise.
_DOMAIN_CAMERA = {"quadruped": 2}

#: dm_control suite episodes last 1000 physics-control steps; dm_control truncates them itself.
EPISODE_ENV_STEPS = 1000


@lru_cache(maxsize=1)
def available_tasks() -> dict[str, tuple[str, str]]:
    """Map every canonical ``"domain_task"`` name to ``(domain, task)`` from shimmy's ``dm_control/*`` ids."""
    tasks: dict[str, tuple[str, str]] = {}
    for env_id in gym.registry:
        if not env_id.startswith("dm_control/") or not env_id.endswith("-v0"):
            continue
        parts = env_id[len("dm_control/") : -len("-v0")].split("-")
        if len(parts) == 2:  # suite tasks only; locomotion/manipulation ids have no domain-task form
            tasks[f"{parts[0]}_{parts[1]}"] = (parts[0], parts[1])
    return tasks


def resolve_task(name: str) -> tuple[str, str]:
    """Turn ``"cheetah_run"``, ``"cheetah-run"`` or ``"dm_control/cheetah-run-v0"`` into ``("cheetah", "run")``.

    :raises ValueError: for an unknown task, listing the closest valid names.
    """
    tasks = available_tasks()
    key = name.strip()
    if key.startswith("dm_control/"):
        key = key[len("dm_control/") :]
    if key.endswith("-v0"):
        key = key[: -len("-v0")]
    key = key.replace("-", "_")
    by_lower = {canonical.lower(): canonical for canonical in tasks}
    if key.lower() in by_lower:
        return tasks[by_lower[key.lower()]]
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=5, cutoff=0.5)
    hint = ", ".join(by_lower[c] for c in close) if close else ", ".join(sorted(tasks)[:8]) + ", ..."
    raise ValueError(f"Unknown DeepMind Control task {name!r}. Did you mean: {hint}?")


#: Gymnasium ids that are not separate environments for this package (DMC's own ids, our rl-zoo3 ids)
_NOT_GYMNASIUM = ("dm_control/", "CRPTpro/")


def resolve_env(name: str) -> tuple[str, str]:
    """Say which backend a name belongs to: ``("dmc", "cheetah_run")`` or ``("gymnasium", "Hopper-v5")``.

    The rule (issue 15): a name registered in Gymnasium's registry under exactly that spelling is a Gymnasium id
    (they end in a version, ``-vN``), except ``dm_control/*`` and ``CRPTpro/*`` ids; every other name is read as a
    DeepMind Control task (``cheetah_run``, ``cheetah-run``, ``dm_control/cheetah-run-v0``).

    :raises ValueError: for a name that is neither, listing close matches from both
    """
    key = name.strip()
    if key in gym.registry and not key.startswith(_NOT_GYMNASIUM):
        return "gymnasium", key
    try:
        domain, task = resolve_task(key)
    except ValueError:
        pass
    else:
        return "dmc", f"{domain}_{task}"
    candidates = {c.lower(): c for c in available_tasks()}
    candidates.update({i.lower(): i for i in gym.registry if not i.startswith(_NOT_GYMNASIUM)})
    close = difflib.get_close_matches(key.lower().replace("-", "_"), list(candidates), n=3, cutoff=0.5)
    close += difflib.get_close_matches(key.lower(), list(candidates), n=3, cutoff=0.5)
    hint = ", ".join(dict.fromkeys(candidates[c] for c in close)) or "cheetah_run, walker_run, HalfCheetah-v5, ..."
    raise ValueError(
        f"Unknown environment {name!r}: neither a DeepMind Control task (domain_task) nor a registered Gymnasium id "
        f"(Name-vN). Did you mean: {hint}?"
    )


@dataclass(frozen=True)
class DMCConfig:
    """Everything that determines what a pixel env renders (recorded by datasets and artifacts): a DMC task
    (:class:`DMCPixelEnv`) or a Gymnasium id (:class:`GymPixelEnv`, issue 15).

    ``camera_id`` is ``-1`` for a Gymnasium env's own default camera."""

    #: canonical task name, ``"<domain>_<task>"``, or a Gymnasium id such as ``"Hopper-v5"``
    task: str
    #: square frame side in pixels
    image_size: int = 84
    #: number of RGB frames stacked along the channel axis
    frame_stack: int = 3
    #: physics-control steps per agent step (rewards summed)
    action_repeat: int = 2
    #: MuJoCo camera id
    camera_id: int = 0
    #: render preset, a key of :data:`RENDER_PRESETS`
    render: str = "paper"

    @property
    def backend(self) -> str:
        """``"dmc"`` or ``"gymnasium"`` (:func:`resolve_env`)."""
        return resolve_env(self.task)[0]

    @property
    def domain(self) -> str:
        """The dm_control domain (``"cheetah"`` for ``"cheetah_run"``); a Gymnasium env's id."""
        return resolve_task(self.task)[0] if self.backend == "dmc" else self.task

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """Channel-first observation shape ``(3 * frame_stack, H, W)``."""
        return (3 * self.frame_stack, self.image_size, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable view."""
        return asdict(self)


def _validate(image_size: int, frame_stack: int, action_repeat: int, render: str) -> None:
    for label, value in (("image_size", image_size), ("frame_stack", frame_stack), ("action_repeat", action_repeat)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if render not in RENDER_PRESETS:
        raise ValueError(f"Unknown render preset {render!r}; choose one of {sorted(RENDER_PRESETS)}")


def _flatten_state(observation: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate a dm_control observation dict (in its key order) into one float32 vector."""
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])


class PixelEnv(gym.Env[np.ndarray, np.ndarray]):
    """Stacked RGB frames of an inner env: the observation contract of every env of this package.

    Observations are ``uint8`` arrays of shape ``(3 * frame_stack, H, W)``, oldest frame first and newest last; at
    reset the stack is filled with copies of the first frame. One :meth:`step` repeats the action
    ``action_repeat`` times (stopping early at the end of an episode) and sums the rewards; one frame is rendered
    per agent step. ``info["state"]`` is the inner env's flat state (``float32``) after the step. With
    ``observation="state"`` that vector is the observation and nothing is rendered (the state-based anchor).

    Subclasses set ``self._env`` (the inner Gymnasium env), ``self._flatten`` (its observation -> flat state) and
    implement :meth:`render_frame`. Use :func:`make_pixel_env` rather than the constructors.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}  # replaced per instance
    _env: gym.Env
    _flatten: Callable[[Any], np.ndarray]
    #: dtype of the actions handed to the inner env (dm_control's physics takes float64)
    _action_dtype: Any = np.float64

    def _setup(self, config: DMCConfig, render_mode: str | None, observation: str, seed: int | None,
               dt: float) -> None:  # fmt: skip
        """Validate, then build spaces and metadata (called by subclasses once ``_env`` exists)."""
        self.config = config
        self.pixels = observation == "pixels"
        self.render_mode = render_mode
        self.metadata = {
            "render_modes": ["rgb_array"],
            "render_fps": max(round(1.0 / (dt * config.action_repeat)), 1),
            "render_preset": config.render,
            "dmc_config": config.to_dict(),
        }
        inner = self._env.action_space
        if not isinstance(inner, gym.spaces.Box):
            raise ValueError(f"{config.task} has {inner} actions; only continuous (Box) action spaces are supported")
        if self.pixels:
            self.observation_space = gym.spaces.Box(0, 255, config.obs_shape, dtype=np.uint8)
        else:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Box(
            inner.low.astype(np.float32), inner.high.astype(np.float32), dtype=np.float32, seed=seed
        )
        self._frames: deque[np.ndarray] = deque(maxlen=config.frame_stack)
        self._started = False

    @staticmethod
    def _check_arguments(config: DMCConfig, render_mode: str | None, observation: str) -> None:
        _validate(config.image_size, config.frame_stack, config.action_repeat, config.render)
        if render_mode not in ("rgb_array", None):
            raise ValueError(
                f"render_mode must be None or 'rgb_array' (frames are rendered offscreen, there is no window), "
                f"got {render_mode!r}"
            )
        if observation not in ("pixels", "state"):
            raise ValueError(f"observation must be 'pixels' or 'state', got {observation!r}")

    @property
    def state_dim(self) -> int:
        """Size of the flat state vector ``info["state"]``."""
        raise NotImplementedError

    @property
    def render_preset(self) -> str:
        """The render preset this env was built with (``"paper"`` or ``"fast"``)."""
        return self.config.render

    def render_frame(self) -> np.ndarray:
        """Render the current state as a channel-first ``uint8`` frame ``(3, H, W)``."""
        raise NotImplementedError

    def _observation(self, state: np.ndarray) -> np.ndarray:
        return np.concatenate(self._frames, axis=0) if self.pixels else state

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        observation, _ = self._env.reset(seed=seed)
        self._frames.clear()
        self._started = True
        if self.pixels:
            self._frames.extend([self.render_frame()] * self.config.frame_stack)
        state = self._flatten(observation)
        return self._observation(state), {"state": state}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("Call reset() before step().")
        action = np.asarray(action, dtype=self._action_dtype)
        reward = 0.0
        terminated = truncated = False
        observation: Any = None
        for _ in range(self.config.action_repeat):
            observation, r, terminated, truncated, _ = self._env.step(action)
            reward += float(r)
            if terminated or truncated:
                break
        if self.pixels:
            self._frames.append(self.render_frame())
        state = self._flatten(observation)
        return self._observation(state), reward, bool(terminated), bool(truncated), {"state": state}

    def render(self) -> np.ndarray:  # type: ignore[override]
        """The newest frame as ``(H, W, 3)`` ``uint8`` (for videos), or a fresh render before any reset.

        Works with ``render_mode`` ``"rgb_array"`` (the default; what ``VecVideoRecorder`` and rl-zoo3's video
        recording ask for) and ``None`` alike: observations are rendered anyway.
        """
        frame = self._frames[-1] if self._frames else self.render_frame()
        return frame.transpose(1, 2, 0)


class DMCPixelEnv(PixelEnv):
    """A dm_control suite task seen through stacked RGB frames (the :class:`PixelEnv` contract).

    Episodes end by truncation after 1000 physics-control steps (dm_control's own limit). Rendered with one
    persistent MuJoCo camera (the reference camera per domain) and the config's render preset.
    """

    def __init__(
        self,
        config: DMCConfig,
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
        observation: str = "pixels",
    ) -> None:
        self._check_arguments(config, render_mode, observation)
        domain, task = resolve_task(config.task)
        task_kwargs = {"random": seed} if seed is not None else None
        self._env = gym.make(f"dm_control/{domain}-{task}-v0", task_kwargs=task_kwargs).unwrapped
        self._flatten = _flatten_state
        self._physics = self._env.physics
        if config.render == "fast":
            # Must happen before the first render creates the GL context (its framebuffer samples).
            self._physics.model.vis.quality.offsamples = 0
        self._render_overrides = dict(RENDER_PRESETS[config.render]) or None
        self._camera: Any = None  # created at the first render, then reused
        self._setup(config, render_mode, observation, seed, self._env.dt)

    @property
    def state_dim(self) -> int:
        return sum(int(np.prod(space.shape)) for space in self._env.observation_space.values())

    def render_frame(self) -> np.ndarray:
        """Render the current physics state as a channel-first ``uint8`` frame ``(3, H, W)``."""
        if self._camera is None:
            # One persistent camera: dm_control's Physics.render builds (and frees) a new camera and scene per
            # call, which costs about as much as the rendering itself at 84x84. Same pixels either way.
            from dm_control.mujoco.engine import Camera

            size = self.config.image_size
            self._camera = Camera(self._physics, height=size, width=size, camera_id=self.config.camera_id)
        frame = self._camera.render(render_flag_overrides=self._render_overrides)
        return np.ascontiguousarray(frame.transpose(2, 0, 1))

    def close(self) -> None:
        if self._camera is not None:
            self._camera._scene.free()
            self._camera = None
        self._env.close()
        super().close()


class GymPixelEnv(PixelEnv):
    """A Gymnasium env that renders (``render_mode="rgb_array"``) seen through stacked RGB frames (issue 15).

    The inner env keeps its own wrappers (``TimeLimit`` truncation, early termination). MuJoCo envs render at
    ``image_size`` directly (``width``/``height``) and honour the ``"fast"`` preset (no shadows, reflections or
    multisampling: 0.9 ms instead of 42 ms per 84 px frame for HalfCheetah-v5 here); other envs render at their own
    size and are resized with Pillow (bilinear), and the preset makes no difference to them.
    ``info["state"]`` is the env's own observation, flattened (``gymnasium.spaces.flatten``).
    """

    _action_dtype = np.float32

    def __init__(
        self,
        config: DMCConfig,
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
        observation: str = "pixels",
    ) -> None:
        self._check_arguments(config, render_mode, observation)
        size = config.image_size
        spec = gym.spec(config.task)
        kwargs: dict[str, Any] = {"render_mode": "rgb_array"}
        self._mujoco = "mujoco" in str(spec.entry_point)
        if self._mujoco:
            kwargs.update(width=size, height=size)
            if config.camera_id >= 0:
                kwargs["camera_id"] = config.camera_id
        self._env = gym.make(config.task, **kwargs)
        space = self._env.observation_space
        self._flatten = lambda obs: np.asarray(gym.spaces.flatten(space, obs), dtype=np.float32)
        self._fast_pending = self._mujoco and config.render == "fast"
        if self._fast_pending:  # before the first render creates the GL context (its framebuffer samples)
            self._env.unwrapped.model.vis.quality.offsamples = 0
        self._setup(config, render_mode, observation, seed, float(getattr(self._env.unwrapped, "dt", 0.05)))
        if seed is not None:
            self._env.reset(seed=seed)

    @property
    def state_dim(self) -> int:
        return int(gym.spaces.flatdim(self._env.observation_space))

    def render_frame(self) -> np.ndarray:
        if self._mujoco:
            # Gymnasium's MujocoRenderer makes its GL context current only when it creates it: with several MuJoCo
            # envs in one process (cross-domain collection, eval env beside train env) another env's context may be
            # current, and the frame comes out wrong (measured: same states, different pixels). Make ours current.
            import mujoco

            viewer = self._env.unwrapped.mujoco_renderer._get_viewer(render_mode="rgb_array")
            viewer.make_context_current()
            if self._fast_pending:  # switch shadows and reflections off once the viewer (its scene) exists
                for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                    viewer.scn.flags[flag] = 0
                self._fast_pending = False
        frame = self._env.render()
        if self._mujoco:
            forget_current_dm_control_context()  # DMC envs of this process make their own context current again
        size = self.config.image_size
        if frame.shape[:2] != (size, size):
            from PIL import Image

            frame = np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR))
        return np.ascontiguousarray(frame.transpose(2, 0, 1))

    def close(self) -> None:
        self._env.close()  # explicitly: an unclosed MuJoCo renderer raises an EGL error at interpreter exit
        super().close()


def build_config(
    task: str,
    *,
    image_size: int = 84,
    frame_stack: int = 3,
    action_repeat: int = 2,
    camera_id: int | None = None,
    render: str = "paper",
) -> DMCConfig:
    """Validate the arguments of :func:`make_pixel_env` and return the resulting :class:`DMCConfig` (a DMC task
    or a Gymnasium id, :func:`resolve_env`)."""
    backend, name = resolve_env(task)
    _validate(image_size, frame_stack, action_repeat, render)
    if camera_id is None:
        camera_id = _DOMAIN_CAMERA.get(resolve_task(name)[0], 0) if backend == "dmc" else -1
    return DMCConfig(
        task=name,
        image_size=int(image_size),
        frame_stack=int(frame_stack),
        action_repeat=int(action_repeat),
        camera_id=int(camera_id),
        render=render,
    )


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
    :param vec_env_kwargs: keyword arguments for the VecEnv class (e.g. ``start_method``)
    :param monitor_dir: where Monitor writes its CSV files (none written when ``None``)
    :param wrapper_class: optional Gymnasium wrapper applied after the Monitor
    :param monitor_kwargs: for SB3's ``Monitor`` (``{"override_existing": False}`` appends to existing CSV files)
    :param env_kwargs: forwarded to :func:`make_pixel_env`
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    resolve_env(task)  # fail fast, in this process, on a bad name
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
