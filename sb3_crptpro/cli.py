"""The ``sb3-crptpro`` command line (one entry point, one subcommand per pipeline stage)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sb3_crptpro._version import __version__


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one clear line (plus usage), never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_demo(args: argparse.Namespace) -> int:
    from sb3_crptpro.render_demo import render_frame_grid

    out = Path(args.out) / "frames.png"
    start = time.perf_counter()
    timings = render_frame_grid(out, args.tasks, n_frames=args.frames, image_size=args.image_size, render=args.render)
    print(f"{'task':<20} {'frames/s':>9}")
    for task, fps in timings.items():
        print(f"{task:<20} {fps:9.1f}")
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from sb3_crptpro.render_demo import DEFAULT_DEMO_TASKS

    p = sub.add_parser("demo", help="render a few frames of several domains into a PNG grid and print timings")
    p.add_argument("--out", default="outputs/demo", help="report folder (default: %(default)s)")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_DEMO_TASKS), help="DMC tasks (default: %(default)s)")
    p.add_argument("--frames", type=int, default=6, help="frames per task (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=84, help="frame side in pixels (default: %(default)s)")
    p.add_argument("--render", choices=["paper", "fast"], default="fast", help="render preset (default: %(default)s)")
    p.set_defaults(func=_cmd_demo)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _cmd_collect(args: argparse.Namespace) -> int:
    from sb3_crptpro.data.collect import collect
    from sb3_crptpro.data.store import read_manifest

    start = time.perf_counter()
    directories = collect(
        args.tasks,
        args.out,
        transitions_per_domain=args.transitions,
        n_workers=args.workers,
        seed=args.seed,
        image_size=args.image_size,
        action_repeat=args.action_repeat,
        render=args.render,
        frame_stack=args.frame_stack,
        chunk_transitions=args.chunk,
        resume=args.resume,
        progress=not args.no_progress,
    )
    for directory in directories:
        counts = read_manifest(directory)["counts"]
        per = counts["bytes"] / max(counts["transitions"], 1)
        episodes = counts["episodes"]
        print(f"{directory}: {counts['transitions']} transitions, {episodes} episodes, {per / 1024:.1f} KiB/transition")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _add_collect(sub: argparse._SubParsersAction) -> None:
    from sb3_crptpro.data.collect import DEFAULT_CHUNK_TRANSITIONS

    p = sub.add_parser("collect", help="collect uniform-random transitions from DMC domains into datasets")
    p.add_argument("--tasks", nargs="+", required=True, help="DMC tasks, e.g. cheetah_run walker_run quadruped_run")
    p.add_argument("--transitions", type=_positive_int, required=True, help="transitions per domain (exact)")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per task")
    p.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: CPU count)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default: %(default)s)")
    p.add_argument("--image-size", type=_positive_int, default=84, help="frame side in pixels (default: %(default)s)")
    p.add_argument("--action-repeat", type=_positive_int, default=2, help="action repeat (default: %(default)s)")
    p.add_argument("--render", choices=["paper", "fast"], default="paper", help="render preset (default: %(default)s)")
    p.add_argument("--frame-stack", type=_positive_int, default=3, help="frame stack recorded for readers (default: 3)")
    p.add_argument(
        "--chunk",
        type=_positive_int,
        default=DEFAULT_CHUNK_TRANSITIONS,
        help="transitions per shard (default: %(default)s)",
    )
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue an interrupted run (default: on)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_cmd_collect)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    import dataclasses

    from sb3_crptpro.data.sampler import CrossDomainDataset
    from sb3_crptpro.pretrain import PretrainConfig, Pretrainer

    fields = {f.name for f in dataclasses.fields(PretrainConfig)}
    config = PretrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    out = Path(args.out)
    work_dir = Path(args.work_dir) if args.work_dir else out.with_name(out.stem + "_pretrain")
    dataset = CrossDomainDataset(args.data, frame_stack=args.frame_stack, mode=config.sampling)
    trainer = Pretrainer(config, dataset, work_dir)
    stats = trainer.fit(resume=args.resume)
    path = trainer.save(out, stats)
    if path is not None:
        final = stats["final"]
        print(f"wrote {path} ({stats['updates']} updates, {stats['updates_per_s']:.2f} updates/s, "
              f"loss {final.get('loss', float('nan')):.4f}); logs and checkpoint in {work_dir}")  # fmt: skip
    return 0


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    import dataclasses

    from sb3_crptpro.pretrain import PretrainConfig

    p = sub.add_parser("pretrain", help="pretrain a CRPTpro encoder on collected datasets")
    p.add_argument("--data", required=True, nargs="+", help="dataset folder(s) written by `collect`")
    p.add_argument("--out", required=True, help="artifact file to write (.safetensors)")
    p.add_argument("--work-dir", default=None, help="metrics and checkpoints (default: <out stem>_pretrain/)")
    p.add_argument("--frame-stack", type=_positive_int, default=3, help="frames per observation (default: 3)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --work-dir")
    defaults = PretrainConfig()
    docs = {
        "updates": "number of updates",
        "batch_size": "batch size (summed over processes under torchrun)",
        "lr": "Adam learning rate",
        "temperature": "softmax / Sinkhorn temperature",
        "num_protos": "number of prototypes",
        "proj_dim": "projection size",
        "pred_dim": "predictor hidden size",
        "sinkhorn_iters": "Sinkhorn-Knopp iterations",
        "ema_tau": "target network EMA rate",
        "alpha": "weight of the intrinsic (prototype-spreading) loss; 0 = plain Proto-RL",
        "sampling": "round_robin or mixed domain sampling",
        "augment": "shift, crop or none",
        "pad": "random-shift padding",
        "seed": "root seed",
        "log_every": "log metrics every N updates",
        "checkpoint_every": "checkpoint every N updates (0: at the end only)",
        "device": "auto, cpu, cuda, cuda:N",
    }
    choices = {"sampling": ["round_robin", "mixed"], "augment": ["shift", "crop", "none"]}
    for field in dataclasses.fields(PretrainConfig):
        if field.name not in docs:
            continue
        default = getattr(defaults, field.name)
        kind = {int: int, float: float}.get(type(default), str)
        p.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=kind,
            default=default,
            choices=choices.get(field.name),
            help=f"{docs[field.name]} (default: %(default)s)",
        )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=_cmd_pretrain)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_collect, _add_pretrain, _add_demo]


def build_parser() -> argparse.ArgumentParser:
    """The full ``sb3-crptpro`` parser."""
    parser = _Parser(prog="sb3-crptpro", description="CRPTpro pretrained encoders for Stable-Baselines3.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sb3-crptpro`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError) as exc:
        print(f"sb3-crptpro {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
