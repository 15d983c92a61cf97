"""The pixel env classes: :class:`PixelEnv` (the shared frame-stack / action-repeat loop), :class:`DMCPixelEnv`
(DeepMind Control through shimmy) and :class:`GymPixelEnv` (any Gymnasium env that renders, issue 15). Build them
with :func:`~sb3_crptpro.envs.factory.make_pixel_env`.

Gymnasium's wrappers were weighed for this (issue 15): ``AddRenderObservation`` + ``FrameStackObservation`` +
``ResizeObservation`` would render once per *env* step below an action-repeat wrapper that Gymnasium does not have,
return channel-last stacks (``(k, H, W, 3)``) that need another transposing wrapper, drop the state into a Dict
observation, and ``ResizeObservation`` needs OpenCV; one ``PixelEnv`` loop renders once per agent step, stacks
channel-first with one ``concatenate`` and keeps ``info["state"]``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from sb3_crptpro.common._gl import forget_current_dm_control_context, gl_backend_advice
from sb3_crptpro.envs.tasks import RENDER_PRESETS, DMCConfig, _validate, resolve_task

__all__ = ["DMCPixelEnv", "GymPixelEnv", "MissingRenderDependency", "PixelEnv"]


class _DropSetTotalMass(logging.Filter):
    """Drops MuJoCo's ``compiler attribute 'settotalmass' is deprecated`` (logged through absl when dm_control
    compiles cheetah's model: twice per cheetah env, measured): it concerns dm_control's own XML, and nothing a user
    does makes it go away."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "'settotalmass' is deprecated" not in record.getMessage()


logging.getLogger("absl").addFilter(_DropSetTotalMass())


class MissingRenderDependency(ImportError):
    """An env cannot render here: an optional dependency is missing (e.g. pygame for Pendulum-v1, ``pip install
    "gymnasium[classic_control]"``), or the OpenGL backend in force needs what this machine lacks (``MUJOCO_GL=glfw``
    without a display). The message names the env and what to install or set."""


def _check_gl_backend(task: str) -> None:
    """Refuse in one line, before the first MuJoCo render, a ``MUJOCO_GL`` that cannot render here (GLFW without a
    display): trying raises ``mujoco.FatalError``, and dm_control's half-built context then prints a traceback at
    exit (measured). :raises MissingRenderDependency: with what to set."""
    advice = gl_backend_advice()
    if advice is not None:
        raise MissingRenderDependency(f"{task} cannot render: {advice}")


