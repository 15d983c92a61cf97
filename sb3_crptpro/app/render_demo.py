"""A first look at the pixel environments: render a few frames of several domains into one PNG grid."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sb3_crptpro.envs import make_dmc_env

DEFAULT_DEMO_TASKS = ("cheetah_run", "walker_run", "quadruped_run")


def render_frame_grid(
    out_path: str | Path,
    tasks: Sequence[str] = DEFAULT_DEMO_TASKS,
    *,
    n_frames: int = 6,
    image_size: int = 84,
    render: str = "fast",
    seed: int = 0,
) -> dict[str, float]:
    """Step each task with random actions, save a ``len(tasks) x n_frames`` PNG grid and return frames/s per task.

    :param out_path: PNG file to write (parent folders are created)
    :param tasks: DMC task names, one grid row each
    :param n_frames: frames per row (one per agent step, starting with the reset frame)
    :param image_size: frame side in pixels
    :param render: render preset
    :param seed: env and action seed
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if n_frames < 1 or not tasks:
        raise ValueError("need at least one task and one frame")
    rows: list[list[np.ndarray]] = []
    timings: dict[str, float] = {}
    for task in tasks:
        env = make_dmc_env(task, image_size=image_size, render=render, seed=seed)
        env.reset(seed=seed)
        row = [env.render()]
        start = time.perf_counter()
        for _ in range(n_frames - 1):
            env.step(env.action_space.sample())
            row.append(env.render())
        elapsed = time.perf_counter() - start
        timings[task] = (n_frames - 1) / elapsed if n_frames > 1 and elapsed > 0 else float("nan")
        rows.append(row)
        env.close()

    fig, axes = plt.subplots(len(tasks), n_frames, figsize=(1.6 * n_frames, 1.7 * len(tasks)), squeeze=False)
    for r, (task, row) in enumerate(zip(tasks, rows, strict=True)):
        for c, frame in enumerate(row):
            ax = axes[r][c]
            ax.imshow(frame)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(task, fontsize=8)
            if r == 0:
                ax.set_title(f"step {c}", fontsize=8)
    fig.suptitle(f"Random-policy frames, render preset '{render}'", fontsize=9)
    fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return timings
