"""The end-to-end demo behind ``sb3-crptpro demo``.

Two parts. The pipeline at small scale: collect random frames, pretrain a small encoder, inspect it and draw its
pretraining and prototype-coverage figures. Then the downstream comparison that says whether pretraining helps: SAC
in embedding mode with a *shipped* encoder (``dmc-64px-invdyn`` by default, 6,000 updates: the demo's own 300-update
encoder is too small to help, docs "Does it help?") against the same networks before their first update
(:func:`~sb3_crptpro.pretraining.pretrainer.save_random_init`), on a task whose domain the encoder saw in
pretraining and on one it never saw, for several seeds. Every size is a field of :class:`DemoConfig` (and a CLI
flag); the report's ``summary.md`` states what was run and what the numbers allow a reader to conclude.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DemoConfig", "compare_encoders", "run_demo"]


@dataclass
class DemoConfig:
    """Sizes of the demo pipeline."""

    #: output folder (data, encoders, logs and the ``report/`` folder)
    out: str = "outputs/demo"
    #: pretraining domains of the small-scale pipeline (the shipped ``dmc-64px`` encoder's three)
    tasks: tuple[str, ...] = ("cheetah_run", "walker_run", "reacher_easy")
    #: random transitions per pretraining domain
    transitions: int = 1000
    #: frame side in pixels of the small-scale pipeline (the paper uses 84; downstream runs use the encoder's)
    image_size: int = 64
    #: action repeat of collection, training and evaluation (the shipped encoder's data used 4)
    action_repeat: int = 4
    #: pretraining updates and batch size of the small-scale pipeline
    pretrain_updates: int = 300
    pretrain_batch_size: int = 64
    #: pretraining preset (``default`` or ``paper``, see :data:`~sb3_crptpro.pretraining.pretrainer.PRETRAIN_PRESETS`)
    pretrain_preset: str = "default"
    #: encoder of the downstream comparison: a shipped name (``sb3-crptpro inspect --list``) or an artifact path;
    #: the package's default encoder (:data:`~sb3_crptpro.common.pretrained.DEFAULT_PRETRAINED`, not imported here:
    #: it loads torch)
    encoder: str = "dmc-64px-invdyn"
    #: downstream task whose domain is among ``encoder``'s pretraining domains
    seen_task: str = "walker_walk"
    #: downstream task whose domain neither ``encoder`` nor the small pipeline saw (also the coverage plots'
    #: unseen domain)
    unseen_task: str = "cartpole_swingup"
    #: transitions collected on the unseen domain for the coverage plots (never used for pretraining)
    unseen_transitions: int = 300
    #: environment steps of each downstream run (agent steps x action repeat)
    train_steps: int = 20_000
    #: ``embedding`` (encode each frame once; stock SAC on the projections) or ``reference`` (AugmentedSAC on pixels)
    train_mode: str = "embedding"
    #: downstream hyperparameter preset (:data:`~sb3_crptpro.sb3.presets.TRAIN_PRESETS`); ``quick`` updates half as
    #: often as ``embedding`` on half the batch, so that the demo's runs fit its time budget
    train_preset: str = "quick"
    #: intrinsic-reward coefficient during training
    intrinsic_coef: float = 0.2
    #: episodes per final evaluation (each run, and the random policy)
    eval_episodes: int = 10
    #: seed of collection and the small pretraining
    seed: int = 0
    #: seeds of the downstream runs (each task x encoder runs once per seed)
    seeds: tuple[int, ...] = (0, 1)
    #: collection worker processes (default: CPU count)
    workers: int | None = None
    progress: bool = True


class _Stages:
    """Times the pipeline's stages and prints one line per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        print(f"[demo] {name} ...", flush=True)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        print(f"[demo] {name} done in {self.seconds[name]:.1f} s", flush=True)
        return result


def _domain(task: str) -> str:
    from sb3_crptpro.envs.tasks import domain_of

    return domain_of(task)


