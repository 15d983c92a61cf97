"""The reference protocol on a CUDA machine, at a configurable fraction: 3 domains x 100k random transitions
(paper render preset, 84 px, action repeat 2), 50k pretraining updates at batch 512, downstream AugmentedSAC with
intrinsic coefficient 0.2 and the paper preset. Same report format as ``quality.py``; resumable.

Usage: ``python benchmarks/gpu_reproduce.py --fraction 0.01`` (a ~10-minute slice on one modern GPU) or
``--fraction 1.0`` (the full protocol). It checks free GPU memory first. ``--device cpu`` with a tiny fraction runs
on CPU (tests use it so this script cannot rot).
"""

from __future__ import annotations

import argparse
import sys
import time

from _protocol import ProtocolSizes, run_protocol

#: the paper's numbers at fraction 1.0 (PAPER.md)
REFERENCE = {"transitions": 100_000, "updates": 50_000, "downstream_steps": 100_000, "probe_transitions": 10_000}
#: free GPU memory the reference batch needs with margin (encoder, target, activations at batch 512, 84 px)
MIN_FREE_GIB = 8.0


def check_device(device: str, min_free_gib: float) -> None:
    """Refuse to start without a usable device: CUDA present and enough free memory."""
    import torch

    if device == "cpu":
        return
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script is for a GPU machine (use --device cpu for a tiny dry run)")
    free, total = torch.cuda.mem_get_info()
    print(f"GPU {torch.cuda.get_device_name()}: {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB")
    if free / 2**30 < min_free_gib:
        raise SystemExit(f"only {free / 2**30:.1f} GiB free, need {min_free_gib} GiB; free the GPU or lower the batch")


def scaled_sizes(fraction: float, args: argparse.Namespace) -> ProtocolSizes:
    """Reference sizes times ``fraction`` (at least a handful of each so that every step runs)."""

    def scale(key: str, floor: int) -> int:
        return max(int(REFERENCE[key] * fraction), floor)

    return ProtocolSizes(
        tasks=args.tasks,
        unseen_tasks=args.unseen_tasks,
        image_size=args.image_size,
        action_repeat=args.action_repeat,
        render=args.render,
        transitions=scale("transitions", 60),
        probe_transitions=scale("probe_transitions", 60),
        updates=scale("updates", 2),
        batch_size=args.batch_size,
        num_protos=args.num_protos,
        alphas=[0.005, 0.0],
        pretrain_preset="paper",  # the reproduction runs the reference setting exactly
        downstream_task=args.downstream_task,
        downstream_action_repeat=args.downstream_action_repeat,
        downstream_steps=scale("downstream_steps", 40),
        downstream_seeds=args.seeds,
        downstream_encoders=["alpha=0.005", "alpha=0", "random init"],
        intrinsic_coef=0.2,
        preset=args.preset,
        eval_episodes=args.eval_episodes,
        device=args.device,
        workers=args.workers,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.01, help="of the reference sizes (default: 0.01)")
    parser.add_argument("--out", default="outputs/gpu_reproduce", help="output folder (default: %(default)s)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument("--tasks", nargs="+", default=["cheetah_run", "walker_run", "quadruped_run"])
    parser.add_argument("--unseen-tasks", nargs="+", default=["cartpole_swingup", "finger_spin"])
    parser.add_argument("--downstream-task", default="walker_walk")
    parser.add_argument("--downstream-action-repeat", type=int, default=2)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--action-repeat", type=int, default=2, help="of collection (default: 2, the paper's)")
    parser.add_argument("--render", default="paper", choices=["paper", "fast"])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--num-protos", type=int, default=512)
    parser.add_argument("--preset", default="paper", choices=["paper", "quick"])
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=None, help="collection workers (default: CPU count)")
    parser.add_argument("--min-free-gib", type=float, default=MIN_FREE_GIB)
    args = parser.parse_args(argv)
    if not 0 < args.fraction <= 1:
        parser.error("--fraction must be in (0, 1]")
    check_device(args.device, args.min_free_gib)
    start = time.perf_counter()
    run_protocol(scaled_sizes(args.fraction, args), args.out)
    print(f"report: {args.out}/report.md ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
