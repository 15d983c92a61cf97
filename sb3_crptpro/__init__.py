"""sb3-crptpro: CRPTpro (cross-domain random pre-training with prototypes) for Stable-Baselines3.

Importing the package sets ``MUJOCO_GL=egl`` when the user has not chosen a backend (headless rendering).
"""

from sb3_crptpro._gl import set_default_mujoco_gl

set_default_mujoco_gl()

from sb3_crptpro._version import __version__  # noqa: E402
from sb3_crptpro.envs import (  # noqa: E402
    RENDER_PRESETS,
    DMCConfig,
    DMCPixelEnv,
    available_tasks,
    make_dmc_env,
    make_dmc_vec_env,
    resolve_task,
)

__all__ = [
    "RENDER_PRESETS",
    "DMCConfig",
    "DMCPixelEnv",
    "__version__",
    "available_tasks",
    "make_dmc_env",
    "make_dmc_vec_env",
    "resolve_task",
]
