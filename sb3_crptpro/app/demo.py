"""The end-to-end demo behind ``sb3-crptpro demo``: collect -> pretrain -> train -> evaluate -> report.

Defaults take about 7 minutes on 2 CPU cores (420 s measured, issue 13); every size is a field of
:class:`DemoConfig` (and a CLI flag), and the report's ``summary.md`` states what was run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    """Sizes of the demo pipeline."""

    #: output folder (data, encoder, logs and the ``report/`` folder)
    out: str = "outputs/demo"
    #: pretraining domains
    tasks: tuple[str, ...] = ("cheetah_run", "walker_run", "finger_spin")
    #: random transitions per pretraining domain
    transitions: int = 1000
    #: frame side in pixels (the paper uses 84)
    image_size: int = 64
    #: action repeat of collection, training and evaluation
    action_repeat: int = 4
    #: pretraining updates and batch size
    pretrain_updates: int = 300
    pretrain_batch_size: int = 64
    #: pretraining preset (``default`` or ``paper``, see :data:`~sb3_crptpro.pretraining.pretrainer.PRETRAIN_PRESETS`)
    pretrain_preset: str = "default"
    #: downstream task (seen in pretraining by default). finger_spin: the random policy scores ~2, and a few minutes
    #: of embedding-mode SAC on 2 cores clearly beat it (36 after 8,000 env steps in a trial); cartpole_swingup at
    #: action repeat 8 was tried first, but its random policy scores ~100 and SAC agents stay below that for
    #: 20,000+ steps (issue 13)
    train_task: str = "finger_spin"
    #: zero-shot evaluation task from a domain not seen in pretraining, same action size as ``train_task``
    unseen_task: str = "reacher_easy"
    #: transitions collected on the unseen domain for the coverage plots (never used for pretraining)
    unseen_transitions: int = 300
    #: environment steps of downstream training (per encoder)
    train_steps: int = 20_000
    #: ``embedding`` (encode each frame once; stock SAC on the projections) or ``reference`` (AugmentedSAC on pixels)
    train_mode: str = "embedding"
    #: intrinsic-reward coefficient during training
    intrinsic_coef: float = 0.2
    #: episodes per final evaluation (agent and random policy)
    eval_episodes: int = 10
    seed: int = 0
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


def _action_shape(env: Any) -> tuple[int, ...]:
    shape = env.action_space.shape
    env.close()
    return shape


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the whole pipeline and write ``<out>/report/`` (PNGs, ``summary.md``, ``summary.json``)."""
    from sb3_crptpro.app.evaluation import evaluate_run, random_policy_returns
    from sb3_crptpro.app.render_demo import render_frame_grid
    from sb3_crptpro.app.report import (
        plot_coverage,
        plot_encoder_comparison,
        plot_pretraining,
        plot_prototype_gallery,
        prototype_scores_by_domain,
    )
    from sb3_crptpro.app.training import TRAIN_MODES, TrainConfig, train
    from sb3_crptpro.common.artifact import load_artifact
    from sb3_crptpro.data.collection import collect
    from sb3_crptpro.data.domain import DomainDataset
    from sb3_crptpro.data.sampler import CrossDomainDataset
    from sb3_crptpro.envs import make_pixel_env, resolve_env
    from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer

    for task in (*config.tasks, config.train_task, config.unseen_task):
        resolve_env(task)
    if config.train_mode not in TRAIN_MODES:
        raise ValueError(f"train_mode must be one of {TRAIN_MODES}, got {config.train_mode!r}")
    if config.unseen_task in config.tasks:
        raise ValueError(f"unseen_task {config.unseen_task} is one of the pretraining tasks")
    pair = (config.train_task, config.unseen_task)
    action_sizes = {t: _action_shape(make_pixel_env(t, image_size=16)) for t in pair}
    if len(set(action_sizes.values())) > 1:
        raise ValueError(f"train_task and unseen_task need the same action size (zero-shot evaluation): {action_sizes}")

    out = Path(config.out)
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    env_kwargs = {"image_size": config.image_size, "action_repeat": config.action_repeat, "render": "fast"}
    stages = _Stages()
    common = {"n_workers": config.workers, "seed": config.seed, "progress": config.progress, **env_kwargs}

    stages.run("frames", render_frame_grid, report / "frames.png", [*config.tasks, config.unseen_task],
               image_size=config.image_size, seed=config.seed)  # fmt: skip
    stages.run("collect", collect, list(config.tasks), out / "data", transitions_per_domain=config.transitions,
               **common)  # fmt: skip
    stages.run("collect unseen", collect, [config.unseen_task], out / "data_unseen",
               transitions_per_domain=config.unseen_transitions, **{**common, "seed": config.seed + 1})  # fmt: skip

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
    encoder_path = trainer.save(out / "encoder.safetensors", pretrain_stats)

    # The same networks before any update: the baseline that says whether pretraining helped (issue 13)
    random_init_path = Pretrainer(pretrain_config, CrossDomainDataset(out / "data")).save(
        out / "encoder_random_init.safetensors", {"updates": 0, "diagnostics": {}}
    )
    encoders = {"pretrained": encoder_path, "random init": random_init_path}

    def train_both() -> dict[str, Path]:
        runs = {}
        for label, path in encoders.items():
            train_config = TrainConfig(
                task=config.train_task,
                encoder=str(path),
                mode=config.train_mode,
                preset="quick",  # the demo's measured numbers (README) were taken with it
                intrinsic_coef=config.intrinsic_coef,
                steps=config.train_steps,
                seed=config.seed,
                action_repeat=config.action_repeat,
                eval_freq=max(config.train_steps // 5, 1),
                eval_episodes=2,
                log_dir=str(out / "logs" / label.replace(" ", "_")),
                progress=config.progress,
            )
            print(f"[demo] train with the {label} encoder", flush=True)
            runs[label] = train(train_config, command=["sb3-crptpro", "demo", f"(train stage, {label} encoder)"])
        return runs

    shutil.rmtree(out / "logs", ignore_errors=True)
    run_dirs = stages.run("train", train_both)

    def evaluations() -> list[dict[str, Any]]:
        rows = []
        for task in (config.train_task, config.unseen_task):
            agents = {label: evaluate_run(run_dir, task=task, episodes=config.eval_episodes, seed=config.seed + 100,
                                          progress=config.progress) for label, run_dir in run_dirs.items()}  # fmt: skip
            rand = random_policy_returns(task, config.eval_episodes, seed=config.seed + 100, progress=config.progress,
                                         **env_kwargs)  # fmt: skip
            rows.append({"task": task, "agent": agents["pretrained"], "agents": agents, "random": rand})
        return rows

    evaluation = stages.run("evaluate", evaluations)

    def figures() -> dict[str, Any]:
        artifact = load_artifact(encoder_path)
        datasets = [*CrossDomainDataset(out / "data").domains, DomainDataset(out / "data_unseen" / config.unseen_task)]
        scores, observations = prototype_scores_by_domain(artifact, datasets, seed=config.seed)
        finals = {label: agent["mean"] for label, agent in evaluation[0]["agents"].items()}
        plot_encoder_comparison({f"{k} encoder": v for k, v in run_dirs.items()}, report / "learning_curve.png",
                                random_return=evaluation[0]["random"]["mean"],
                                final_returns={f"{k} encoder": v for k, v in finals.items()})  # fmt: skip
        plot_pretraining(out / "pretrain" / "metrics.csv", report / "pretraining.png", artifact.metadata["num_protos"])
        plot_coverage(scores, artifact.prototypes.weight, report / "coverage.png")
        plot_prototype_gallery(scores, observations, report / "prototype_gallery.png")
        from sb3_crptpro.pretraining.diagnostics import prototype_usage

        return {d: prototype_usage(s, artifact.metadata["num_protos"]) for d, s in scores.items()}

    coverage = stages.run("report", figures)
    results = {
        "config": dataclasses.asdict(config),
        "seconds": stages.seconds,
        "pretrain": pretrain_stats,
        "coverage": coverage,
        "evaluation": evaluation,
        "encoder": str(encoder_path),
        "encoder_random_init": str(random_init_path),
        "run_dir": str(run_dirs["pretrained"]),
        "run_dirs": {k: str(v) for k, v in run_dirs.items()},
    }
    (report / "summary.json").write_text(json.dumps(results, indent=2, default=str))
    (report / "summary.md").write_text(_summary_markdown(results))
    print(f"[demo] done in {sum(stages.seconds.values()):.0f} s; report: {report / 'summary.md'} (figures in {report})")
    return results


def _collapse_sentence(diagnostics: dict[str, Any], collapsed: bool | None) -> str:
    if not diagnostics:
        return "No collapse diagnostics were logged."
    verdict = "**Collapsed** to the trivial solution" if collapsed else "Not collapsed"
    return (f"{verdict} (probe frames): effective rank of the normalised target projections "
            f"{diagnostics['eff_rank']:.1f} (worst domain {diagnostics['eff_rank_min']:.1f}; collapsed < 5, random "
            f"init ~15-80), {diagnostics['n_used']:.0f} prototypes nearest to some probe frame, the largest share "
            f"{100 * diagnostics['max_share']:.0f}%, comparative loss {-diagnostics.get('margin', float('nan')):+.3f} "
            "nats from log M.")  # fmt: skip


_MODE_TEXT = {
    "embedding": "SB3 SAC on the frozen encoder's projections (embedding mode: each frame encoded once)",
    "reference": "AugmentedSAC on pixels, frozen conv trunk + trainable pre_fc (reference mode)",
}


def _verdict(row: dict[str, Any], episodes: int) -> str:
    """One sentence, computed from the numbers: does the agent learn, and did pretraining help on this run?"""
    from sb3_crptpro.app.progress import counted

    pre, rand_init, rand = row["agents"]["pretrained"], row["agents"]["random init"], row["random"]
    learns = pre["mean"] >= 2 * max(rand["mean"], 1e-9)
    gap = pre["mean"] - rand_init["mean"]
    noise = (pre["std"] + rand_init["std"]) / 2
    helped = "helped" if gap > noise else "hurt" if gap < -noise else "made no clear difference"
    return (f"**On {row['task']}:** the agent with the pretrained encoder "
            f"{'beats' if learns else 'does not reach'} twice the random policy ({pre['mean']:.1f} vs "
            f"{rand['mean']:.1f}); against the random-init encoder ({rand_init['mean']:.1f}), pretraining {helped} on "
            f"this seed (difference {gap:+.1f}, mean std {noise:.1f} over "
            f"{counted(episodes, 'episode')}).")  # fmt: skip


def _summary_markdown(results: dict[str, Any]) -> str:
    from sb3_crptpro.app.progress import counted

    c, secs, final = results["config"], results["seconds"], results["pretrain"]["final"]
    seen = set(c["tasks"])
    lines = [
        "# sb3-crptpro demo report",
        "",
        "## What was run",
        "",
        f"- collect: {c['transitions']} uniform-random transitions per domain from {', '.join(c['tasks'])} "
        f"({c['image_size']} px, action repeat {c['action_repeat']}, fast render preset, seed {c['seed']}); "
        f"{c['unseen_transitions']} from {c['unseen_task']} (not used for pretraining)",
        f"- pretrain: CRPTpro, {results['pretrain']['updates']} updates at batch {c['pretrain_batch_size']} "
        f"(reference: 50,000 at 512)",
        f"- train: {_MODE_TEXT[c['train_mode']]} (quick preset), intrinsic reward coef {c['intrinsic_coef']}, on "
        f"{c['train_task']} for {c['train_steps']} env steps, once with the pretrained encoder and once with the "
        "same networks before pretraining (random init)",
        f"- evaluate: {counted(c['eval_episodes'], 'episode')}, deterministic policy, extrinsic return; the random "
        "policy on the same seeds as a baseline; the unseen task is zero-shot (the policy never trained there)",
        "",
        "## Timings",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *[f"| {name} | {s:.1f} |" for name, s in secs.items()],
        f"| **total** | **{sum(secs.values()):.1f}** |",
        "",
        "## Pretraining (last logged update)",
        "",
        f"preset `{c['pretrain_preset']}`; loss {final.get('loss', float('nan')):.4f} (comparative "
        f"{final.get('loss_comp', float('nan')):.4f}, intrinsic {final.get('loss_intr', float('nan')):.4f}); "
        f"prototypes used by the last batch: {final.get('n_used', float('nan')):.0f} by its Sinkhorn targets "
        f"(balanced by construction), {final.get('n_used_raw', float('nan')):.0f} as nearest prototype; "
        f"mean/max prototype cosine {final.get('cos_mean', float('nan')):.3f}"
        f" / {final.get('cos_max', float('nan')):.3f}; {results['pretrain']['updates_per_s']:.2f} updates/s.",
        "",
        _collapse_sentence(results["pretrain"].get("diagnostics") or {}, results["pretrain"].get("collapsed")),
        "",
        "## Prototype coverage (nearest prototype of 500 sampled frames per domain, no Sinkhorn balancing)",
        "",
        "| domain | in pretraining | prototypes used | usage entropy (nats) | max possible |",
        "| --- | --- | ---: | ---: | ---: |",
        *[
            f"| {d} | {'yes' if d in seen else 'no'} | {u['n_used']:.0f} | {u['usage_entropy']:.2f} | "
            f"{u['usage_entropy_max']:.2f} |"
            for d, u in results["coverage"].items()
        ],
        "",
        "## Evaluation (extrinsic return)",
        "",
        "| task | in pretraining | trained on | pretrained encoder | random-init encoder | random policy |",
        "| --- | --- | --- | ---: | ---: | ---: |",
        *[
            f"| {r['task']} | {'yes' if r['task'] in seen else 'no'} | "
            f"{'yes' if r['task'] == c['train_task'] else 'no (zero-shot)'} | "
            + " | ".join(f"{a['mean']:.1f} +- {a['std']:.1f}" for a in (*r["agents"].values(), r["random"]))
            + " |"
            for r in results["evaluation"]
        ],
        "",
        _verdict(results["evaluation"][0], c["eval_episodes"]),
        "",
        "Per-episode returns are in `summary.json`. One seed and a few evaluation episodes: a difference smaller than",
        "the standard deviations is not evidence either way (`benchmarks/downstream.py` runs 3 seeds).",
        "",
        "## Files",
        "",
        "- `frames.png`: random-policy frames of every domain used",
        "- `pretraining.png`: losses, prototype usage and prototype cosine similarity during pretraining",
        "- `coverage.png`: prototype usage by domain (incl. the unseen one) and pairwise prototype cosines",
        "- `prototype_gallery.png`: the most used prototypes, each with its nearest frames (border = domain)",
        "- `learning_curve.png`: evaluation returns with the pretrained and the random-init encoder, random policy",
        *[f"- run directory ({k} encoder): `{v}`" for k, v in results["run_dirs"].items()],
        f"- encoders: `{results['encoder']}`, `{results['encoder_random_init']}`",
        "",
    ]
    return "\n".join(lines)
