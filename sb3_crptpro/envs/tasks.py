"""What a pixel env renders: DeepMind Control task names and Gymnasium ids (:func:`resolve_env`), render presets,
and :class:`DMCConfig`, the record datasets and artifacts keep of it."""

from __future__ import annotations

import difflib
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np

with warnings.catch_warnings():
    # gymnasium's MuJoCo viewer imports glfw, which warns when there is no X display; we render headless (EGL)
    warnings.filterwarnings("ignore", message=".*DISPLAY environment variable is missing")
    import shimmy  # noqa: F401  (registers the dm_control/* Gymnasium ids)

__all__ = ["EPISODE_ENV_STEPS", "RENDER_PRESETS", "UNBOUNDED_ACTION", "DMCConfig", "available_tasks", "build_config",
           "check_bounded_actions", "check_stack_fits", "domain_of", "resolve_env", "resolve_task",
           "seen_in_pretraining"]  # fmt: skip

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
    """Map every canonical ``"domain_task"`` name to ``(domain, task)`` from shimmy's ``dm_control/*`` ids of
    dm_control's suite (``dm_control.suite.ALL_TASKS``).

    shimmy also registers ids that are not suite tasks: locomotion and manipulation ids, which have no domain-task
    form, and ``dm_control/compatibility-env-v0``, a wrapper that needs an env object (``gym.make`` of it without
    one raises a ``TypeError``); neither is a task here.
    """
    from dm_control import suite

    suite_tasks = set(suite.ALL_TASKS)
    tasks: dict[str, tuple[str, str]] = {}
    for env_id in gym.registry:
        if not env_id.startswith("dm_control/") or not env_id.endswith("-v0"):
            continue
        parts = tuple(env_id[len("dm_control/") : -len("-v0")].split("-"))
        if parts in suite_tasks:
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


def check_stack_fits(frame_stack: int, image_size: int) -> None:
    """Refuse stacks with more channels than the frame has pixels on a side.

    SB3 (``is_image_space_channels_first``) takes the smallest axis for the channels, so ``(18, 16, 16)`` (6 frames
    at 16 px) reads as channel-last, gets transposed by ``VecTransposeImage`` and reaches the encoder in the wrong
    layout.

    :raises ValueError: ``3 * frame_stack > image_size``, with the sizes that work
    """
    if 3 * frame_stack > image_size:
        raise ValueError(
            f"frame_stack {frame_stack} gives {3 * frame_stack} channels, more than the {image_size} px frame side: "
            f"SB3 would read ({3 * frame_stack}, {image_size}, {image_size}) as channel-last and transpose it; use "
            f"frames of at least {3 * frame_stack} px (collect --image-size) or a smaller frame stack"
        )


def _validate(image_size: int, frame_stack: int, action_repeat: int, render: str) -> None:
    for label, value in (("image_size", image_size), ("frame_stack", frame_stack), ("action_repeat", action_repeat)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if render not in RENDER_PRESETS:
        raise ValueError(f"Unknown render preset {render!r}; choose one of {sorted(RENDER_PRESETS)}")
    check_stack_fits(frame_stack, image_size)


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


#: action bounds this wide mean "no bounds" (MuJoCo's ``mjMAXVAL``, what dm_control declares for them)
UNBOUNDED_ACTION = 1e10


def check_bounded_actions(task: str, space: gym.spaces.Box) -> None:
    """Refuse a task without real action bounds: a random policy (``collect``, and SAC/TQC before
    ``learning_starts``) draws actions uniformly between the bounds, and SAC/TQC squash their actions into them.

    dm_control gives an actuator without a control range the bounds +-``mjMAXVAL`` = 1e10 (MuJoCo's largest value,
    ``dm_control.mujoco.engine.action_spec``), e.g. ``lqr_lqr_2_1``: uniform actions would then be of size ~1e10,
    which no policy would apply and which throws the physics far off its states; a squashed action of 0.5 would be
    5e9.

    :param task: the task's name (for the message)
    :param space: its action space
    :raises ValueError: a bound that is infinite or at least 1e10
    """
    bound = float(np.max(np.abs(np.concatenate([space.low.ravel(), space.high.ravel()]))))
    if not np.isfinite(bound) or bound >= UNBOUNDED_ACTION:
        raise ValueError(f"{task} has unbounded actions (bounds {space.low.min():g} to {space.high.max():g}): a "
                         f"uniform random policy would draw actions of size ~{bound:.0e} (collect, and SAC/TQC before "
                         "learning_starts), and SAC/TQC scale their actions to these bounds; use tasks whose actions "
                         "have a range")  # fmt: skip


def domain_of(task: str) -> str:
    """The domain of a task: the dm_control domain (``"walker"`` for ``"walker_walk"``), a Gymnasium env's id."""
    return resolve_task(task)[0] if resolve_env(task)[0] == "dmc" else task


def seen_in_pretraining(task: str, pretraining_tasks: list[str] | tuple[str, ...]) -> bool:
    """Whether ``task``'s domain is one the encoder was pretrained on (the one meaning of "seen" in the package:
    ``walker_walk`` is seen by an encoder pretrained on ``walker_run`` frames, the same bodies and scene).

    :param task: DMC task or Gymnasium id
    :param pretraining_tasks: the artifact's ``tasks`` metadata
    """
    return domain_of(task) in {domain_of(t) for t in pretraining_tasks}
