"""Frames/s of step + render for several DMC domains under both render presets, and physics-only steps/s.

Usage: ``python benchmarks/render_throughput.py [--tasks ...] [--steps 200] [--image-size 84]``.
Prints a table with the fast/paper ratio (both measured in this process, one core, same random actions).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sb3_crptpro import make_dmc_env


def frames_per_second(task: str, render: str, steps: int, image_size: int) -> float:
    """Agent steps (each one physics step + one render) per second with the given preset."""
    env = make_dmc_env(task, render=render, image_size=image_size, action_repeat=1, seed=0)
    env.reset(seed=0)
    env.step(env.action_space.sample())  # first render creates the GL context: not timed
    start = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
    fps = steps / (time.perf_counter() - start)
    env.close()
    return fps


def physics_steps_per_second(task: str, steps: int) -> float:
    """Physics-control steps per second without any rendering."""
    env = make_dmc_env(task, render="fast", image_size=16, action_repeat=1, seed=0)
    env.reset(seed=0)
    inner = env._env  # the shimmy env: step only, no render
    actions = np.random.default_rng(0).uniform(
        env.action_space.low, env.action_space.high, (steps, *env.action_space.shape)
    )
    start = time.perf_counter()
    for action in actions:
        inner.step(action)
    sps = steps / (time.perf_counter() - start)
    env.close()
    return sps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["cheetah_run", "walker_run", "quadruped_run", "reacher_easy"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=84)
    args = parser.parse_args()

    print(f"{'task':<16} {'paper fps':>10} {'fast fps':>10} {'fast/paper':>11} {'physics sps':>12}")
    ratios = []
    for task in args.tasks:
        paper = frames_per_second(task, "paper", args.steps, args.image_size)
        fast = frames_per_second(task, "fast", args.steps, args.image_size)
        physics = physics_steps_per_second(task, args.steps * 10)
        ratios.append(fast / paper)
        print(f"{task:<16} {paper:10.1f} {fast:10.1f} {fast / paper:10.2f}x {physics:12.0f}")
    print(f"geometric mean fast/paper ratio: {float(np.exp(np.mean(np.log(ratios)))):.2f}x")


if __name__ == "__main__":
    main()
