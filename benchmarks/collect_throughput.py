"""Collection throughput and disk footprint.

Measures, in this process and for one render preset:
- the raw single-process loop (env step + render of one frame, nothing stored) in frames/s: the baseline;
- ``collect`` with 1 worker and with 2 workers (wall clock, process start-up included), frames/s and the ratio per
  worker to the raw loop;
- bytes on disk per transition vs the reference layout (obs + next_obs stacks: 2 x 9 x 84 x 84 bytes at 84 px).

Usage: ``python benchmarks/collect_throughput.py [--task walker_run] [--transitions 2000] [--render fast]``.
Targets: >= 0.9x raw loop per worker; <= 1.1 frames per transition.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sb3_crptpro import make_dmc_env
from sb3_crptpro.data import collect, read_manifest


def raw_loop_fps(task: str, steps: int, image_size: int, render: str, action_repeat: int) -> float:
    env = make_dmc_env(task, image_size=image_size, render=render, frame_stack=1, action_repeat=action_repeat, seed=0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    env.step(rng.uniform(env.action_space.low, env.action_space.high))  # GL context creation: not timed
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(env.action_space.low, env.action_space.high))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def collect_fps(task: str, transitions: int, workers: int, image_size: int, render: str, action_repeat: int):
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        (directory,) = collect(
            [task],
            tmp,
            transitions_per_domain=transitions,
            n_workers=workers,
            chunk_transitions=max(transitions // (2 * workers), 1),
            image_size=image_size,
            render=render,
            action_repeat=action_repeat,
            progress=False,
        )
        elapsed = time.perf_counter() - start
        counts = read_manifest(Path(directory))["counts"]
    return counts["frames"] / elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="walker_run")
    parser.add_argument("--transitions", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--render", default="fast", choices=["paper", "fast"])
    parser.add_argument("--action-repeat", type=int, default=2)
    args = parser.parse_args()
    common = (args.image_size, args.render, args.action_repeat)

    raw = raw_loop_fps(args.task, args.transitions // 2, *common)
    print(f"task {args.task}, preset {args.render}, {args.image_size}px, {args.transitions} transitions")
    print(f"{'run':<22} {'frames/s':>9} {'per worker / raw':>17}")
    print(f"{'raw loop (1 process)':<22} {raw:9.1f} {1.0:16.2f}x")
    counts = None
    for workers in (1, 2):
        fps, counts = collect_fps(args.task, args.transitions, workers, *common)
        print(f"{f'collect, {workers} worker(s)':<22} {fps:9.1f} {fps / workers / raw:16.2f}x")
    assert counts is not None
    frame = 3 * args.image_size * args.image_size
    per = counts["bytes"] / counts["transitions"]
    reference = 2 * 9 * args.image_size * args.image_size
    print(f"bytes per transition: {per:.0f} ({per / frame:.3f} frames)")
    print(f"reference layout (obs + next_obs stacks): {reference} bytes, {reference / per:.1f}x more")


if __name__ == "__main__":
    main()
