"""Pretraining scale on a CPU: what do more updates, more data per domain or more domains buy downstream?

Each encoder is an artifact written by ``sb3-crptpro pretrain`` (the report lists how each was made). For each one this
script measures, on the same probe data as the collapse study (held-out episodes of another collection seed, the 3
pretraining domains of the shipped encoder and 2 unseen ones): the state-probe R^2 of the conv features and of the
128-d projection. It then reads the downstream runs that ``benchmarks/six_task.py`` wrote with that encoder (configs
``--config``, by default ``embedding, plain critic``, the learner all of this study's runs used; several configs of
one learner that differ only in their encoder, such as ``embedding`` and ``embedding, previous encoder``, are read
together; runs are matched to an encoder by the ``encoder`` path they recorded) and the random-init runs (``<first
config>, random init``), and writes
``<out>/report.md`` and ``<out>/pretrain_scale.png`` (one panel for the probe, one per downstream task). Probe rows
are cached in ``<out>/rows/`` by the artifact's tensor checksum, with the paths the artifact was given under: an
encoder file deleted since (a 10 MiB study artifact is not committed) is still reported, and its downstream runs still
matched, from its cached row.

Usage::

    python benchmarks/pretrain_scale.py --out benchmarks/results/pretrain_scale \\
        --encoder "shipped: 6k updates, 3 x 1.5k=outputs/enc/dmc-64px.safetensors" \\
        --encoder "20k updates=outputs/scale/u20k.safetensors" \\
        --runs benchmarks/results/six_task outputs/scale/six_u20k
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from collapse_study import SEEN, UNSEEN, probe_artifact  # benchmarks/ is the script's folder
from six_task import STUDY_BASE

from sb3_crptpro import load_artifact
from sb3_crptpro.data.collection import collect

DOMAINS = [*SEEN, *UNSEEN]
RANDOM_INIT = "random init"


def _probe_dirs(work: Path, image_size: int, transitions: int) -> dict[str, Path]:
    """The collapse study's probe data (seed 1000, action repeat 4, fast render) at ``image_size``."""
    dirs = collect(DOMAINS, work / f"probe_data_{image_size}px", transitions_per_domain=transitions, seed=1000,
                   progress=False, image_size=image_size, action_repeat=4, render="fast")  # fmt: skip
    return dict(zip(DOMAINS, dirs, strict=True))


def cached_row(path: Path | str, out: Path) -> dict[str, Any] | None:
    """The cached probe row of an artifact once given as ``path`` (``None``: never probed under that path)."""
    for cache in sorted((out / "rows").glob("*.json")):
        row = json.loads(cache.read_text())
        if str(path) in row.get("artifacts", []):
            return row
    return None


def probe_row(path: Path, out: Path, work: Path, transitions: int) -> dict[str, Any]:
    """Probe R^2 of one artifact (cached in ``<out>/rows/<tensor sha256[:16]>.json``) plus its pretraining record.

    :raises SystemExit: no file at ``path`` and no cached row recorded under that path
    """
    if not path.is_file():
        row = cached_row(path, out)
        if row is None:
            raise SystemExit(f"no artifact at {path}, and no probe row cached in {out / 'rows'} under that path")
        return row
    meta = load_artifact(path).metadata
    cache = out / "rows" / f"{meta['tensor_sha256'][:16]}.json"
    if cache.is_file():
        row = json.loads(cache.read_text())
        if str(path) not in row.setdefault("artifacts", []):
            row["artifacts"].append(str(path))
            cache.write_text(json.dumps(row, indent=1))
        return row
    stats = meta.get("stats", {})
    row: dict[str, Any] = {
        "tensor_sha256": meta["tensor_sha256"],
        "artifacts": [str(path)],
        "tasks": meta["tasks"],
        "image_size": meta["image_size"],
        "updates": stats.get("updates", 0),
        "batch_size": meta["config"]["batch_size"],
        "pretrain_s": stats.get("wall_time_s", 0.0),
    }
    row.update(probe_artifact(path, _probe_dirs(work, meta["image_size"], transitions)))
    for kind in ("conv", "proj"):
        row[f"r2_{kind}_mean"] = statistics.fmean(row[f"r2_{kind}/{t}"] for t in DOMAINS)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(row, indent=1))
    return row


