"""Process set-up for rendering (issue 11): the default CUDA torch wheel (with triton) renders and trains in one
process.

The crash needs triton (shipped with the CUDA build of torch); those tests skip where it is absent and run in the
default-resolution virtualenv of ``.ci/run``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sb3_crptpro.common import _gl

HAS_TRITON = importlib.util.find_spec("triton") is not None


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MUJOCO_GL": "egl", **env})  # fmt: skip


def test_user_backend_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert _gl.prepare_rendering() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    assert _gl.prepare_rendering() == "egl"


def test_preload_imports_installed_modules_and_skips_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gl, "LLVM_BUNDLING_MODULES", ("colorsys", "no_such_module_xyz"))
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    monkeypatch.setattr(_gl, "_system_llvm_loaded", lambda: False)
    assert _gl.preload_llvm_bundling_modules() == ["colorsys"]
    assert "colorsys" in sys.modules


def test_preload_refuses_after_a_gl_context_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_gl, "LLVM_BUNDLING_MODULES", ("colorsys",))
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    monkeypatch.setattr(_gl, "_system_llvm_loaded", lambda: True)
    with pytest.warns(RuntimeWarning, match="Import sb3_crptpro .* before creating rendering environments"):
        assert _gl.preload_llvm_bundling_modules() == []
    assert "colorsys" not in sys.modules


@pytest.mark.slow
def test_render_then_optimizer_and_triton_in_one_process() -> None:
    """The crash's situation: render (EGL, Mesa llvmpipe) first, then create Adam and import triton."""
    proc = _run(
        """
        import faulthandler; faulthandler.enable()
        import torch
        from sb3_crptpro import make_dmc_env
        env = make_dmc_env("cartpole_swingup", image_size=32, render="fast", seed=0)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        opt = torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3)  # imports torch._dynamo
        import importlib.util
        if importlib.util.find_spec("triton"):
            import triton  # noqa: F401
        env.close()
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-3000:])


@pytest.mark.slow
def test_subproc_vec_env_children_render_then_train() -> None:
    """SubprocVecEnv children (forkserver) render, then the parent trains with Adam."""
    proc = _run(
        """
        import torch
        from stable_baselines3.common.vec_env import SubprocVecEnv
        from sb3_crptpro import make_dmc_vec_env
        venv = make_dmc_vec_env("cartpole_swingup", 2, image_size=32, render="fast", seed=0, vec_env_cls=SubprocVecEnv,
                                vec_env_kwargs={"start_method": "forkserver"})
        venv.reset()
        opt = torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
        venv.close()
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-3000:])


@pytest.mark.slow
def test_rendering_before_importing_the_package_is_reported() -> None:
    proc = _run(
        """
        import warnings
        from dm_control import suite
        env = suite.load("cartpole", "swingup")
        env.reset()
        env.physics.render(32, 32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import sb3_crptpro  # noqa: F401
        print(sum("before creating rendering environments" in str(w.message) for w in caught))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == ("1" if HAS_TRITON else "0")


def _headless(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh process without a display and without ``MUJOCO_GL`` (a headless server's defaults)."""
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL",
                                                             "PYOPENGL_PLATFORM")}  # fmt: skip
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600,
                          env={**clean, **env})  # fmt: skip


@pytest.mark.parametrize("first", ["from dm_control import suite", "import shimmy"])
def test_dm_control_imported_first_on_a_headless_machine_still_renders(first: str) -> None:
    """dm_control imported before sb3_crptpro chose GLFW (no MUJOCO_GL, no display), which failed at the first
    render with mujoco.FatalError; sb3_crptpro now points it at EGL."""
    proc = _headless(f"""
        {first}
        from dm_control import _render
        print(_render.BACKEND)
        from sb3_crptpro import make_dmc_env
        print(_render.BACKEND)
        frames = make_dmc_env("cartpole_swingup", image_size=16, render="fast").reset()[0]
        print(frames.shape, int(frames.max()))
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after, frame = proc.stdout.splitlines()
    assert (before, after) == ("glfw", "egl")
    assert frame.startswith("(9, 16, 16)") and int(frame.split()[-1]) > 0  # a rendered frame, not a blank one


def test_a_backend_the_user_chose_is_kept_and_a_failed_switch_says_what_to_set() -> None:
    proc = _headless("""
        from dm_control import _render
        import sb3_crptpro
        print(_render.BACKEND)
    """, MUJOCO_GL="glfw")  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "glfw", proc.stderr[-2000:]
    # PyOpenGL bound to another platform: EGL cannot load, and the import says what to set in one line
    proc = _headless("""
        from dm_control import suite
        import sb3_crptpro
    """, PYOPENGL_PLATFORM="osmesa")  # fmt: skip
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "chose GLFW, which cannot render here" in last and "set MUJOCO_GL=egl (or osmesa) before" in last


def test_glfw_chosen_by_the_user_on_a_headless_machine_says_what_to_set(tmp_path: Path) -> None:
    """MUJOCO_GL=glfw without a display gave a traceback ending in mujoco.FatalError; the CLI now prints one line."""
    proc = _headless(f"""
        import sys
        from sb3_crptpro.app.cli import main
        sys.exit(main(["collect", "--tasks", "cartpole_swingup", "--transitions", "4", "--out", {str(tmp_path)!r},
                       "--workers", "1", "--image-size", "16", "--no-progress"]))
    """, MUJOCO_GL="glfw")  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "cartpole_swingup cannot render: MUJOCO_GL=glfw needs a display" in last and "MUJOCO_GL=egl" in last
    assert "Traceback" not in proc.stderr
