"""Each CLI stage's time with this checkout against another one (a git worktree of an older commit), same machine.

Whether a change made a stage slower cannot be measured by a script that imports the new code only (an older commit
lacks the new modules). This script runs the same ``sb3-crptpro`` commands in subprocesses with ``PYTHONPATH`` set to
each checkout, alternating between them (baseline, this checkout, baseline, ...) so that a change in the machine's
load hits both, and prints the median seconds of each and the ratio this / baseline:

- ``collect``: 2 domains, 2 rendering workers, 64 px, fast preset
- ``pretrain``: a short pretraining of the default preset on those data (batch 64)
- ``train embedding``: ``train --mode embedding`` (one process, updates after ``learning_starts``)
- ``train reference``: ``train --mode reference`` (AugmentedSAC on pixels)
- ``evaluate``: ``evaluate`` of the embedding run of the same checkout

Make the baseline with ``git worktree add /tmp/baseline <commit>``. Both checkouts run in this interpreter's
environment (same torch, same dependencies); only the package's own code differs. ``OMP_NUM_THREADS`` is left as the
caller set it.

Usage: ``python benchmarks/compare_checkouts.py --baseline /tmp/baseline [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stages(work: Path, args: argparse.Namespace) -> dict[str, list[str]]:
    data, logs = work / "data", work / "logs"
    # fmt: off
    train = ["train", "--task", "cartpole_swingup", "--encoder", "dmc-64px", "--action-repeat", "8", "--eval-freq", "0",
             "--log-dir", str(logs), "--no-progress"]
    return {
        "collect": ["collect", "--tasks", "cartpole_swingup", "walker_walk", "--transitions", str(args.transitions),
                    "--out", str(data), "--workers", "2", "--image-size", "64", "--action-repeat", "8", "--render",
                    "fast", "--no-progress"],
        "pretrain": ["pretrain", "--data", str(data), "--out", str(work / "encoder.safetensors"), "--updates",
                     str(args.pretrain_updates), "--batch-size", "64", "--checkpoint-every", "0",
                     "--no-progress"],
        "train embedding": [*train, "--mode", "embedding", "--steps", str(args.train_steps), "--learning-starts",
                            str(args.train_steps // 4)],
        "train reference": [*train, "--mode", "reference", "--steps", str(args.reference_steps), "--learning-starts",
                            str(args.reference_steps // 4)],
        "evaluate": ["evaluate", "--run", str(logs / "sac" / "cartpole_swingup_1"), "--episodes", str(args.episodes),
                     "--no-progress"],
    }
    # fmt: on


def _run(checkout: Path, argv: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sb3_crptpro.app.cli", *argv], cwd=cwd, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{checkout}: sb3-crptpro {' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each stage per checkout (default: 2)")
    parser.add_argument("--transitions", type=int, default=200, help="collected per domain (default: %(default)s)")
    parser.add_argument("--pretrain-updates", type=int, default=30, help="(default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=300, help="agent steps, embedding (default: %(default)s)")
    parser.add_argument("--reference-steps", type=int, default=40, help="agent steps, reference (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=1, help="evaluate episodes (default: %(default)s)")
    args = parser.parse_args()
    checkouts = {"baseline": args.baseline.resolve(), "this": ROOT}
    load = os.getloadavg()
    print(
        f"baseline {checkouts['baseline']}, this {ROOT}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
        f", load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    seconds: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="compare_checkouts_") as tmp:
        for repeat in range(args.repeats):
            for name in ("baseline", "this") if repeat % 2 == 0 else ("this", "baseline"):
                work = Path(tmp) / f"{name}_{repeat}"
                work.mkdir()
                for stage, argv in _stages(work, args).items():
                    seconds.setdefault(stage, {}).setdefault(name, []).append(_run(checkouts[name], argv, work))
    print(f"{'stage':<18}{'baseline s':>12}{'this s':>10}{'ratio':>8}   (median of {args.repeats})")
    for stage, by in seconds.items():
        base, this = statistics.median(by["baseline"]), statistics.median(by["this"])
        print(f"{stage:<18}{base:>12.1f}{this:>10.1f}{this / base:>8.2f}")


if __name__ == "__main__":
    main()
