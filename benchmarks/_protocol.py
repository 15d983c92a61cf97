"""The evaluation protocol shared by ``quality.py`` (CPU budget) and ``gpu_reproduce.py`` (reference budget).

Steps, each cached in ``<out>/`` so that a re-run resumes where the last one stopped:

1. collect random data on the pretraining domains, and probe data (another seed) on those plus unseen domains;
2. pretrain one encoder per ``alpha`` (same seed, data and budget), plus a random-init artifact with the same
   architecture;
3. state probe (ridge from frozen conv features to the proprioceptive state, held-out episodes) per encoder and
   domain; prototype coverage of every encoder on every probe domain;
4. downstream: frozen encoder + AugmentedSAC on one task, several seeds, final deterministic evaluation.

Writes ``report.md``, ``results.json`` and PNGs. Every seed's number is printed and stored; nothing is selected.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sb3_crptpro import load_artifact, save_artifact
from sb3_crptpro.app.evaluation import evaluate_run
from sb3_crptpro.app.training import TrainConfig, train
from sb3_crptpro.common.networks import Encoder, Projector, Prototypes
from sb3_crptpro.data.collection import collect
from sb3_crptpro.data.domain import DomainDataset
from sb3_crptpro.data.sampler import CrossDomainDataset
from sb3_crptpro.pretraining.diagnostics import prototype_cosine_stats, prototype_scores, prototype_usage
from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer
from sb3_crptpro.pretraining.probe import probe_domain


@dataclass
class ProtocolSizes:
    """Everything the protocol's cost depends on."""

    tasks: list[str] = field(default_factory=lambda: ["cheetah_run", "walker_run", "reacher_easy"])
    unseen_tasks: list[str] = field(default_factory=lambda: ["cartpole_swingup", "finger_spin"])
    image_size: int = 64
    action_repeat: int = 4
    render: str = "fast"
    transitions: int = 3000
    probe_transitions: int = 2000
    updates: int = 1000
    batch_size: int = 64
    num_protos: int = 512
    alphas: list[float] = field(default_factory=lambda: [0.005, 0.0])
    #: pretraining preset of every encoder (``default`` or ``paper``; see ``PRETRAIN_PRESETS``)
    pretrain_preset: str = "default"
    downstream_task: str = "cartpole_balance"
    downstream_action_repeat: int = 8
    downstream_steps: int = 2000
    downstream_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    downstream_encoders: list[str] = field(default_factory=lambda: ["alpha=0.005", "random init"])
    intrinsic_coef: float = 0.0
    preset: str = "quick"
    eval_episodes: int = 5
    seed: int = 0
    device: str = "auto"
    workers: int | None = None


def _cached(path: Path, compute: Any) -> Any:
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))
    return value


