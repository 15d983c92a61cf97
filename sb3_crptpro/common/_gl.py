"""Process set-up for headless MuJoCo rendering, run once when :mod:`sb3_crptpro` is imported.

Two things must happen before the first OpenGL context of the process, so every entry point (CLI, demo, collection
workers, SubprocVecEnv children, tests) passes through :func:`prepare_rendering` by importing the package:

1. ``MUJOCO_GL``: MuJoCo picks its OpenGL backend the first time it is imported. EGL is the only headless backend on
   the machines we target (osmesa is usually absent and GLFW needs a display). A value set by the user is kept. A
   dm_control imported before us without ``MUJOCO_GL`` and without a display chose GLFW: it is pointed at EGL
   (:func:`adopt_headless_dm_control_backend`).
2. **Libraries that bundle their own LLVM are loaded before Mesa's** (issue 11). With EGL on a machine without a GPU,
   Mesa's software rasteriser (llvmpipe) is loaded with ``RTLD_GLOBAL`` and brings the system ``libLLVM`` into the
   process's global symbol scope. The default (CUDA) torch wheel ships triton, whose ``libtriton.so`` links its own,
   newer LLVM without hiding the symbols. If triton is loaded *after* the first GL context (``torch._dynamo`` imports
   it, e.g. when an Adam optimizer is created), the dynamic linker binds its LLVM references (about 12,000 symbols,
   seen with ``LD_DEBUG=bindings``) to the system ``libLLVM``, and triton's static initialisers crash with a
   segmentation fault inside ``llvm::DebugCounter`` (gdb backtrace: ``_GLOBAL__sub_I_PassBuilder.cpp``). Loaded
   *before*, triton binds to its own copy (it is loaded ``RTLD_LOCAL``, so Mesa still binds to the system one) and
   both work in one process. Importing triton costs ~0.2 s and happens only where it is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings

__all__ = [
    "DEFAULT_MUJOCO_GL",
    "LLVM_BUNDLING_MODULES",
    "adopt_headless_dm_control_backend",
    "forget_current_dm_control_context",
    "gl_backend_advice",
    "prepare_rendering",
    "set_default_mujoco_gl",
]

DEFAULT_MUJOCO_GL = "egl"

#: importable modules whose native library carries its own LLVM with exported symbols; each is imported (if present)
#: before the first GL context so that it binds to its own LLVM, not to the one Mesa puts in the global scope
LLVM_BUNDLING_MODULES: tuple[str, ...] = ("triton",)


def set_default_mujoco_gl() -> str:
    """Set ``MUJOCO_GL`` to :data:`DEFAULT_MUJOCO_GL` if the user has not set it; return the value in force."""
    return os.environ.setdefault("MUJOCO_GL", DEFAULT_MUJOCO_GL)


def _system_llvm_loaded() -> bool:
    """Whether a system ``libLLVM`` (Mesa's) is already mapped into this process (Linux only; False elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any("libLLVM" in line for line in maps)
    except OSError:
        return False


def preload_llvm_bundling_modules() -> list[str]:
    """Import each installed module of :data:`LLVM_BUNDLING_MODULES`; return the names now loaded.

    A module that is not installed is skipped; one that fails to import is skipped with a warning (a broken optional
    dependency of torch must not break rendering). If a system ``libLLVM`` is already loaded (something rendered
    before :mod:`sb3_crptpro` was imported), importing would crash the process, so the module is left alone and a
    :class:`RuntimeWarning` says to import ``sb3_crptpro`` before creating any rendering environment.
    """
    loaded = []
    for name in LLVM_BUNDLING_MODULES:
        if name in sys.modules:
            loaded.append(name)
            continue
        if importlib.util.find_spec(name) is None:
            continue
        if _system_llvm_loaded():
            warnings.warn(
                f"an OpenGL context (Mesa's libLLVM) was created before sb3_crptpro was imported; {name} is "
                f"installed and importing it now (torch does when an optimizer is created) can crash the process "
                f"with a segmentation fault. Import sb3_crptpro (or {name}) before creating rendering environments.",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        try:
            importlib.import_module(name)
        except Exception as error:  # a broken optional install: rendering must still work
            warnings.warn(f"could not pre-import {name} ({error!r}); rendering may crash later", RuntimeWarning,
                          stacklevel=3)  # fmt: skip
            continue
        loaded.append(name)
    return loaded


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def adopt_headless_dm_control_backend(user_set: bool) -> str | None:
    """Point dm_control at EGL when it was imported before :mod:`sb3_crptpro` and chose GLFW on a machine without a
    display; return the backend dm_control renders with (``None`` when dm_control is not imported yet).

    dm_control picks its renderer once, when ``dm_control._render`` is imported: with ``MUJOCO_GL`` unset it takes
    the first of GLFW, EGL, OSMesa that imports, and GLFW imports without a display, then fails at the first render
    (``mujoco.FatalError: an OpenGL platform library has not been loaded``, measured after ``from dm_control import
    suite`` or ``import shimmy`` ahead of ``import sb3_crptpro``). dm_control looks its ``Renderer`` up when it
    creates a context, so replacing it before the first render is enough. A ``MUJOCO_GL`` the user set is kept.

    :param user_set: whether ``MUJOCO_GL`` was set before :func:`set_default_mujoco_gl` ran
    :raises RuntimeError: EGL cannot be loaded here; one line saying what to set
    """
    render = sys.modules.get("dm_control._render")
    if render is None:
        return None
    backend = getattr(render, "BACKEND", None)
    if user_set or backend != "glfw" or _has_display():
        return backend
    try:
        from dm_control._render.pyopengl.egl_renderer import EGLContext
    except Exception as error:  # no libEGL, or PyOpenGL already bound to another platform
        raise RuntimeError(
            f"dm_control was imported before sb3_crptpro with MUJOCO_GL unset on a machine without a display, so it "
            f"chose GLFW, which cannot render here, and EGL does not load ({error}): set MUJOCO_GL=egl (or osmesa) "
            "before starting Python"
        ) from None
    render.Renderer, render.BACKEND, render.USING_GPU = EGLContext, "egl", True
    return "egl"


def gl_backend_advice() -> str | None:
    """What to set when the ``MUJOCO_GL`` in force cannot render here, or ``None``: GLFW (``MUJOCO_GL=glfw``, or
    unset with a dm_control that chose it) opens a window, and needs a display (``DISPLAY`` / ``WAYLAND_DISPLAY``,
    Linux); without one its first render raises ``mujoco.FatalError: an OpenGL platform library has not been
    loaded`` (measured with ``MUJOCO_GL=glfw`` and no ``DISPLAY``)."""
    if sys.platform.startswith("linux") and os.environ.get("MUJOCO_GL", "").lower() == "glfw" and not _has_display():
        return ("MUJOCO_GL=glfw needs a display and this machine has none (DISPLAY and WAYLAND_DISPLAY unset): set "
                "MUJOCO_GL=egl (headless rendering) or unset it")  # fmt: skip
    return None


def prepare_rendering() -> str:
    """Run the process set-up above (``MUJOCO_GL`` default, a dm_control imported earlier pointed at it, then the
    LLVM preload); return ``MUJOCO_GL``.

    Idempotent and cheap after the first call.
    """
    user_set = "MUJOCO_GL" in os.environ
    backend = set_default_mujoco_gl()
    adopt_headless_dm_control_backend(user_set)
    preload_llvm_bundling_modules()
    return backend


def forget_current_dm_control_context() -> None:
    """Tell dm_control that none of its OpenGL contexts is current on this thread any more.

    Gymnasium's MuJoCo renderer (and ``mujoco.Renderer``) call ``eglMakeCurrent`` themselves; dm_control caches which
    of *its* contexts is current per thread and skips ``eglMakeCurrent`` when it believes nothing changed. After a
    Gymnasium env rendered, a DMC env of the same process would then draw into the Gymnasium context: measured in a
    mixed collection (issue 15), identical states gave frames differing by up to 255 levels (mean 56). Called after
    every Gymnasium MuJoCo render; uses dm_control's private bookkeeping (``dm_control._render.base``), a no-op when
    dm_control is absent or changes it.
    """
    import threading

    try:
        from dm_control._render import base
    except ImportError:
        return
    contexts = getattr(base, "_CURRENT_CONTEXT_FOR_THREAD", None)
    threads = getattr(base, "_CURRENT_THREAD_FOR_CONTEXT", None)
    if contexts is None or threads is None:
        return
    current = contexts.pop(threading.current_thread(), None)
    if current is not None:
        threads.pop(current, None)
