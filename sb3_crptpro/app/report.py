"""Report figures: learning curve, pretraining loss/coverage, prototype coverage and the prototype gallery.

All functions write one PNG and return its path; they only read files that the pipeline writes (``metrics.csv``,
``evaluations.npz``, ``monitor.csv``, artifacts, datasets), so they work on any run, not only the demo's.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "plot_coverage",
    "plot_encoder_comparison",
    "plot_learning_curve",
    "plot_pretraining",
    "plot_prototype_gallery",
    "prototype_scores_by_domain",
]

#: one colour per domain (gallery borders, coverage bars)
DOMAIN_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_learning_curve(run_dir: str | Path, out: str | Path, random_return: float | None = None) -> Path:
    """Evaluation returns (mean +- std over episodes, from ``evaluations.npz``) and training episode returns
    (``monitor.csv``, extrinsic) against environment steps."""
    plt = _pyplot()
    run_dir = Path(run_dir)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    episodes = _monitor_episodes(run_dir)
    if len(episodes):
        ax.plot(np.cumsum(episodes[:, 1]), episodes[:, 0], ".", alpha=0.6, label="training episodes")
    evaluations = run_dir / "evaluations.npz"
    if evaluations.is_file():
        data = np.load(evaluations)
        mean, std = data["results"].mean(axis=1), data["results"].std(axis=1)
        ax.errorbar(data["timesteps"], mean, yerr=std, marker="o", capsize=3, label="evaluation (deterministic)")
    if random_return is not None:
        ax.axhline(random_return, color="grey", linestyle="--", label="random policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (extrinsic)")
    ax.set_title(f"learning curve: {run_dir.parent.name} {run_dir.name}")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, out)


def plot_encoder_comparison(
    runs: dict[str, dict[str, Sequence[str | Path]]],
    out: str | Path,
    final_returns: dict[str, dict[str, Sequence[float]]] | None = None,
    random_returns: dict[str, float] | None = None,
    titles: dict[str, str] | None = None,
) -> Path:
    """Encoders compared over seeds, one panel per task (e.g. pretrained vs random-init encoder).

    Each run's training-episode returns (``monitor.csv``: extrinsic, stochastic policy) against environment steps
    (agent steps x the run's action repeat), one thin line per seed and one colour per encoder; to the right of the
    curves each encoder's final evaluation (``final_returns``): a large marker at the mean over seeds and a dot per
    seed; the random policy as a dashed line.

    :param runs: ``{task: {label: [run directory, one per seed]}}`` written by :func:`~sb3_crptpro.train`
    :param out: the PNG to write
    :param final_returns: ``{task: {label: [mean evaluation return, one per seed]}}``
    :param random_returns: ``{task: mean return of the random policy}``
    :param titles: ``{task: panel title}`` (default: the task)
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(6.2 * len(runs), 4.4), squeeze=False)
    for ax, (task, by_label) in zip(axes[0], runs.items(), strict=True):
        end = 0.0
        for i, (label, run_dirs) in enumerate(by_label.items()):
            colour = DOMAIN_COLOURS[i % 8]
            for k, run_dir in enumerate(run_dirs):
                saved = _run_config(Path(run_dir))
                repeat = saved.get("env", {}).get("action_repeat") or 1
                end = max(end, float(saved.get("train", {}).get("steps", 0) * repeat))
                episodes = _monitor_episodes(Path(run_dir))
                if len(episodes):  # a run shorter than one episode has no training curve, only its evaluation
                    name = f"{label}: training episodes" if k == 0 else None
                    ax.plot(np.cumsum(episodes[:, 1]) * repeat, episodes[:, 0], ".-", color=colour, alpha=0.45,
                            linewidth=1, markersize=3, label=name)  # fmt: skip
        for i, (label, returns) in enumerate((final_returns or {}).get(task, {}).items()):
            x = end * (1.04 + 0.03 * i)
            colour = DOMAIN_COLOURS[i % 8]
            ax.plot([x] * len(returns), returns, ".", color=colour, markersize=5)
            ax.plot([x], [float(np.mean(returns))], "D", color=colour, markersize=9, markeredgecolor="black",
                    label=f"{label}: final evaluation {np.mean(returns):.1f} (mean of {len(returns)})")  # fmt: skip
        if random_returns and task in random_returns:
            ax.axhline(random_returns[task], color="grey", linestyle="--",
                       label=f"random policy ({random_returns[task]:.1f})")  # fmt: skip
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return (extrinsic)")
        ax.set_title((titles or {}).get(task, task), fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


def _run_config(run_dir: Path) -> dict[str, Any]:
    """A run directory's ``config.yml`` (written by :func:`~sb3_crptpro.train`; empty without one)."""
    import yaml

    path = run_dir / "config.yml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def _monitor_episodes(run_dir: Path) -> np.ndarray:
    """``[n, 2]`` (return, length) of finished training episodes from all ``*monitor.csv`` files, in time order."""
    rows = []
    for path in sorted(run_dir.glob("*monitor.csv")):
        with open(path, newline="") as fh:
            fh.readline()  # the JSON header line
            rows += [(float(r["t"]), float(r["r"]), float(r["l"])) for r in csv.DictReader(fh)]
    rows.sort()
    return np.array([(r, n) for _, r, n in rows]).reshape(-1, 2)


def _read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} has no rows")
    keys = rows[0].keys()
    return {k: np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows]) for k in keys}


