"""Does the encoder's gain over a random init grow with the pretraining budget? (figure from cached rows)

Reads the rows that ``benchmarks/collapse_study.py`` cached for the ``default`` preset and the ``random init``
baseline at each ``--updates`` it was run with (``<out>/rows/<variant>_seed<s>_<updates>.json``; one output folder per
budget, because the encoders of a folder are named without the budget), and plots the state-probe R^2 (mean over the
5 probe domains, held-out episodes) of the conv features and of the 128-d projection against the number of
pretraining updates, every seed as a dot. Prints the table behind the figure. Nothing is trained here.

Usage (the figure of docs/does-it-help.md)::

    python benchmarks/collapse_study.py --out outputs/collapse_study --variants default "random init" \
        --seeds 0 1 2 3 4
    python benchmarks/collapse_study.py --out outputs/collapse_6000 --updates 6000 --variants default "random init" \
        --seeds 0 1 2 3 4
    python benchmarks/pretrain_budget.py outputs/collapse_study outputs/collapse_6000 --out docs/img/pretrain_budget.png
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
from pathlib import Path

from collapse_study import SEEN, UNSEEN  # benchmarks/ is the script's folder

DOMAINS = (*SEEN, *UNSEEN)  # the probe domains of the rows
VARIANTS = {"default": "default", "random init": "random_init"}
ROW = re.compile(r"^(?P<variant>default|random_init)_seed(?P<seed>\d+)_(?P<updates>\d+)\.json$")


def load(folders: list[Path], seeds: list[int] | None = None) -> dict[tuple[str, int], dict[int, dict[str, float]]]:
    """``{(variant, updates): {seed: {"conv": R^2 mean, "proj": R^2 mean}}}`` from the cached rows (``seeds``: keep
    only these)."""
    names = {file_stem: variant for variant, file_stem in VARIANTS.items()}
    table: dict[tuple[str, int], dict[int, dict[str, float]]] = {}
    for folder in folders:
        for path in sorted((folder / "rows").glob("*.json")):
            match = ROW.match(path.name)
            if match is None or (seeds is not None and int(match["seed"]) not in seeds):
                continue
            row = json.loads(path.read_text())
            means = {kind: statistics.fmean(row[f"r2_{kind}/{d}"] for d in DOMAINS) for kind in ("conv", "proj")}
            key = (names[match["variant"]], int(match["updates"]))
            table.setdefault(key, {})[int(match["seed"])] = means
    if not table:
        where = [str(f) for f in folders]
        raise SystemExit(f"no default / random init rows under {where}: run collapse_study.py first")
    return table


def gains(table: dict[tuple[str, int], dict[int, dict[str, float]]], kind: str) -> dict[int, float]:
    """Mean over the seeds both variants share of (pretrained - random init) R^2, per budget."""
    out = {}
    for (variant, updates), seeds in table.items():
        random = table.get(("random init", updates), {})
        shared = sorted(set(seeds) & set(random))
        if variant == "default" and shared:
            out[updates] = statistics.fmean(seeds[s][kind] - random[s][kind] for s in shared)
    return dict(sorted(out.items()))


def figure(table: dict[tuple[str, int], dict[int, dict[str, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({updates for _, updates in table})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    styles = {"default": ("tab:blue", "o", "pretrained (default preset)"),
              "random init": ("tab:gray", "s", "random init")}  # fmt: skip
    panels = (("conv", "conv features"), ("proj", "128-d projection (embedding mode)"))
    for ax, (kind, what) in zip(axes, panels, strict=True):
        for variant, (colour, marker, label) in styles.items():
            xs = [u for u in budgets if (variant, u) in table]
            means = [statistics.fmean(v[kind] for v in table[(variant, u)].values()) for u in xs]
            for u in xs:
                values = [v[kind] for v in table[(variant, u)].values()]
                ax.scatter([u] * len(values), values, color=colour, marker=marker, alpha=0.35, s=18)
            n = len(table[(variant, xs[0])]) if xs else 0
            ax.plot(xs, means, color=colour, marker=marker, label=f"{label}: mean of {n} seeds (dots: each seed)")
        ax.set_xscale("log")
        ax.set_xticks(budgets, [f"{u:,}" for u in budgets])
        ax.minorticks_off()
        ax.set_xlabel("pretraining updates (batch 64, same 3 x 1,500 random transitions)")
        ax.set_title(f"state-probe R^2 of the {what}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("state-probe R^2, mean of 5 domains\n(held-out episodes; 2 domains unseen)")
    axes[0].legend(fontsize=8, loc="lower right")
    parts, grows = [], []
    for kind, name in (("conv", "conv"), ("proj", "projection")):
        g = list(gains(table, kind).items())
        parts.append(f"{name} " + " -> ".join(f"{v:+.3f} at {u:,}" for u, v in g))
        grows.append(len(g) > 1 and all(b[1] > a[1] for a, b in itertools.pairwise(g)))
    verdict = {2: "grows with", 1: "grows with one of the two", 0: "does not grow with"}[sum(grows)]
    fig.suptitle(f"The gain over a random-init encoder {verdict} the pretraining budget\n(pretrained minus random-init "
                 f"R^2: {'; '.join(parts)} updates)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="collapse_study.py output folders (one per budget)")
    parser.add_argument("--seeds", nargs="+", type=int, help="only these seeds (default: every cached one)")
    parser.add_argument("--out", type=Path, default=Path("outputs/pretrain_budget.png"))
    args = parser.parse_args()
    table = load(args.folders, args.seeds)
    print("| variant | updates | seeds | conv R^2 mean (per seed) | projection R^2 mean (per seed) |")
    print("| --- | ---: | ---: | --- | --- |")
    for (variant, updates), seeds in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = []
        for kind in ("conv", "proj"):
            values = [seeds[s][kind] for s in sorted(seeds)]
            cells.append(f"{statistics.fmean(values):.3f} ({', '.join(f'{v:.3f}' for v in values)})")
        print(f"| {variant} | {updates:,} | {len(seeds)} | {cells[0]} | {cells[1]} |")
    for kind in ("conv", "proj"):
        print(f"{kind}: pretrained - random init, mean over shared seeds: " +
              ", ".join(f"{v:+.3f} at {u:,} updates" for u, v in gains(table, kind).items()))  # fmt: skip
    figure(table, args.out)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
