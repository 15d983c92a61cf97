"""The ``sb3-crptpro`` command line (one entry point, one subcommand per pipeline stage)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sb3_crptpro._compat import platform_description
from sb3_crptpro._version import __version__


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one clear line (plus usage), never a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum: int, words: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``; errors say ``expected <words>, got ...``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonnegative_int = _int_at_least(0, "an integer >= 0")


def _cmd_collect(args: argparse.Namespace) -> int:
    from sb3_crptpro.data.collection import collect
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
    from sb3_crptpro.data.collection import DEFAULT_CHUNK_TRANSITIONS

    p = sub.add_parser("collect", help="collect uniform-random transitions from DMC domains into datasets")
    p.add_argument(
        "--tasks",
        nargs="+",
        required=True,
        help="DMC tasks and/or Gymnasium ids that render, e.g. cheetah_run walker_run HalfCheetah-v5",
    )
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
    from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer

    fields = {f.name for f in dataclasses.fields(PretrainConfig)} - {"preset"}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    config = PretrainConfig.from_preset(args.preset, **given)
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder: give the artifact's file path, e.g. {out / 'encoder.safetensors'}")
    work_dir = Path(args.work_dir) if args.work_dir else out.with_name(out.stem + "_pretrain")
    dataset = CrossDomainDataset(args.data, frame_stack=args.frame_stack, mode=config.sampling)
    trainer = Pretrainer(config, dataset, work_dir)
    command = shlex.join(["sb3-crptpro", *args.argv])
    stats = trainer.fit(resume=args.resume, command=command)  # records the command once it trains (sessions.txt)
    # the last command that trained the weights (a resume with no update left to run trained nothing)
    made_by = trainer.sessions[-1] if trainer.sessions else command
    provenance: dict[str, Any] = {"command": made_by, "platform": platform_description(trainer.device)}
    if len(trainer.sessions) > 1:  # a resumed run: every command that trained it, first to last
        provenance["sessions"] = trainer.sessions
    path = trainer.save(out, stats, provenance=provenance)
    if path is not None:
        final = stats["final"]
        rate = f"{stats['updates_per_s']:.2f} updates/s" if stats["updates_per_s"] else "none left to train"
        print(f"wrote {path} ({stats['updates']} updates, {rate}, {stats['wall_time_s'] / 60:.1f} min in all, "
              f"loss {final.get('loss', float('nan')):.4f}); logs and checkpoint in {work_dir}")  # fmt: skip
    return 0


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    import dataclasses

    from sb3_crptpro.pretraining.pretrainer import PRETRAIN_PRESETS, PretrainConfig

    p = sub.add_parser("pretrain", help="pretrain a CRPTpro encoder on collected datasets")
    p.add_argument("--data", required=True, nargs="+", help="dataset folder(s) written by `collect`")
    p.add_argument("--out", required=True, help="artifact file to write (.safetensors)")
    p.add_argument("--work-dir", default=None, help="metrics and checkpoints (default: <out stem>_pretrain/)")
    p.add_argument("--frame-stack", type=_positive_int, default=3, help="frames per observation (default: 3)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --work-dir")
    p.add_argument("--preset", choices=sorted(PRETRAIN_PRESETS), default="default",
                   help="default: the setting selected by the collapse study; paper: the reference exactly "
                   "(default: %(default)s); the flags below override the preset")  # fmt: skip
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
        "sinkhorn_temperature": "temperature of the target scores in Sinkhorn (paper: = --temperature)",
        "freeze_prototypes": "keep the prototypes fixed for the first N updates (SwAV)",
        "queue_length": "past target projections balanced with the batch in Sinkhorn (SwAV; 0 = off)",
        "centering": "none or projections: subtract a running mean of the target projections (DINO)",
        "center_momentum": "momentum of that running mean",
        "probe_frames": "probe frames per domain for the collapse diagnostics (0 = off)",
        "inverse_dynamics": "weight of an auxiliary inverse-dynamics loss on the recorded actions (0 = off)",
    }
    choices = {"sampling": ["round_robin", "mixed"], "augment": ["shift", "crop", "none"],
               "centering": ["none", "projections"]}  # fmt: skip
    kinds = {"sinkhorn_temperature": float}
    for field in dataclasses.fields(PretrainConfig):
        if field.name not in docs:
            continue
        default = getattr(defaults, field.name)
        kind = kinds.get(field.name) or {int: int, float: float}.get(type(default), str)
        in_presets = {name: values[field.name] for name, values in PRETRAIN_PRESETS.items() if field.name in values}
        shown = f"paper: {default}" + "".join(f", {name}: {value}" for name, value in in_presets.items())
        p.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=kind,
            default=None,
            choices=choices.get(field.name),
            help=f"{docs[field.name]} ({shown})",
        )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=_cmd_pretrain)


def _given_options(argv: Sequence[str]) -> set[str]:
    """The option strings on a command line (``--steps 5`` and ``--steps=5`` both give ``--steps``)."""
    return {token.split("=", 1)[0] for token in argv if token.startswith("--")}


def _cmd_train(args: argparse.Namespace) -> int:
    from sb3_crptpro.app.training import TrainConfig, resume, run_is_complete, train

    if args.resume is not None:
        given = _given_options(args.argv)
        fixed = sorted(given - {"--resume", "--steps", "--device", "--no-progress", "--encoder"})
        if fixed:
            raise ValueError(f"--resume continues a run with its saved settings; drop {', '.join(fixed)} (only "
                             "--steps, --device and --no-progress can change on resume, and --encoder names the "
                             "run's own encoder where it moved)")  # fmt: skip
        changes: dict[str, Any] = {"steps": args.steps} if "--steps" in given else {}
        if "--device" in given:
            changes["device"] = args.device
        if "--no-progress" in given:
            changes["progress"] = False
        if "steps" not in changes and run_is_complete(args.resume):
            print(f"run directory {args.resume} is complete: nothing to resume (a larger --steps trains it further)")
            return 0
        start = time.perf_counter()
        run_dir = resume(args.resume, command=["sb3-crptpro", *args.argv], encoder=args.encoder, **changes)
        print(f"run directory {run_dir} (resumed, {time.perf_counter() - start:.1f} s)")
        return 0
    missing = [flag for flag, value in (("--task", args.task), ("--encoder", args.encoder)) if value is None]
    if missing:
        raise ValueError(f"the following arguments are required: {', '.join(missing)} (or --resume RUN_DIR)")
    given = {"batch_size": args.batch_size, "buffer_size": args.buffer_size, "learning_starts": args.learning_starts,
             "critic_layer_norm": args.critic_layer_norm}  # fmt: skip
    overrides = {k: v for k, v in given.items() if v is not None}
    config = TrainConfig(
        task=args.task,
        encoder=args.encoder,
        algo=args.algo,
        mode=args.mode,
        overlap=args.overlap,
        intrinsic_coef=args.intrinsic_coef,
        steps=args.steps,
        preset=args.preset,
        overrides=overrides,
        seed=args.seed,
        n_envs=args.n_envs,
        action_repeat=args.action_repeat,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        log_dir=args.log_dir,
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
        checkpoint_every=args.checkpoint_every,
    )
    start = time.perf_counter()

    def started(run_dir: Path) -> None:  # named now: Ctrl-C's hint gives it (a fresh run's directory is picked late)
        args.run_dir = run_dir
        print(f"training in {run_dir}", flush=True)

    run_dir = train(config, command=["sb3-crptpro", *args.argv], on_start=started)
    print(f"run directory {run_dir} ({time.perf_counter() - start:.1f} s)")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from sb3_crptpro.app.training import TRAIN_MODES, TRAIN_PRESETS
    from sb3_crptpro.common.artifact import pretrained_names

    # no abbreviated options: --resume checks which options were given by their full names
    p = sub.add_parser("train", help="train SAC/TQC with a frozen pretrained encoder on a DMC task or Gymnasium env",
                       allow_abbrev=False)  # fmt: skip
    p.add_argument(
        "--task", default=None, help="DMC task or Gymnasium id, e.g. cheetah_run, Hopper-v5 (required unless --resume)"
    )
    p.add_argument("--encoder", default=None,
                   help="artifact (.safetensors) written by `pretrain`, or the name of a shipped encoder ("
                   f"{', '.join(pretrained_names())}; `sb3-crptpro inspect --list`) (required unless --resume; with "
                   "--resume: the run's own encoder where it moved, checked by its checksum)")  # fmt: skip
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue RUN_DIR from its latest checkpoint with its saved settings (after a crash, kill -9 "
                   "or Ctrl-C)")  # fmt: skip
    p.add_argument("--checkpoint-every", type=int, default=10_000,
                   help="full checkpoint (model, replay buffer, reward queue, RNG, env states) every N agent steps "
                   "and at the end, 0 = never (default: %(default)s)")  # fmt: skip
    p.add_argument("--algo", choices=["sac", "tqc"], default="sac", help="SAC or TQC (default: sac)")
    p.add_argument("--mode", choices=list(TRAIN_MODES), default="reference",
                   help="reference: AugmentedSAC/TQC on pixels (frozen conv + trainable pre_fc, the paper's setting); "
                   "embedding: SB3's SAC/TQC on the frozen encoder's projections, each frame encoded once, "
                   "~10x faster on CPU (default: %(default)s)")  # fmt: skip
    p.add_argument("--overlap", action="store_true",
                   help="embedding mode: one worker process per env renders and encodes while this process runs the "
                   "updates (OverlappedSAC/TQC; needs a free core per env)")  # fmt: skip
    p.add_argument(
        "--intrinsic-coef", type=float, default=0.2, help="intrinsic reward coefficient, 0 = off (default: %(default)s)"
    )
    p.add_argument("--steps", type=_positive_int, default=10_000,
                   help="agent steps, summed over envs (SB3's total_timesteps; each repeats the action "
                   "--action-repeat times, so env steps = steps x action repeat; `demo --train-steps` counts env "
                   "steps) (default: %(default)s)")  # fmt: skip
    preset_help = (
        "hyperparameters: quick (CPU-sized), paper (reference values) or embedding (the learner on frozen "
        "vectors) (default: embedding with --mode embedding, else quick)"
    )
    p.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default=None, help=preset_help)
    starts = ", ".join(f"{name} {values['learning_starts']}" for name, values in sorted(TRAIN_PRESETS.items()))
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="override the preset's batch size (default: the preset's)")  # fmt: skip
    p.add_argument("--buffer-size", type=_positive_int, default=None,
                   help="override the preset's replay size (default: the preset's)")  # fmt: skip
    p.add_argument("--learning-starts", type=int, default=None,
                   help=f"agent steps before the first gradient update; a run of fewer --steps warns that it learns "
                   f"nothing (default: the preset's: {starts})")  # fmt: skip
    p.add_argument("--critic-layer-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="LayerNorm in the critic's hidden layers (default: on in the embedding preset, off in the "
                   "others)")  # fmt: skip
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--n-envs", type=_positive_int, default=1, help="parallel training envs (default: %(default)s)")
    p.add_argument("--action-repeat", type=_positive_int, default=2, help="action repeat (default: %(default)s)")
    p.add_argument(
        "--eval-freq", type=int, default=1000, help="evaluate every N agent steps, 0 = never (default: %(default)s)"
    )
    p.add_argument("--eval-episodes", type=_positive_int, default=2, help="episodes per evaluation (default: 2)")
    p.add_argument("--log-dir", default="logs", help="runs go to <log-dir>/<algo>/<task>_<id>/ (default: logs)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="torch threads of the gradient steps; the count changes the float results, so it is recorded "
                   "in config.yml and a resume uses it (default: the cores no other process uses when the run "
                   "starts)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from sb3_crptpro.app.evaluation import evaluate_run
    from sb3_crptpro.app.progress import counted
    from sb3_crptpro.app.training import load_run_config

    task = args.task or load_run_config(args.run)["env"]["task"]
    video = Path(args.run) / f"{task}.mp4" if args.video else None
    result = evaluate_run(args.run, task=args.task, episodes=args.episodes, seed=args.seed, video=video,
                          progress=not args.no_progress)  # fmt: skip
    seen = "domain seen" if result["seen_in_pretraining"] else "domain not seen"
    print(f"{result['task']} ({seen} in pretraining; trained on {result['trained_task']}): "
          f"{result['mean']:.2f} +- {result['std']:.2f} over {counted(result['episodes'], 'episode')}")  # fmt: skip
    print("returns: " + " ".join(f"{r:.1f}" for r in result["returns"]))
    if video is not None:
        print(f"video: {video}")
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="mean/std extrinsic return of a trained run, on its task or another one")
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--task", default=None, help="evaluate on this task instead (same action size)")
    p.add_argument("--episodes", type=_positive_int, default=10, help="episodes (default: %(default)s)")
    p.add_argument("--seed", type=_nonnegative_int, default=100, help="evaluation env seed (default: %(default)s)")
    p.add_argument("--video", action="store_true", help="also write <run>/<task>.mp4 of one episode")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from sb3_crptpro.app.inspection import describe, describe_datasets, describe_pretrained, verify_datasets

    if args.list:
        if args.path is not None:
            raise ValueError("--list takes no path: it lists the encoders shipped with the package")
        print(describe_pretrained())
        return 0
    if args.path is None:
        raise ValueError("give an artifact, a shipped encoder's name or a dataset folder (or --list)")
    if not Path(args.path).is_dir():
        print(describe(args.path))  # an artifact: reading it verifies its checksum
        return 0
    try:
        problems = verify_datasets(args.path)
    except ValueError as exc:  # no dataset in it: maybe the user meant an artifact the folder holds
        inside = sorted(str(p) for p in Path(args.path).glob("*.safetensors"))
        if not inside:
            raise
        raise ValueError(f"{exc}; to inspect an artifact, pass its file: {', '.join(inside)}") from None
    print(describe_datasets(args.path, problems))
    bad = [str(d) for d, problem in problems.items() if problem]
    if bad:
        print(f"sb3-crptpro inspect: error: {len(bad)} dataset(s) failed verification: {', '.join(bad)} (re-run "
              "`collect` with the same arguments: it redoes the damaged shards)", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="print an artifact's metadata or a dataset folder's manifests")
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help="encoder .safetensors file, shipped encoder name, dataset folder or folder of datasets",
    )
    p.add_argument("--list", action="store_true", help="list the encoders shipped with the package")
    p.set_defaults(func=_cmd_inspect)


def _cmd_demo(args: argparse.Namespace) -> int:
    import dataclasses

    from sb3_crptpro.app.demo import DemoConfig, run_demo

    fields = {f.name for f in dataclasses.fields(DemoConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["tasks"], values["seeds"] = tuple(values["tasks"]), tuple(values["seeds"])
    run_demo(DemoConfig(**values))
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from sb3_crptpro.app.demo import DemoConfig

    d = DemoConfig()
    p = sub.add_parser(
        "demo",
        help="end to end on 2 cores: collect, pretrain and inspect at small scale, then the shipped encoder vs its "
        "random init on a seen and an unseen task over 2 seeds; writes a report",
    )
    p.add_argument("--out", default=d.out, help="output folder; report in <out>/report (default: %(default)s)")
    p.add_argument("--tasks", nargs="+", default=list(d.tasks), help="pretraining domains (default: %(default)s)")
    p.add_argument("--transitions", type=_positive_int, default=d.transitions, help="per domain (default: %(default)s)")
    p.add_argument("--image-size", type=_positive_int, default=d.image_size, help="frame side (default: %(default)s)")
    p.add_argument("--action-repeat", type=_positive_int, default=d.action_repeat, help="(default: %(default)s)")
    p.add_argument("--pretrain-updates", type=_positive_int, default=d.pretrain_updates, help="(default: %(default)s)")
    p.add_argument("--pretrain-batch-size", type=_positive_int, default=d.pretrain_batch_size,
                   help="(default: %(default)s)")  # fmt: skip
    p.add_argument("--pretrain-preset", choices=["default", "paper"], default=d.pretrain_preset,
                   help="(default: %(default)s)")  # fmt: skip
    p.add_argument("--encoder", default=d.encoder,
                   help="downstream encoder: shipped name or artifact path (default: %(default)s)")  # fmt: skip
    p.add_argument("--seen-task", default=d.seen_task,
                   help="downstream task from a domain the encoder saw (default: %(default)s)")  # fmt: skip
    p.add_argument("--unseen-task", default=d.unseen_task,
                   help="downstream task from a domain no encoder saw (default: %(default)s)")  # fmt: skip
    p.add_argument("--unseen-transitions", type=_positive_int, default=d.unseen_transitions,
                   help="unseen-domain frames for the coverage plots (default: %(default)s)")  # fmt: skip
    p.add_argument("--train-steps", type=_positive_int, default=d.train_steps,
                   help="env steps per downstream run (agent steps x --action-repeat; `train --steps` counts agent "
                   "steps) (default: %(default)s)")  # fmt: skip
    p.add_argument("--train-preset", choices=["quick", "embedding", "paper"], default=d.train_preset,
                   help="downstream SAC preset (default: %(default)s)")  # fmt: skip
    p.add_argument("--train-mode", choices=["embedding", "reference"], default=d.train_mode,
                   help="downstream mode, as `train --mode` (default: %(default)s)")  # fmt: skip
    p.add_argument("--intrinsic-coef", type=float, default=d.intrinsic_coef, help="(default: %(default)s)")
    p.add_argument("--eval-episodes", type=_positive_int, default=d.eval_episodes, help="(default: %(default)s)")
    p.add_argument("--seed", type=_nonnegative_int, default=d.seed,
                   help="seed of collection and the small pretraining (default: %(default)s)")  # fmt: skip
    p.add_argument("--seeds", type=_nonnegative_int, nargs="+", default=list(d.seeds),
                   help="seeds of the downstream runs (default: %(default)s)")  # fmt: skip
    p.add_argument("--workers", type=_positive_int, default=None, help="collection workers (default: CPU count)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    p.set_defaults(func=_cmd_demo)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_collect,
    _add_pretrain,
    _add_train,
    _add_evaluate,
    _add_inspect,
    _add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    """The full ``sb3-crptpro`` parser."""
    from sb3_crptpro.common.threads import THREADS_HELP

    parser = _Parser(prog="sb3-crptpro", description="CRPTpro pretrained encoders for Stable-Baselines3.",
                     epilog=THREADS_HELP)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in _SUBCOMMANDS:
        add(sub)
    for command in sub.choices.values():
        command.epilog = command.epilog or THREADS_HELP
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sb3-crptpro`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    from sb3_crptpro.envs.pixel_env import MissingRenderDependency

    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return int(args.func(args))
    except (ValueError, OSError, MissingRenderDependency) as exc:
        print(f"sb3-crptpro {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = _resume_hint(args)
        print("interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:  # fmt: skip
    """A warning as the command prints it: one line, its category and message (no source file, no source line)."""
    return f"warning ({category.__name__}): {message}\n"


def _resume_hint(args: argparse.Namespace) -> str | None:
    """What to run after Ctrl-C, and what is lost (issue 14), with the values this command really ran with (a
    resumed run's own checkpoint interval, a preset's or ``--checkpoint-every 0``), not the option defaults."""
    if args.command == "collect" and args.resume:
        return (f"re-run the same command to resume: finished shards are kept, the shards in progress (at most "
                f"{args.chunk} transitions per worker) are collected again")  # fmt: skip
    if args.command == "train":
        every, run_dir = args.checkpoint_every, getattr(args, "run_dir", None)  # set once a fresh run has one
        if args.resume is None and (run_dir is None or not run_dir.is_dir()):
            return "stopped before the first step: no run was kept (run the command again)"
        run = shlex.quote(str(run_dir))
        if args.resume is not None:
            from sb3_crptpro.app.training import load_run_config

            run = shlex.quote(args.resume)
            try:
                every = int(load_run_config(args.resume)["train"]["checkpoint_every"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
        if not every:
            return (
                "the model was saved in the run directory; without checkpoints (--checkpoint-every 0) it cannot resume"
            )
        return (f"the model was saved in the run directory; `sb3-crptpro train --resume {run}` continues from the "
                f"last checkpoint (written every {every} agent steps; later steps are redone)")  # fmt: skip
    if args.command == "pretrain":
        from sb3_crptpro.pretraining.pretrainer import PretrainConfig

        every = args.checkpoint_every
        if every is None:
            every = PretrainConfig.from_preset(args.preset).checkpoint_every
        if not every:
            return ("no checkpoint is written before the end (--checkpoint-every 0): running the command again starts "
                    "over")  # fmt: skip
        return (f"re-run with --resume to continue from the last checkpoint in the work dir (written every "
                f"{every} updates; later updates are redone)")  # fmt: skip
    return None


if __name__ == "__main__":
    sys.exit(main())