def _check(config: DemoConfig) -> dict[str, Any]:
    """Refuse a config whose report would mislabel its runs; return the downstream encoder's metadata."""
    from sb3_crptpro.app.training import TRAIN_MODES, TRAIN_PRESETS, TrainConfig
    from sb3_crptpro.common.artifact import load_artifact
    from sb3_crptpro.envs.tasks import build_config, resolve_env

    for task in (*config.tasks, config.seen_task, config.unseen_task):
        if resolve_env(task)[0] != "dmc":  # raises on an unknown name, with a suggestion
            raise ValueError(f"{task} is a Gymnasium id: the demo takes DeepMind Control tasks (e.g. cheetah_run); "
                             "use `collect`, `pretrain` and `train` for Gymnasium envs")  # fmt: skip
        build_config(task, image_size=config.image_size, action_repeat=config.action_repeat, render="fast")
    if len(set(config.tasks)) < len(config.tasks):
        raise ValueError(f"duplicate tasks in {list(config.tasks)}")
    if config.train_mode not in TRAIN_MODES:
        raise ValueError(f"train_mode must be one of {TRAIN_MODES}, got {config.train_mode!r}")
    if config.train_preset not in TRAIN_PRESETS:
        raise ValueError(f"train_preset must be one of {sorted(TRAIN_PRESETS)}, got {config.train_preset!r}")
    if not config.seeds or min(config.seeds) < 0 or len(set(config.seeds)) < len(config.seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, got {list(config.seeds)}")
    if config.train_steps < config.action_repeat:
        raise ValueError(f"train_steps {config.train_steps} is less than one agent step ({config.action_repeat} "
                         "env steps)")  # fmt: skip
    meta = load_artifact(config.encoder).metadata
    if not meta.get("stats", {}).get("updates") or meta.get("provenance", {}).get("random_init_of"):
        raise ValueError(f"encoder {config.encoder} was never trained (a random init): the demo compares a "
                         "pretrained encoder with its random init")  # fmt: skip
    # the downstream settings, checked before any stage runs
    TrainConfig(task=config.seen_task, encoder=str(config.encoder), mode=config.train_mode, preset=config.train_preset,
                intrinsic_coef=config.intrinsic_coef, action_repeat=config.action_repeat,
                eval_episodes=config.eval_episodes)  # fmt: skip
    seen = {_domain(t) for t in meta.get("tasks") or []}
    if _domain(config.seen_task) not in seen:
        raise ValueError(f"seen_task {config.seen_task}: its domain is not among the encoder's pretraining domains "
                         f"({', '.join(sorted(seen))})")  # fmt: skip
    if _domain(config.unseen_task) in seen | {_domain(t) for t in config.tasks}:
        raise ValueError(f"unseen_task {config.unseen_task}: its domain is among the pretraining domains "
                         f"({', '.join(sorted(seen | {_domain(t) for t in config.tasks}))})")  # fmt: skip
    return meta


def compare_encoders(pretrained: list[float], random_init: list[float]) -> str:
    """What a reader may conclude from per-seed mean returns with a pretrained and a random-init encoder (same
    seeds, same order): a gain only when the pretrained encoder is ahead on every seed *and* the gap of the means
    exceeds the seed-to-seed range of either encoder; the mirror image for a loss; otherwise no conclusion.

    :raises ValueError: lists of different lengths or empty
    """
    if len(pretrained) != len(random_init) or not pretrained:
        raise ValueError(f"need one return per seed for both encoders, got {len(pretrained)} and {len(random_init)}")
    n = len(pretrained)
    gap = sum(pretrained) / n - sum(random_init) / n
    spread = max(max(pretrained) - min(pretrained), max(random_init) - min(random_init))
    ahead = sum(p > r for p, r in zip(pretrained, random_init, strict=True))
    seeds = f"{n} seed{'s' if n > 1 else ''}"
    every = f"all {seeds}" if n > 1 else "its 1 seed"
    if ahead == n and gap > spread:
        return (f"pretrained ahead on {every} by {gap:+.1f} on average, more than the seed-to-seed range "
                f"({spread:.1f}): consistent with a gain, which {seeds} cannot establish")  # fmt: skip
    if ahead == 0 and -gap > spread:
        return (f"random init ahead on {every} by {-gap:.1f} on average, more than the seed-to-seed range "
                f"({spread:.1f}): pretraining did not help here")  # fmt: skip
    return (f"no conclusion: pretrained ahead on {ahead} of {seeds}, mean difference {gap:+.1f} against a "
            f"seed-to-seed range of {spread:.1f}")  # fmt: skip


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the whole pipeline and write ``<out>/report/`` (PNGs, ``summary.md``, ``summary.json``).

    :raises ValueError: an unknown task, a ``seen_task`` whose domain the encoder did not see, an ``unseen_task``
        whose domain it (or the small pipeline) did, bad seeds, mode or preset
    :raises FileNotFoundError: ``encoder`` is neither a file nor a shipped name
    """
    from sb3_crptpro.app.evaluation import evaluate_run, random_policy_returns
    from sb3_crptpro.app.inspection import describe_artifact
    from sb3_crptpro.app.render_demo import render_frame_grid
    from sb3_crptpro.app.report import (
        plot_coverage,
        plot_encoder_comparison,
        plot_pretraining,
        plot_prototype_gallery,
        prototype_scores_by_domain,
    )
    from sb3_crptpro.app.training import TrainConfig, train
    from sb3_crptpro.common.artifact import load_artifact, loss_description, resolve_artifact_path
    from sb3_crptpro.data.collection import collect
    from sb3_crptpro.data.domain import DomainDataset
    from sb3_crptpro.data.sampler import CrossDomainDataset
    from sb3_crptpro.pretraining.diagnostics import prototype_usage
    from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer, save_random_init

    encoder_meta = _check(config)
    out = Path(config.out)
    report = out / "report"
    env_kwargs = {"image_size": config.image_size, "action_repeat": config.action_repeat, "render": "fast"}
    stages = _Stages()
    common = {"n_workers": config.workers, "seed": config.seed, "progress": config.progress, **env_kwargs}

    # ---- the pipeline at small scale
    stages.run("collect", collect, list(config.tasks), out / "data", transitions_per_domain=config.transitions,
               **common)  # fmt: skip
    stages.run("collect unseen", collect, [config.unseen_task], out / "data_unseen",
               transitions_per_domain=config.unseen_transitions, **{**common, "seed": config.seed + 1})  # fmt: skip
    report.mkdir(parents=True, exist_ok=True)
    stages.run("frames", render_frame_grid, report / "frames.png", [*config.tasks, config.unseen_task],
               image_size=config.image_size, seed=config.seed)  # fmt: skip
    pretrain_config = PretrainConfig.from_preset(
        config.pretrain_preset,
        updates=config.pretrain_updates,
        batch_size=config.pretrain_batch_size,
        seed=config.seed,
        log_every=max(config.pretrain_updates // 30, 1),
        checkpoint_every=0,
        progress=config.progress,
    )
    shutil.rmtree(out / "pretrain", ignore_errors=True)  # a re-run pretrains afresh (metrics.csv appends)
    trainer = Pretrainer(pretrain_config, CrossDomainDataset(out / "data"), out / "pretrain")
    pretrain_stats = stages.run("pretrain", trainer.fit)
    small_encoder = trainer.save(out / "encoder.safetensors", pretrain_stats)
    inspection = stages.run("inspect", describe_artifact, small_encoder)
    (report / "inspect.txt").write_text(inspection + "\n")
    print(inspection, flush=True)

    # ---- downstream: the shipped (or given) encoder against its own random init
    encoder = resolve_artifact_path(config.encoder)
    random_init = save_random_init(encoder, out / "encoder_random_init.safetensors")
    encoders = {"pretrained": encoder, "random init": random_init}
    tasks = (config.seen_task, config.unseen_task)

    def train_all() -> dict[str, dict[str, list[Path]]]:
        runs: dict[str, dict[str, list[Path]]] = {t: {label: [] for label in encoders} for t in tasks}
        for task in tasks:
            for seed in config.seeds:
                for label, path in encoders.items():
                    train_config = TrainConfig(
                        task=task,
                        encoder=str(path),
                        mode=config.train_mode,
                        overlap=config.train_mode == "embedding",
                        preset=config.train_preset,
                        intrinsic_coef=config.intrinsic_coef,
                        steps=config.train_steps // config.action_repeat,
                        seed=seed,
                        action_repeat=config.action_repeat,
                        eval_freq=0,  # the curves come from the training episodes; one evaluation at the end
                        checkpoint_every=0,
                        log_dir=str(out / "logs" / label.replace(" ", "_") / f"seed{seed}"),
                        progress=config.progress,
                    )
                    print(f"[demo] train on {task}, seed {seed}, {label} encoder", flush=True)
                    command = ["sb3-crptpro", "demo", f"(train stage: {task}, seed {seed}, {label} encoder)"]
                    runs[task][label].append(train(train_config, command=command))
        return runs

    shutil.rmtree(out / "logs", ignore_errors=True)
    run_dirs = stages.run("train", train_all)

    def evaluations() -> list[dict[str, Any]]:
        rows = []
        for task in tasks:
            agents = {label: [evaluate_run(run_dir, episodes=config.eval_episodes, seed=100 + seed,
                                           progress=config.progress, label=f"evaluate {task}, {label}, seed {seed}")
                              for seed, run_dir in zip(config.seeds, dirs, strict=True)]
                      for label, dirs in run_dirs[task].items()}  # fmt: skip
            rand = random_policy_returns(task, config.eval_episodes, seed=100, progress=config.progress,
                                         image_size=encoder_meta["image_size"], action_repeat=config.action_repeat,
                                         render="fast")  # fmt: skip
            means = {label: [a["mean"] for a in per_seed] for label, per_seed in agents.items()}
            rows.append({"task": task, "seen": task == config.seen_task, "agents": agents, "random": rand,
                         "verdict": compare_encoders(means["pretrained"], means["random init"])})  # fmt: skip
        return rows

    evaluation = stages.run("evaluate", evaluations)

    def figures() -> dict[str, Any]:
        artifact = load_artifact(small_encoder)
        datasets = [*CrossDomainDataset(out / "data").domains, DomainDataset(out / "data_unseen" / config.unseen_task)]
        scores, observations = prototype_scores_by_domain(artifact, datasets, seed=config.seed)
        finals = {r["task"]: {label: [a["mean"] for a in per_seed] for label, per_seed in r["agents"].items()}
                  for r in evaluation}  # fmt: skip
        titles = {r["task"]: f"{r['task']} ({'seen' if r['seen'] else 'unseen'} domain): {r['verdict'].split(':')[0]}"
                  for r in evaluation}  # fmt: skip
        plot_encoder_comparison(
            {
                task: {f"{label.replace(' ', '-')} encoder": dirs for label, dirs in by_label.items()}
                for task, by_label in run_dirs.items()
            },
            report / "learning_curves.png",
            final_returns={
                task: {f"{k.replace(' ', '-')} encoder": v for k, v in f.items()} for task, f in finals.items()
            },
            random_returns={r["task"]: r["random"]["mean"] for r in evaluation},
            titles=titles,
        )
        plot_pretraining(out / "pretrain" / "metrics.csv", report / "pretraining.png", artifact.metadata["num_protos"])
        plot_coverage(scores, artifact.prototypes.weight, report / "coverage.png")
        plot_prototype_gallery(scores, observations, report / "prototype_gallery.png")
        return {d: prototype_usage(s, artifact.metadata["num_protos"]) for d, s in scores.items()}

    coverage = stages.run("report", figures)
    results = {
        "config": dataclasses.asdict(config),
        "seconds": stages.seconds,
        "pretrain": {
            **pretrain_stats,
            "num_protos": pretrain_config.num_protos,
            "probe_frames": pretrain_config.probe_frames,
        },
        "coverage": coverage,
        "small_encoder": str(small_encoder),
        "encoder": str(encoder),
        "encoder_metadata": {
            **{k: encoder_meta.get(k) for k in ("tasks", "image_size", "frame_stack", "stats")},
            "loss": loss_description(encoder_meta.get("config") or {}),
        },
        "encoder_random_init": str(random_init),
        "evaluation": evaluation,
        "run_dirs": {t: {k: [str(d) for d in v] for k, v in by_label.items()} for t, by_label in run_dirs.items()},
    }
    (report / "summary.json").write_text(json.dumps(results, indent=2, default=str))
    (report / "summary.md").write_text(_summary_markdown(results))
    print(f"[demo] done in {sum(stages.seconds.values()):.0f} s; report: {report / 'summary.md'} (figures in {report})")
    return results


def _collapse_sentence(pretrain: dict[str, Any]) -> str:
    """The collapse verdict and the diagnostics behind it, each count naming its sample (the probe frames)."""
    from sb3_crptpro.pretraining.diagnostics import collapse_verdict

    d = pretrain.get("diagnostics") or {}
    if not d:
        return "No collapse diagnostics were logged."
    verdict = collapse_verdict(d, pretrain["num_protos"])
    return (f"{verdict[0].upper()}{verdict[1:]}. On the probe frames ({pretrain['probe_frames']} per domain, fixed "
            f"for the run): effective rank of the normalised target projections {d['eff_rank']:.1f} (worst domain "
            f"{d['eff_rank_min']:.1f}; collapsed < 5, random init ~15-80), {d['n_used']:.0f} prototypes nearest to "
            f"some probe frame, the largest share of the probe frames {100 * d['max_share']:.0f}%, comparative loss "
            f"{d.get('margin', float('nan')):.3f} nats below log M (0 at the trivial solution).")  # fmt: skip


_MODE_TEXT = {
    "embedding": "SB3 SAC on the frozen encoder's projections (embedding mode: each frame encoded once)",
    "reference": "AugmentedSAC on pixels, frozen conv trunk + trainable pre_fc (reference mode)",
}


def _seed_cells(per_seed: list[dict[str, Any]]) -> str:
    means = [a["mean"] for a in per_seed]
    return f"**{sum(means) / len(means):.1f}** ({', '.join(f'{m:.1f}' for m in means)})"


def _summary_markdown(results: dict[str, Any]) -> str:
    from sb3_crptpro.app.progress import counted

    c, secs, final = results["config"], results["seconds"], results["pretrain"]["final"]
    meta, seeds = results["encoder_metadata"], c["seeds"]
    env_steps = c["train_steps"] // c["action_repeat"] * c["action_repeat"]  # whole agent steps
    n_runs = 2 * 2 * len(seeds)
    seen = set(c["tasks"])
    lines = [
        "# sb3-crptpro demo report",
        "",
        "## What was run",
        "",
        "The pipeline at small scale:",
        "",
        f"- collect: {c['transitions']} uniform-random transitions per domain from {', '.join(c['tasks'])} "
        f"({c['image_size']} px, action repeat {c['action_repeat']}, fast render preset, seed {c['seed']}); "
        f"{c['unseen_transitions']} from {c['unseen_task']} (not used for pretraining)",
        f"- pretrain: CRPTpro, {results['pretrain']['updates']} updates at batch {c['pretrain_batch_size']} "
        f"(reference: 50,000 at 512), then `inspect` (`inspect.txt`)",
        "",
        "Downstream, whether pretraining helps:",
        "",
        f"- encoder: `{c['encoder']}` ({meta['stats'].get('updates', '?')} updates on "
        f"{', '.join(meta.get('tasks') or [])}, {meta['image_size']} px, {meta['loss']}), against the same "
        "networks before their first update (random init)",
        f"- train: {_MODE_TEXT[c['train_mode']]} ({c['train_preset']} preset), intrinsic reward coef "
        f"{c['intrinsic_coef']}, {env_steps:,} env steps per run, on {c['seen_task']} (domain seen in "
        f"pretraining) and {c['unseen_task']} (domain never seen), with each encoder, seeds "
        f"{', '.join(map(str, seeds))}: {n_runs} runs",
        f"- evaluate: {counted(c['eval_episodes'], 'episode')} per run, deterministic policy, extrinsic return; the "
        "random policy on the same tasks as a baseline",
        "",
        "## Timings",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *[f"| {name} | {s:.1f} |" for name, s in secs.items()],
        f"| **total** | **{sum(secs.values()):.1f}** |",
        "",
        f"Training took {secs.get('train', float('nan')) / n_runs:.1f} s per run on average.",
        "",
        "## Downstream: pretrained vs random-init encoder (extrinsic return)",
        "",
        "Mean over seeds in bold, each seed's mean over its evaluation episodes in brackets.",
        "",
        "| task | domain in pretraining | pretrained encoder | random-init encoder | random policy |",
        "| --- | --- | ---: | ---: | ---: |",
        *[
            f"| {r['task']} | {'yes' if r['seen'] else 'no'} | {_seed_cells(r['agents']['pretrained'])} | "
            f"{_seed_cells(r['agents']['random init'])} | {r['random']['mean']:.1f} +- {r['random']['std']:.1f} |"
            for r in results["evaluation"]
        ],
        "",
        *[f"- **{r['task']}:** {r['verdict']}." for r in results["evaluation"]],
        "",
        f"{counted(len(seeds), 'seed')} at {env_steps:,} env steps is a smoke test of the comparison, not "
        'a measurement of it: the six-task benchmark (`benchmarks/six_task.py`, docs "Embedding mode") runs '
        "100k env steps. Per-episode returns are in `summary.json`.",
        "",
        "## The small encoder (last logged update)",
        "",
        f"preset `{c['pretrain_preset']}`; loss {final.get('loss', float('nan')):.4f} (comparative "
        f"{final.get('loss_comp', float('nan')):.4f}, intrinsic {final.get('loss_intr', float('nan')):.4f}); "
        f"prototypes used by the last training batch ({c['pretrain_batch_size']} frames): "
        f"{final.get('n_used', float('nan')):.0f} by its Sinkhorn targets "
        f"(balanced by construction), {final.get('n_used_raw', float('nan')):.0f} as nearest prototype; "
        f"mean/max prototype cosine {final.get('cos_mean', float('nan')):.3f}"
        f" / {final.get('cos_max', float('nan')):.3f}; {results['pretrain']['updates_per_s']:.2f} updates/s.",
        "",
        _collapse_sentence(results["pretrain"]),
        "",
        "Prototype coverage (`coverage.png`; nearest prototype of up to 500 sampled frames per domain, another "
        "sample than the probe frames, no Sinkhorn balancing):",
        "",
        "| domain | in pretraining | prototypes used | usage entropy (nats) | max possible |",
        "| --- | --- | ---: | ---: | ---: |",
        *[
            f"| {d} | {'yes' if d in seen else 'no'} | {u['n_used']:.0f} | {u['usage_entropy']:.2f} | "
            f"{u['usage_entropy_max']:.2f} |"
            for d, u in results["coverage"].items()
        ],
        "",
        "## Files",
        "",
        "- `learning_curves.png`: per task, training-episode returns of every run (thin lines, one per seed) and the "
        "final evaluations (markers: mean over seeds, dots: each seed), random policy as a dashed line",
        "- `frames.png`: random-policy frames of every domain used",
        "- `pretraining.png`: losses, prototype usage and prototype cosine similarity of the small pretraining",
        "- `coverage.png`: the small encoder's prototype usage by domain (incl. the unseen one) and pairwise cosines",
        "- `prototype_gallery.png`: the small encoder's most used prototypes, each with its nearest frames",
        "- `inspect.txt`: `sb3-crptpro inspect` of the small encoder",
        f"- encoders: `{results['encoder']}` (downstream), `{results['encoder_random_init']}` (its random init), "
        f"`{results['small_encoder']}` (the small pipeline's)",
        "- run directories: `summary.json` (`run_dirs`)",
        "",
    ]
    return "\n".join(lines)