def downstream(run_dirs: list[Path], rows: dict[str, dict[str, Any]], out: Path,
               configs: tuple[str, ...] = (STUDY_BASE,),
               metric: str = "final_return") -> dict[str, dict[str, dict[int, float]]]:  # fmt: skip
    """``{label: {task: {seed: metric}}}`` from six-task runs (``metric``: ``final_return``, the last evaluation's
    mean, or ``auc_return``, the mean over all evaluations of the curve): the runs of ``configs`` under the label of
    the encoder they used (matched by tensor checksum, so a shipped name and a path to the same file match; a file
    deleted since by the paths its cached probe row records), ``<configs[0]>, random init`` runs under
    :data:`RANDOM_INIT`, ``state SAC`` under its name."""
    by_sha = {row["tensor_sha256"]: label for label, row in rows.items()}
    labels: dict[str, str | None] = {}  # the encoder string a run recorded -> label (None: not compared here)

    def label_of(recorded: str) -> str | None:
        if recorded not in labels:
            try:
                labels[recorded] = by_sha.get(load_artifact(recorded).metadata["tensor_sha256"])
            except (FileNotFoundError, ValueError):  # a file since deleted, or a name not shipped
                row = cached_row(recorded, out)
                labels[recorded] = None if row is None else by_sha.get(row["tensor_sha256"])
        return labels[recorded]

    table: dict[str, dict[str, dict[int, float]]] = {}
    for folder in run_dirs:
        for file in sorted((folder / "runs").glob("*.json")):
            run = json.loads(file.read_text())
            if run["config"] in configs:
                label = label_of(run["encoder"])
            else:
                label = {f"{configs[0]}, random init": RANDOM_INIT, "state SAC": "state SAC"}.get(run["config"])
            if label is not None and run.get(metric) is not None:
                table.setdefault(label, {}).setdefault(run["task"], {})[run["seed"]] = run[metric]
    return table


def _cell(seeds: dict[int, float] | None) -> str:
    if not seeds:
        return "-"
    values = [seeds[s] for s in sorted(seeds)]
    each = ", ".join(f"s{s} {seeds[s]:.1f}" for s in sorted(seeds))
    return f"{statistics.fmean(values):.1f}" + (f" ({each})" if len(values) > 1 else "")


def paired_difference(runs: dict[str, dict[str, dict[int, float]]], label: str, reference: str,
                      task: str) -> tuple[float, float, int] | None:  # fmt: skip
    """``label`` minus ``reference`` on ``task``, over the seeds both ran: ``(mean, standard error, seeds)``; the
    standard error is ``std(ddof=1) / sqrt(seeds)`` (nan with one seed). ``None`` when no seed is shared."""
    a, b = runs.get(label, {}).get(task, {}), runs.get(reference, {}).get(task, {})
    diffs = [a[s] - b[s] for s in sorted(a.keys() & b.keys())]
    if not diffs:
        return None
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    return statistics.fmean(diffs), se, len(diffs)