def plot_pretraining(metrics_csv: str | Path, out: str | Path, num_protos: int | None = None) -> Path:
    """Four panels from the pretrainer's ``metrics.csv``: losses against ``log(M)`` (the trivial solution), the
    collapse diagnostics on the probe frames (effective rank, prototypes used), and the prototypes' pairwise cosine.

    The title says whether the run collapsed, computed from the last logged diagnostics
    (:func:`~sb3_crptpro.pretraining.diagnostics.collapse_warning`).

    :param num_protos: ``M`` for the ``log(M)`` line (default: recovered from the logged margin, if any)
    """
    import math

    from sb3_crptpro.pretraining.diagnostics import COLLAPSE_THRESHOLDS, collapse_verdict

    plt = _pyplot()
    m = _read_metrics(metrics_csv)
    x = m["update"]
    if num_protos is None and "probe/margin" in m:
        num_protos = round(math.exp(m["probe/margin"][-1] + m["probe/loss_comp_probe"][-1]))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0, 0]
    ax.plot(x, m["loss_comp"], color="tab:blue", lw=2, label="comparative loss (training batch)")
    ax.plot(x, m["loss"], color="black", lw=1, ls="--", label="total = comparative + alpha x intrinsic")
    if "probe/loss_comp_probe" in m:
        ax.plot(x, m["probe/loss_comp_probe"], color="tab:cyan", lw=1, label="comparative loss (probe frames)")
    if num_protos:
        ax.axhline(math.log(num_protos), color="tab:red", ls=":", label=f"log M = {math.log(num_protos):.3f} (trivial)")
    ax.set_title("losses: a run pinned at log M has collapsed")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    if "probe/eff_rank" in m:
        ax.plot(x, m["probe/eff_rank"], color="tab:green", label="all probe frames")
        ax.plot(x, m["probe/eff_rank_min"], color="tab:olive", label="worst domain")
        target = COLLAPSE_THRESHOLDS["eff_rank_min"]
        ax.axhline(target, color="grey", ls=":", label=f"healthy-run target, each domain >= {target:.0f}")
        ax.axhspan(0, 5, color="tab:red", alpha=0.1, label="collapsed, worst domain < 5")
        ax.legend(fontsize=7)
    ax.set_title("effective rank of normalised target projections")
    ax.set_ylabel("effective rank (of 128 dims)")
    ax = axes[1, 0]
    if "probe/n_used" in m:
        ax.plot(x, m["probe/n_used"], color="tab:green", label="nearest prototype of probe frames")
    ax.plot(x, m["n_used_raw"] if "n_used_raw" in m else m["n_used"], color="tab:olive",
            label="nearest prototype of the training batch")  # fmt: skip
    ax.set_title("prototypes in use (no Sinkhorn balancing)")
    ax.set_ylabel("prototypes (count)")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    ax.plot(x, m["cos_mean"], label="mean")
    ax.plot(x, m["cos_max"], label="max")
    ax.set_title("prototype pairwise cosine (off-diagonal)")
    ax.set_ylabel("cosine similarity")
    ax.legend(fontsize=7)
    from matplotlib.ticker import MaxNLocator

    for ax in axes.flat:
        ax.set_xlabel("update")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    last = {k[len("probe/") :]: float(v[-1]) for k, v in m.items() if k.startswith("probe/")}
    verdict = "no collapse diagnostics logged"
    if "eff_rank_min" in last:
        verdict = (f"{collapse_verdict(last, num_protos or 1)}\non the probe frames: effective rank "
                   f"{last['eff_rank_min']:.1f} in the worst domain, {last['n_used']:.0f} prototypes nearest to some "
                   f"frame, comparative loss {last.get('margin', float('nan')):.3f} nats below log M")  # fmt: skip
    fig.suptitle(f"pretraining ({Path(metrics_csv).parent.name}): {verdict}", fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def _sample_indices(n: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(count, n), replace=False))


