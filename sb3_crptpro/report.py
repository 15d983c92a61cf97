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
    (:func:`~sb3_crptpro.diagnostics.collapse_warning`).

    :param num_protos: ``M`` for the ``log(M)`` line (default: recovered from the logged margin, if any)
    """
    import math

    from sb3_crptpro.diagnostics import COLLAPSE_THRESHOLDS, collapse_warning

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
        ax.axhline(COLLAPSE_THRESHOLDS["eff_rank_min"], color="grey", ls=":", label="target >= 20")
        ax.axhspan(0, 5, color="tab:red", alpha=0.1, label="collapsed (< 5)")
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
        collapsed = collapse_warning(last, num_protos or 1) is not None
        verdict = (f"{'COLLAPSED to the trivial solution' if collapsed else 'not collapsed'}: effective rank "
                   f"{last['eff_rank_min']:.1f} (worst domain), {last['n_used']:.0f} prototypes used, "
                   f"comparative loss {-last.get('margin', float('nan')):+.3f} nats from log M")  # fmt: skip
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
    from sb3_crptpro.diagnostics import prototype_scores

    scores, observations = {}, {}
    for dataset in datasets:
        obs, _, _ = dataset.transitions(_sample_indices(len(dataset), frames_per_domain, seed))
        scores[dataset.task] = prototype_scores(
            artifact.encoder, artifact.projector, artifact.prototypes.weight, torch.from_numpy(obs)
        )
        observations[dataset.task] = obs
    return scores, observations


def plot_coverage(scores_by_domain: dict[str, torch.Tensor], prototypes: torch.Tensor, out: str | Path) -> Path:
    """Prototype usage histogram (stacked by domain, sorted by use), per-domain assignment entropy and the
    distribution of pairwise prototype cosines."""
    from sb3_crptpro.diagnostics import pairwise_cosines, per_domain_assignment, prototype_usage

    plt = _pyplot()
    m = len(prototypes)
    shares = per_domain_assignment(scores_by_domain, m)
    counts = {d: shares[d].numpy() * len(s) for d, s in scores_by_domain.items()}
    total = sum(counts.values())
    order = np.argsort(-total)
    used = order[: max(int((total > 0).sum()), 1)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    bottom = np.zeros(len(used))
    for i, (domain, c) in enumerate(counts.items()):
        usage = prototype_usage(scores_by_domain[domain], m)
        label = f"{domain} ({int(usage['n_used'])} used, entropy {usage['usage_entropy']:.2f})"
        axes[0].bar(np.arange(len(used)), c[used], bottom=bottom, color=DOMAIN_COLOURS[i % 8], width=1.0, label=label)
        bottom += c[used]
    axes[0].set_xlabel(f"prototypes with at least one sample ({len(used)} of {m}), most used first")
    axes[0].set_ylabel("samples assigned (argmax)")
    axes[0].set_title("prototype usage by domain")
    axes[0].legend(fontsize=7)
    axes[1].hist(pairwise_cosines(prototypes).numpy(), bins=50, color="grey")
    axes[1].set_title("pairwise prototype cosine similarity")
    axes[1].set_xlabel("cosine")
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
    chosen = torch.argsort(votes, descending=True)[:n_prototypes].tolist()
    rows, cols = len(chosen), min(per_prototype, len(scores))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows), squeeze=False)
    for r, proto in enumerate(chosen):
        nearest = torch.argsort(scores[:, proto], descending=True)[:cols].tolist()
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
    fig.legend(handles, domains, loc="lower center", ncol=len(domains), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.03))  # fmt: skip
    axes[0, 0].set_title("nearest frames per prototype (row: prototype id, samples assigned); border = domain",
                         fontsize=9, loc="left")  # fmt: skip
    return _save(fig, out)