def _encoders(sizes: ProtocolSizes, out: Path) -> dict[str, Path]:
    """Pretrain one encoder per alpha (resuming from checkpoints) and write the random-init artifact."""
    env = {"image_size": sizes.image_size, "action_repeat": sizes.action_repeat, "render": sizes.render}
    collect(sizes.tasks, out / "data", transitions_per_domain=sizes.transitions, seed=sizes.seed,
            n_workers=sizes.workers, progress=False, **env)  # fmt: skip
    paths = {}
    for alpha in sizes.alphas:
        name = f"alpha={alpha:g}"
        path = out / "encoders" / f"alpha_{alpha:g}.safetensors"
        if not path.is_file():
            config = PretrainConfig.from_preset(sizes.pretrain_preset, updates=sizes.updates,
                                                batch_size=sizes.batch_size, alpha=alpha, seed=sizes.seed,
                                                num_protos=sizes.num_protos, device=sizes.device, progress=False,
                                                log_every=max(sizes.updates // 20, 1),
                                                checkpoint_every=max(sizes.updates // 10, 1))  # fmt: skip
            trainer = Pretrainer(config, CrossDomainDataset(out / "data"), out / "pretrain" / f"alpha_{alpha:g}")
            start = time.perf_counter()
            stats = trainer.fit(resume=True)
            trainer.save(path, stats)
            print(f"pretrained {name}: {sizes.updates} updates at batch {sizes.batch_size}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        paths[name] = path
    random_path = out / "encoders" / "random_init.safetensors"
    if not random_path.is_file():
        reference = load_artifact(paths[next(iter(paths))])
        torch.manual_seed(sizes.seed + 12345)
        encoder = Encoder(reference.obs_shape)
        save_artifact(random_path, encoder, Projector(encoder.repr_dim, reference.metadata["proj_dim"]),
                      Prototypes(reference.metadata["proj_dim"], sizes.num_protos), config={"random_init": True},
                      stats={}, render=sizes.render, tasks=[])  # fmt: skip
    paths["random init"] = random_path
    return paths


def _probe_and_coverage(sizes: ProtocolSizes, out: Path, encoders: dict[str, Path]) -> dict[str, Any]:
    env = {"image_size": sizes.image_size, "action_repeat": sizes.action_repeat, "render": sizes.render}
    tasks = [*sizes.tasks, *sizes.unseen_tasks]
    dirs = collect(tasks, out / "probe_data", transitions_per_domain=sizes.probe_transitions, seed=sizes.seed + 1000,
                   n_workers=sizes.workers, progress=False, **env)  # fmt: skip
    results: dict[str, Any] = {}
    for name, path in encoders.items():
        artifact = load_artifact(path)
        per_task = {}
        for task, directory in zip(tasks, dirs, strict=True):
            data = DomainDataset(directory, frame_stack=artifact.frame_stack)
            obs, _, _ = data.transitions(np.arange(len(data)))
            scores = prototype_scores(artifact.encoder, artifact.projector, artifact.prototypes.weight,
                                      torch.from_numpy(obs))  # fmt: skip
            per_task[task] = {
                "seen": task in sizes.tasks,
                "probe_r2": probe_domain(artifact.encoder, data),
                **prototype_usage(scores, artifact.metadata["num_protos"]),
            }
            print(f"{name:<12} {task:<18} R2 {per_task[task]['probe_r2']:.3f}  protos used "
                  f"{per_task[task]['n_used']:.0f}", flush=True)  # fmt: skip
        results[name] = {"tasks": per_task, **prototype_cosine_stats(artifact.prototypes.weight)}
    return results


def _downstream_run(sizes: ProtocolSizes, out: Path, name: str, encoder: Path, seed: int) -> dict[str, Any]:
    """Train one seed with one frozen encoder, then evaluate the final policy."""
    config = TrainConfig(
        task=sizes.downstream_task,
        encoder=str(encoder),
        steps=sizes.downstream_steps,
        intrinsic_coef=sizes.intrinsic_coef,
        preset=sizes.preset,
        seed=seed,
        action_repeat=sizes.downstream_action_repeat,
        eval_freq=max(sizes.downstream_steps // 4, 1),
        eval_episodes=2,
        log_dir=str(out / "downstream" / _slug(name)),
        device=sizes.device,
        progress=False,
    )
    start = time.perf_counter()
    run_dir = train(config, command=["benchmarks protocol", name, f"seed {seed}"])
    final = evaluate_run(run_dir, episodes=sizes.eval_episodes, seed=1000 + seed, device=sizes.device)
    curve = np.load(run_dir / "evaluations.npz")
    return {
        "seed": seed,
        "final_mean": final["mean"],
        "final_returns": final["returns"],
        "curve_steps": curve["timesteps"].tolist(),
        "curve_means": curve["results"].mean(axis=1).tolist(),
        "seconds": time.perf_counter() - start,
        "run_dir": str(run_dir),
    }


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace("=", "_")


def _downstream(sizes: ProtocolSizes, out: Path, encoders: dict[str, Path]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in sizes.downstream_encoders:
        runs = []
        for seed in sizes.downstream_seeds:
            cache = out / "downstream" / f"{_slug(name)}_seed{seed}.json"
            result = _cached(cache, lambda n=name, s=seed: _downstream_run(sizes, out, n, encoders[n], s))
            print(f"downstream {name:<12} seed {seed}: final return {result['final_mean']:.1f} "
                  f"({result['seconds']:.0f} s)", flush=True)  # fmt: skip
            runs.append(result)
        finals = np.array([r["final_mean"] for r in runs])
        results[name] = {"runs": runs, "mean": float(finals.mean()), "std": float(finals.std())}
    return results


def run_protocol(sizes: ProtocolSizes, out: str | Path) -> dict[str, Any]:
    """Run (or resume) the protocol in ``out`` and write the report; return all numbers."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sizes.json").write_text(json.dumps(dataclasses.asdict(sizes), indent=2))
    start = time.perf_counter()
    encoders = _encoders(sizes, out)
    probe = _cached(out / "probe.json", lambda: _probe_and_coverage(sizes, out, encoders))
    downstream = _downstream(sizes, out, encoders)
    results = {
        "sizes": dataclasses.asdict(sizes),
        "probe": probe,
        "pretraining": {name: _last_metrics(out, name) for name in encoders if name != "random init"},
        "downstream": downstream,
        "seconds_this_invocation": time.perf_counter() - start,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _write_report(results, out)
    return results


def _last_metrics(out: Path, name: str) -> dict[str, float]:
    import csv

    path = out / "pretrain" / name.replace("=", "_") / "metrics.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: float(v) for k, v in rows[-1].items() if v not in ("", None)} if rows else {}


def _write_report(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes, probe, downstream = results["sizes"], results["probe"], results["downstream"]
    names = list(probe)
    tasks = list(next(iter(probe.values()))["tasks"])
    lines = ["# Does the pretrained encoder help? (measured)", "", "## Sizes", "", "```json",
             json.dumps(sizes, indent=1), "```", "", "## State-probe R^2 (held-out episodes; higher is better)", "",
             "| task | seen in pretraining | " + " | ".join(names) + " |",
             "| --- | --- | " + " | ".join("---:" for _ in names) + " |"]  # fmt: skip
    for task in tasks:
        seen = "yes" if probe[names[0]]["tasks"][task]["seen"] else "no"
        lines.append(f"| {task} | {seen} | " + " | ".join(f"{probe[n]['tasks'][task]['probe_r2']:.3f}" for n in names)
                     + " |")  # fmt: skip
    lines += ["", "## Prototype coverage on the probe frames (argmax assignment)", "",
              "| encoder | task | prototypes used | usage entropy (nats) | max |",
              "| --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for n in names:
        for task in tasks:
            t = probe[n]["tasks"][task]
            used, entropy, best = t["n_used"], t["usage_entropy"], t["usage_entropy_max"]
            lines.append(f"| {n} | {task} | {used:.0f} | {entropy:.2f} | {best:.2f} |")
    lines += ["", "| encoder | mean off-diagonal prototype cosine | max |", "| --- | ---: | ---: |"]
    lines += [f"| {n} | {probe[n]['cos_mean']:.4f} | {probe[n]['cos_max']:.3f} |" for n in names]
    lines += ["", f"## Downstream: AugmentedSAC on {sizes['downstream_task']}, {sizes['downstream_steps']} env steps, "
              f"intrinsic coef {sizes['intrinsic_coef']}, final evaluation over {sizes['eval_episodes']} episodes", "",
              "| encoder | mean +- std over seeds | per seed |", "| --- | ---: | --- |"]  # fmt: skip
    for n, d in downstream.items():
        per_seed = ", ".join(f"seed {r['seed']}: {r['final_mean']:.1f}" for r in d["runs"])
        lines.append(f"| {n} | {d['mean']:.1f} +- {d['std']:.1f} | {per_seed} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")

    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        ax.bar(np.arange(len(tasks)) + i * width, [probe[n]["tasks"][t]["probe_r2"] for t in tasks], width, label=n)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, [f"{t}\n({'seen' if t in sizes['tasks'] else 'unseen'})"
                                                              for t in tasks], fontsize=8)  # fmt: skip
    ax.set_ylabel("held-out state-probe R^2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "probe_r2.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for n, d in downstream.items():
        curves = np.array([r["curve_means"] for r in d["runs"]])
        steps = d["runs"][0]["curve_steps"]
        ax.plot(steps, curves.mean(axis=0), marker="o", label=f"{n} (mean of {len(curves)} seeds)")
        ax.fill_between(steps, curves.min(axis=0), curves.max(axis=0), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return (band: min-max over seeds)")
    ax.set_title(sizes["downstream_task"])
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "downstream.png", dpi=110)
    plt.close(fig)

    from sb3_crptpro.app.report import plot_pretraining

    for name in results["pretraining"]:
        metrics = out / "pretrain" / name.replace("=", "_") / "metrics.csv"
        if metrics.is_file():
            plot_pretraining(metrics, out / f"pretraining_{name.replace('=', '_')}.png")