def prototype_scores_by_domain(
    artifact: Any, datasets: Sequence[Any], frames_per_domain: int = 500, seed: int = 0
) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Prototype scores ``{task: [n, M]}`` of a seeded sample of each dataset's observations, and the sampled
    observations ``{task: uint8 [n, 3k, H, W]}``."""
    from sb3_crptpro.pretraining.diagnostics import prototype_scores

    scores, observations = {}, {}
    for dataset in datasets:
        obs, _, _ = dataset.transitions(_sample_indices(len(dataset), frames_per_domain, seed))
        scores[dataset.task] = prototype_scores(
            artifact.encoder, artifact.projector, artifact.prototypes.weight, torch.from_numpy(obs)
        )
        observations[dataset.task] = obs
    return scores, observations


def plot_coverage(scores_by_domain: dict[str, torch.Tensor], prototypes: torch.Tensor, out: str | Path) -> Path:
    """Left: per domain, the share of its sampled frames covered by its k most used prototypes (nearest prototype,
    no Sinkhorn balancing), one curve per domain; right: the distribution of pairwise prototype cosines.

    A steep curve means few prototypes hold most of a domain's frames; the legend gives each domain's prototypes
    used and usage entropy; the title counts the prototypes used by the whole sample and the largest share of it.
    """
    from sb3_crptpro.pretraining.diagnostics import pairwise_cosines, per_domain_assignment, prototype_usage

    plt = _pyplot()
    m = len(prototypes)
    shares = per_domain_assignment(scores_by_domain, m)
    counts = {d: shares[d].numpy() * len(s) for d, s in scores_by_domain.items()}
    total = sum(counts.values())
    n_frames = sum(len(s) for s in scores_by_domain.values())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    most = 1
    for i, (domain, c) in enumerate(counts.items()):
        usage = prototype_usage(scores_by_domain[domain], m)
        ranked = np.sort(c[c > 0])[::-1]
        most = max(most, len(ranked))
        covered = np.concatenate([[0.0], np.cumsum(ranked) / max(ranked.sum(), 1)])
        label = (f"{domain}: {int(usage['n_used'])} used, entropy {usage['usage_entropy']:.2f} "
                 f"({len(scores_by_domain[domain])} frames)")  # fmt: skip
        axes[0].step(np.arange(len(covered)), 100 * covered, where="post", color=DOMAIN_COLOURS[i % 8], label=label)
    axes[0].set_xlim(0, most)
    axes[0].set_ylim(0, 101)
    axes[0].set_xlabel("prototypes, most used first (within the domain)")
    axes[0].set_ylabel("share of the domain's sampled frames (%)")
    axes[0].set_title("how many prototypes cover each domain", fontsize=10)
    axes[0].legend(fontsize=7, loc="lower right", title="domain: prototypes used, usage entropy (nats)",
                   title_fontsize=7)  # fmt: skip
    cosines = pairwise_cosines(prototypes).numpy()
    axes[1].hist(cosines, bins=50, color="grey")
    axes[1].set_title("pairwise cosine similarity of the prototypes", fontsize=10)
    axes[1].set_xlabel("cosine similarity")
    axes[1].set_ylabel("prototype pairs")
    used = int((total > 0).sum())
    top_share = float(total.max() / max(total.sum(), 1))
    fig.suptitle(f"{used} of {m} prototypes are the nearest of some of the {n_frames} sampled frames "
                 f"({len(counts)} domains); the most used one takes {100 * top_share:.0f}% of them "
                 f"({'collapsed' if top_share > 0.5 else 'spread'}); prototypes are "
                 f"{'near-orthogonal' if abs(np.mean(cosines)) < 0.1 else 'aligned'} (mean cosine "
                 f"{np.mean(cosines):+.2f})", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return _save(fig, out)


def plot_prototype_gallery(
    scores_by_domain: dict[str, torch.Tensor],
    observations: dict[str, np.ndarray],
    out: str | Path,
    n_prototypes: int = 8,
    per_prototype: int = 8,
) -> Path:
    """For the most used prototypes, the sampled frames closest to each (one row per prototype), each framed in
    its domain's colour. The newest frame of each stack is shown."""
    plt = _pyplot()
    domains = list(scores_by_domain)
    scores = torch.cat([scores_by_domain[d] for d in domains])
    owner = np.concatenate([[i] * len(scores_by_domain[d]) for i, d in enumerate(domains)])
    frames = np.concatenate([observations[d][:, -3:] for d in domains]).transpose(0, 2, 3, 1)  # newest RGB frame
    votes = torch.bincount(scores.argmax(dim=1), minlength=scores.shape[1])
    chosen = [p for p in torch.argsort(votes, descending=True)[:n_prototypes].tolist() if votes[p] > 0]
    rows, cols = len(chosen), min(per_prototype, len(scores))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows + 0.8), squeeze=False)
    purities = []
    for r, proto in enumerate(chosen):
        nearest = torch.argsort(scores[:, proto], descending=True)[:cols].tolist()
        purities.append(np.bincount(owner[nearest]).max() / len(nearest))
        for c, idx in enumerate(nearest):
            ax = axes[r, c]
            ax.imshow(frames[idx])
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(DOMAIN_COLOURS[owner[idx] % 8])
                spine.set_linewidth(4)
        axes[r, 0].set_ylabel(f"#{proto}\n({int(votes[proto])})", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=DOMAIN_COLOURS[i % 8]) for i in range(len(domains))]
    fig.legend(handles, domains, loc="lower center", ncol=len(domains), fontsize=8, frameon=False)
    purity = float(np.mean(purities))
    verdict = "each groups frames of one domain" if purity > 0.9 else "they mix domains"
    fig.suptitle(f"The {rows} most used prototypes (rows; id, frames assigned) and their nearest frames (border = "
                 f"domain): {verdict}, {100 * purity:.0f}% of a row from its main domain", fontsize=9)  # fmt: skip
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, out)