def _flatten_state(observation: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate a dm_control observation dict (in its key order) into one float32 vector."""
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])


def _get_rng_state(rng: np.random.RandomState | np.random.Generator) -> Any:
    """The state of a legacy ``RandomState`` (dm_control's tasks) or of a ``Generator`` (Gymnasium's envs)."""
    return rng.get_state() if isinstance(rng, np.random.RandomState) else rng.bit_generator.state


def _set_rng_state(rng: np.random.RandomState | np.random.Generator, state: Any) -> None:
    if isinstance(rng, np.random.RandomState):
        rng.set_state(state)
    else:
        rng.bit_generator.state = state


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
    def episode_limit(self) -> float:
        """Agent steps after which the inner env ends every episode itself (dm_control's time limit, a Gymnasium
        env's own ``TimeLimit``), at this env's action repeat; ``math.inf`` when it sets none. A ``TimeLimit``
        wrapped around this env can end episodes earlier, never later (:func:`~sb3_crptpro.envs.check_time_limit`).
        """
        steps = self._inner_step_limit()
        return math.ceil(steps / self.config.action_repeat) if math.isfinite(steps) else math.inf

    def _inner_step_limit(self) -> float:
        return math.inf

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
        # what replays this episode (get_episode_state): the inner env's random state before its reset, then actions
        self._episode = {"seed": seed, "rng": _get_rng_state(self._env.np_random), "actions": []}
        observation, _ = self._env.reset(seed=seed)
        self._frames.clear()
        self._started = True
        if self.pixels:
            self._frames.extend([self.render_frame()] * self.config.frame_stack)
        state = self._flatten(observation)
        return self._observation(state), {"state": state}

    def _repeat(self, action: np.ndarray) -> tuple[Any, float, bool, bool]:
        """Step the inner env ``action_repeat`` times (fewer at an episode end); no frame is rendered."""
        reward = 0.0
        terminated = truncated = False
        observation: Any = None
        for _ in range(self.config.action_repeat):
            observation, r, terminated, truncated, _ = self._env.step(action)
            reward += float(r)
            if terminated or truncated:
                break
        return observation, reward, bool(terminated), bool(truncated)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("Call reset() before step().")
        action = np.array(action, dtype=self._action_dtype)
        self._episode["actions"].append(action)
        observation, reward, terminated, truncated = self._repeat(action)
        if self.pixels:
            self._frames.append(self.render_frame())
        state = self._flatten(observation)
        return self._observation(state), reward, terminated, truncated, {"state": state}

    def get_episode_state(self) -> dict[str, Any]:
        """What :meth:`set_episode_state` needs to put this env (or another built with the same arguments) exactly
        where it is now, mid-episode included: the inner env's random state before the episode's reset (or the
        reset's seed), the agent actions since then, and the action space's random state.

        Physics cannot be read back in general (dm_control tasks also change the model at reset, e.g. reacher's
        target), so the episode is replayed instead: MuJoCo steps are deterministic for the same build and inputs.
        Holds one ``float64`` action per agent step of the current episode.

        :return: a picklable dict (numpy arrays, ints and tuples); ``{"started": False}`` before the first reset
        """
        space = _get_rng_state(self.action_space.np_random)
        if not self._started:
            return {"started": False, "action_space_rng": space, "renderer": self._renderer_state()}
        return {"started": True, "seed": self._episode["seed"], "rng": self._episode["rng"],
                "actions": np.array(self._episode["actions"], dtype=self._action_dtype).reshape(
                    -1, *self.action_space.shape), "action_space_rng": space,
                "renderer": self._renderer_state()}  # fmt: skip

    def _renderer_state(self) -> Any:
        """Renderer settings that depend on this env's history rather than on its physics state (none here)."""
        return None

    def _set_renderer_state(self, state: Any) -> None:
        """Restore what :meth:`_renderer_state` returned."""

    def set_episode_state(self, state: dict[str, Any]) -> np.ndarray | None:
        """Replay a state from :meth:`get_episode_state`: reset the inner env as that episode was reset, repeat its
        actions (rendering only the frames the stack still holds) and restore the action space's random state.

        :return: the observation at that point (``None`` if the state was taken before the first reset)
        :raises ValueError: actions of another shape than this env's action space
        """
        _set_rng_state(self.action_space.np_random, state["action_space_rng"])
        if not state["started"]:
            self._frames.clear()
            self._started = False
            return None
        actions = np.asarray(state["actions"], dtype=self._action_dtype)
        if actions.shape[1:] != self.action_space.shape:
            raise ValueError(f"episode state holds actions of shape {actions.shape[1:]}, this env takes "
                             f"{self.action_space.shape}: it was taken from another env")  # fmt: skip
        if state["seed"] is None:
            _set_rng_state(self._env.np_random, state["rng"])
        observation, _ = self._env.reset(seed=state["seed"])
        self._set_renderer_state(state.get("renderer"))
        self._episode = {"seed": state["seed"], "rng": state["rng"], "actions": list(actions)}
        self._started = True
        stack = self.config.frame_stack
        self._frames.clear()
        if self.pixels and len(actions) < stack:
            self._frames.extend([self.render_frame()] * stack)
        for i, action in enumerate(actions):
            observation = self._repeat(action)[0]
            if self.pixels and i >= len(actions) - stack:
                self._frames.append(self.render_frame())
        return self._observation(self._flatten(observation))

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

    def _inner_step_limit(self) -> float:
        # dm_control's Environment: time_limit / control_timestep (1000 for the suite's tasks, inf for lqr)
        return float(getattr(getattr(self._env, "_env", None), "_step_limit", math.inf))

    def render_frame(self) -> np.ndarray:
        """Render the current physics state as a channel-first ``uint8`` frame ``(3, H, W)``."""
        if self._camera is None:
            # One persistent camera: dm_control's Physics.render builds (and frees) a new camera and scene per
            # call, which costs about as much as the rendering itself at 84x84. Same pixels either way.
            from dm_control.mujoco.engine import Camera

            size = self.config.image_size
            _check_gl_backend(self.config.task)
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

    def _inner_step_limit(self) -> float:
        limit = self._env.spec.max_episode_steps if self._env.spec is not None else None
        return math.inf if limit is None else float(limit)

    def _renderer_state(self) -> Any:
        # Gymnasium's MuJoCo viewer aims its free camera at the geoms' median position at its first render
        # (BaseRender._init_camera), so the camera depends on the state the env was first rendered in
        renderer = getattr(self._env.unwrapped, "mujoco_renderer", None) if self._mujoco else None
        viewer = (getattr(renderer, "_viewers", None) or {}).get("rgb_array")
        if viewer is None:
            return None
        cam = viewer.cam
        return {"lookat": np.array(cam.lookat), "distance": float(cam.distance), "azimuth": float(cam.azimuth),
                "elevation": float(cam.elevation)}  # fmt: skip

    def _set_renderer_state(self, state: Any) -> None:
        if state is None or not self._mujoco:
            return
        self.render_frame()  # creates the viewer (and its camera) if this env has not rendered yet (after reset)
        cam = self._env.unwrapped.mujoco_renderer._get_viewer(render_mode="rgb_array").cam
        cam.lookat[:] = state["lookat"]
        cam.distance, cam.azimuth, cam.elevation = state["distance"], state["azimuth"], state["elevation"]

    def render_frame(self) -> np.ndarray:
        if self._mujoco:
            # Gymnasium's MujocoRenderer makes its GL context current only when it creates it: with several MuJoCo
            # envs in one process (cross-domain collection, eval env beside train env) another env's context may be
            # current, and the frame comes out wrong (measured: same states, different pixels). Make ours current.
            import mujoco

            if self._fast_pending or not getattr(self._env.unwrapped.mujoco_renderer, "_viewers", None):
                _check_gl_backend(self.config.task)  # before the viewer's GL context exists
            viewer = self._env.unwrapped.mujoco_renderer._get_viewer(render_mode="rgb_array")
            viewer.make_context_current()
            if self._fast_pending:  # switch shadows and reflections off once the viewer (its scene) exists
                for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                    viewer.scn.flags[flag] = 0
                self._fast_pending = False
        try:
            frame = self._env.render()
        except gym.error.DependencyNotInstalled as exc:
            raise MissingRenderDependency(f"{self.config.task} cannot render: {exc}") from None
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