def _paired_lines(runs: dict[str, dict[str, dict[int, float]]], labels: list[str], tasks: list[str],
                  what: str) -> list[str]:  # fmt: skip
    reference = labels[0]
    lines = ["", f"{what}: each encoder minus `{reference}` on the same task and seed, mean +- standard error over "
             "the seeds both ran (seeds). A difference within about two standard errors is not told apart from "
             "seed-to-seed noise.", "", "| encoder - reference | " + " | ".join(tasks) + " |",
             "| --- |" + " ---: |" * len(tasks)]  # fmt: skip
    for label in labels[1:]:
        cells = []
        for task in tasks:
            d = paired_difference(runs, label, reference, task)
            cells.append("-" if d is None else f"{d[0]:+.1f} +- {d[1]:.1f} ({d[2]})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def report(rows: dict[str, dict[str, Any]], runs: dict[str, dict[str, dict[int, float]]], out: Path,
           made: dict[str, str], command: str, configs: tuple[str, ...] = (STUDY_BASE,),
           curve_means: dict[str, dict[str, dict[int, float]]] | None = None) -> None:  # fmt: skip
    """Write ``report.md`` and ``pretrain_scale.png`` (``curve_means``: the runs' mean over their learning curves, a
    second downstream table)."""
    labels = list(rows)
    # tasks some pretrained encoder was run on (random init and state SAC are context there)
    tasks = sorted({t for label in labels if label != RANDOM_INIT for t in runs.get(label, {})}, key=_task_order)
    lines = [
        "# Pretraining scale on a CPU", "",
        f"Command: `{command}`.", "",
        "Probe: ridge regression from the frozen features to the proprioceptive state, variance-weighted R^2 on "
        f"held-out episodes (collection seed 1000), mean over {', '.join(SEEN)} (pretraining domains of the shipped "
        f"encoder) and {', '.join(UNSEEN)} (in no 3-domain encoder's data). Downstream: `benchmarks/six_task.py`, "
        f"config {', '.join(f'`{c}`' for c in configs)} (final return at 100k env steps, 10 evaluation episodes; "
        "the seeds in brackets).", "",
        "| encoder | domains | px | updates | batch | pretraining min | R^2 conv | R^2 proj | "
        + " | ".join(tasks) + " |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * len(tasks),
    ]  # fmt: skip
    for label in labels:
        row = rows[label]
        cells = [str(len(row["tasks"])) if row["updates"] else "-", str(row["image_size"]), str(row["updates"]),
                 str(row["batch_size"]) if row["updates"] else "-", f"{row['pretrain_s'] / 60:.1f}",
                 f"{row['r2_conv_mean']:.3f}", f"{row['r2_proj_mean']:.3f}",
                 *(_cell(runs.get(label, {}).get(t)) for t in tasks)]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if "state SAC" in runs:
        lines.append("| state SAC (upper anchor, not an encoder) | | | | | | | | "
                     + " | ".join(_cell(runs["state SAC"].get(t)) for t in tasks) + " |")  # fmt: skip
    if len(labels) > 1:
        lines += _paired_lines(runs, labels, tasks, "Final return")
    if curve_means:
        lines += ["", "Mean return over each run's learning curve (its 10 evaluations at 10k-100k env steps, 100 "
                  "evaluation episodes in all): less noisy than the final return where episodes either succeed or "
                  "not (reacher_easy, ball_in_cup_catch: the final evaluation's std is up to 450).", "",
                  "| encoder | " + " | ".join(tasks) + " |", "| --- |" + " ---: |" * len(tasks)]  # fmt: skip
        for label in [*labels, "state SAC"]:
            if label in curve_means:
                lines.append(f"| {label} | " + " | ".join(_cell(curve_means[label].get(t)) for t in tasks) + " |")
        if len(labels) > 1:
            lines += _paired_lines(curve_means, labels, tasks, "Curve mean")
    lines += ["", "How each encoder was made:", ""] + [f"- {label}: {made.get(label, '-')}" for label in labels]
    lines += ["", "Probe R^2 per domain (conv features / projection):", "",
              "| encoder | " + " | ".join(DOMAINS) + " |", "| --- |" + " ---: |" * len(DOMAINS)]  # fmt: skip
    for label in labels:
        r = rows[label]
        lines.append(f"| {label} | " + " | ".join(f"{r[f'r2_conv/{t}']:.3f} / {r[f'r2_proj/{t}']:.3f}"
                                                   for t in DOMAINS) + " |")  # fmt: skip
    lines += ["", "![pretraining scale](pretrain_scale.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    _figure(rows, runs, tasks, out / "pretrain_scale.png")


def _task_order(task: str) -> int:
    from six_task import TASKS

    return list(TASKS).index(task) if task in TASKS else len(TASKS)


def _figure(rows: dict[str, dict[str, Any]], runs: dict[str, dict[str, dict[int, float]]], tasks: list[str],
            path: Path) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rows)
    y = np.arange(len(labels))
    colors = ["tab:gray" if label == RANDOM_INIT else "tab:blue" for label in labels]
    cols = min(4, 1 + len(tasks))  # the probe panel, then one per task, wrapped into rows of 4
    nrows = -(-(1 + len(tasks)) // cols)
    fig, grid = plt.subplots(nrows, cols, figsize=(3.4 * cols + 2.5, nrows * (0.5 * len(labels) + 2.2)),
                             sharey=True, squeeze=False)  # fmt: skip
    axes = list(grid.flat)
    for ax in axes[1 + len(tasks) :]:
        ax.set_axis_off()
    axes[0].barh(y - 0.2, [rows[label]["r2_conv_mean"] for label in labels], height=0.4, color=colors,
                 label="conv features")  # fmt: skip
    axes[0].barh(y + 0.2, [rows[label]["r2_proj_mean"] for label in labels], height=0.4, color=colors, alpha=0.45,
                 hatch="//", label="128-d projection (embedding mode's input)")  # fmt: skip
    axes[0].set_xlabel("state-probe R^2\n(mean of 5 domains, held-out episodes)")
    axes[0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
    for ax, task in zip(axes[1 : 1 + len(tasks)], tasks, strict=True):
        for i, label in enumerate(labels):
            seeds = runs.get(label, {}).get(task, {})
            if seeds:
                ax.barh(i, statistics.fmean(seeds.values()), color=colors[i], alpha=0.8)
                ax.plot(list(seeds.values()), [i] * len(seeds), "k.", ms=6)
            else:
                ax.text(0.02, i, "not run", transform=ax.get_yaxis_transform(), va="center", fontsize=7, color="0.5")
        state = runs.get("state SAC", {}).get(task)
        if state:
            ax.axvline(statistics.fmean(state.values()), color="tab:green", ls="--", lw=1, label="state SAC")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("return at 100k env steps\n(bar: mean, dots: seeds)")
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    fig.suptitle("Pretraining scale: probe R^2 and downstream return per encoder (gray: the same networks untrained)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _labelled(text: str) -> tuple[str, Path]:
    label, sep, path = text.rpartition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, Path(path)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/pretrain_scale", help="report, figure and cached probe rows")
    parser.add_argument("--work", default="outputs/pretrain_scale_work", help="probe data (not committed)")
    parser.add_argument("--encoder", type=_labelled, action="append", required=True, metavar="LABEL=PATH",
                        help="an artifact to compare (repeat); the first is the reference")  # fmt: skip
    parser.add_argument("--made", action="append", default=[], metavar="LABEL=TEXT",
                        help="how an encoder was made (commands), for the report")  # fmt: skip
    parser.add_argument("--random-init", default=None, help="random-init artifact (probe row 'random init')")
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="six_task.py output folders")
    parser.add_argument("--probe-transitions", type=int, default=4000, help="per probe domain (16 episodes)")
    parser.add_argument("--config", nargs="+", default=[STUDY_BASE],
                        help="six_task.py configs whose runs compare the encoders: one learner, each config naming "
                        "an encoder (default: %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    out, work = Path(args.out), Path(args.work)
    encoders = dict(args.encoder)
    if args.random_init:
        encoders[RANDOM_INIT] = Path(args.random_init)
    rows = {label: probe_row(path, out, work, args.probe_transitions) for label, path in encoders.items()}
    for label, row in rows.items():
        print(f"{label:<40} R2 conv {row['r2_conv_mean']:.3f}  proj {row['r2_proj_mean']:.3f}", flush=True)
    made = dict(text.split("=", 1) for text in args.made if "=" in text)
    command = "python benchmarks/pretrain_scale.py " + shlex.join(argv)
    configs = tuple(args.config)
    curve_means = downstream(args.runs, rows, out, configs, metric="auc_return")
    report(rows, downstream(args.runs, rows, out, configs), out, made, command, configs, curve_means)
    print(f"wrote {out / 'report.md'} and {out / 'pretrain_scale.png'}")


if __name__ == "__main__":
    main(sys.argv[1:])
