"""Headless OpenGL default for MuJoCo rendering.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` the first time it is imported, so this must run before
``mujoco``/``dm_control`` are imported. EGL is the only headless backend on the machines we target (osmesa is
usually absent and GLFW needs a display). A value set by the user is never overridden.
"""

import os

DEFAULT_MUJOCO_GL = "egl"


def set_default_mujoco_gl() -> str:
    """Set ``MUJOCO_GL`` to :data:`DEFAULT_MUJOCO_GL` if the user has not set it; return the value in force."""
    return os.environ.setdefault("MUJOCO_GL", DEFAULT_MUJOCO_GL)
