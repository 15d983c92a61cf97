"""Stage 1, environments: pixel envs for SB3 from DeepMind Control tasks (through shimmy's Gymnasium registration)
and any Gymnasium env that renders (issue 15).

:func:`make_pixel_env` (any name, :func:`resolve_env`) and :func:`make_dmc_env` (DMC names) return a channel-first
``uint8`` frame-stack environment (``(3 * frame_stack, H, W)``), exactly what SB3's ``CnnPolicy`` expects, with
action repeat, the reference camera per DMC domain and a render preset (:data:`RENDER_PRESETS`); the proprioceptive
state is ``info["state"]``. Modules: :mod:`~sb3_crptpro.envs.tasks` (names, presets, :class:`DMCConfig`),
:mod:`~sb3_crptpro.envs.pixel_env` (the env classes), :mod:`~sb3_crptpro.envs.factory` (``make_*`` functions).
"""

# mujoco / dm_control are imported by these modules: importing this package first ran sb3_crptpro/__init__.py,
# whose prepare_rendering() chose the GL backend and loaded triton's LLVM before any GL context (common/_gl.py)
from sb3_crptpro.envs.factory import (
    check_time_limit,
    check_vec_env_time_limits,
    make_dmc_env,
    make_dmc_vec_env,
    make_pixel_env,
    make_pixel_vec_env,
    pixel_env,
)
from sb3_crptpro.envs.pixel_env import DMCPixelEnv, GymPixelEnv, MissingRenderDependency, PixelEnv
from sb3_crptpro.envs.tasks import (
    EPISODE_ENV_STEPS,
    RENDER_PRESETS,
    DMCConfig,
    available_tasks,
    build_config,
    resolve_env,
    resolve_task,
)

__all__ = [
    "EPISODE_ENV_STEPS",
    "RENDER_PRESETS",
    "DMCConfig",
    "DMCPixelEnv",
    "GymPixelEnv",
    "MissingRenderDependency",
    "PixelEnv",
    "available_tasks",
    "build_config",
    "check_time_limit",
    "check_vec_env_time_limits",
    "make_dmc_env",
    "make_dmc_vec_env",
    "make_pixel_env",
    "make_pixel_vec_env",
    "pixel_env",
    "resolve_env",
    "resolve_task",
]
