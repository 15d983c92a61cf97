"""Collapse study (issue 12): the reference pretraining setting and each remedy, on one fixed small dataset and budget.

For each variant (and seed): pretrain, then measure on held-out probe episodes (another collection seed) of the 3
pretraining domains and 2 unseen ones: the effective rank of the normalised raw target projections and their mean
cosine (collapse), nearest-prototype usage (count, largest share), and state-probe R^2 of the conv features and of
the 128-d projection; plus the margin ``log(M) - L_comp`` and wall time. A random-init encoder is the baseline.
Resumable (each row is cached in ``<out>/rows/``); prints each row as it finishes; writes ``<out>/report.md``,
``results.json`` and ``collapse_study.png``.

Usage: ``python benchmarks/collapse_study.py [--out outputs/collapse_study] [--variants paper default ...]
[--seeds 0 1 2] [--updates 600]`` (``--help`` lists the variants and sizes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sb3_crptpro import load_artifact
from sb3_crptpro.common.networks import Encoder, Projector, Prototypes
from sb3_crptpro.data.collection import collect
from sb3_crptpro.data.domain import DomainDataset
from sb3_crptpro.data.sampler import CrossDomainDataset
from sb3_crptpro.pretraining.diagnostics import collapse_diagnostics, prototype_cosine_stats
from sb3_crptpro.pretraining.pretrainer import PRETRAIN_PRESETS, PretrainConfig, Pretrainer
from sb3_crptpro.pretraining.probe import encode_frames, probe_domain

SEEN = ["cheetah_run", "walker_run", "reacher_easy"]
UNSEEN = ["cartpole_swingup", "finger_spin"]
#: each variant is a preset plus overrides; "random init" is the untrained baseline
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "paper": ("paper", {}),
    "centring": ("paper", {"centering": "projections"}),
    "queue": ("paper", {"queue_length": 1536}),
    "freeze": ("paper", {"freeze_prototypes": 300}),
    "sinkhorn T 0.05": ("paper", {"sinkhorn_temperature": 0.05}),
    "64 protos": ("paper", {"num_protos": 64}),
    "lr 1e-3": ("paper", {"lr": 1e-3}),
    "centring+queue": ("paper", {"centering": "projections", "queue_length": 1536}),
    "centring+freeze": ("paper", {"centering": "projections", "freeze_prototypes": 300}),
    "centring+T 0.05": ("paper", {"centering": "projections", "sinkhorn_temperature": 0.05}),
    "default": ("default", {}),
    "default alpha 0": ("default", {"alpha": 0.0}),
    "default alpha 0.05": ("default", {"alpha": 0.05}),
    "default alpha 0.5": ("default", {"alpha": 0.5}),
    "default alpha 5": ("default", {"alpha": 5.0}),
    "default alpha 50": ("default", {"alpha": 50.0}),
    "random init": ("paper", {}),
}


def _data(out: Path, args: argparse.Namespace) -> tuple[Path, dict[str, Path]]:
    env = {"image_size": args.image_size, "action_repeat": args.action_repeat, "render": "fast"}
    collect(SEEN, out / "data", transitions_per_domain=args.transitions, seed=0, progress=False, **env)
    dirs = collect([*SEEN, *UNSEEN], out / "probe_data", transitions_per_domain=args.probe_transitions, seed=1000,
                   progress=False, **env)  # fmt: skip
    return out / "data", dict(zip([*SEEN, *UNSEEN], dirs, strict=True))


def _encoder(name: str, seed: int, out: Path, data: Path, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    path = out / "encoders" / f"{name.replace(' ', '_')}_seed{seed}.safetensors"
    if path.is_file():  # trained by an earlier invocation: its stats (wall time, diagnostics) are in the artifact
        return path, load_artifact(path).metadata["stats"]
    preset, overrides = VARIANTS[name]
    config = PretrainConfig.from_preset(preset, updates=args.updates, batch_size=args.batch_size, seed=seed,
                                        progress=False, log_every=max(args.updates // 10, 1),
                                        checkpoint_every=max(args.updates // 4, 1), **overrides)  # fmt: skip
    trainer = Pretrainer(config, CrossDomainDataset(data), out / "pretrain" / path.stem)
    if name == "random init":
        torch.manual_seed(seed + 12345)
        encoder = Encoder(trainer.dataset.obs_shape)
        trainer.online.encoder, trainer.online.projector = encoder, Projector(encoder.repr_dim, config.proj_dim)
        trainer.online.prototypes = Prototypes(config.proj_dim, config.num_protos)
        stats = {"updates": 0, "wall_time_s": 0.0, "diagnostics": {}}
    else:
        stats = trainer.fit(resume=True)
    trainer.save(path, stats)
    return path, stats


def _row(name: str, seed: int, out: Path, data: Path, probe_dirs: dict[str, Path], args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    path, stats = _encoder(name, seed, out, data, args)
    row: dict[str, Any] = {"variant": name, "seed": seed, "pretrain_s": stats.get("wall_time_s", 0.0),
                           "margin_train": stats.get("diagnostics", {}).get("margin", float("nan"))}  # fmt: skip
    row.update(probe_artifact(path, probe_dirs, stats))
    row["seconds"] = time.perf_counter() - start
    return row


def probe_artifact(path: Path, probe_dirs: dict[str, Path], stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collapse diagnostics and state-probe R^2 (conv features ``r2_conv/<task>``, projections ``r2_proj/<task>``)
    of one artifact on the probe domains ``{task: dataset folder}`` (512 probe frames per domain for the
    diagnostics; ``stats``: the artifact's training stats, default its own, for the projection centre)."""
    artifact = load_artifact(path)
    stats = artifact.metadata.get("stats", {}) if stats is None else stats
    centre = torch.tensor(stats.get("projection_center", [0.0] * artifact.metadata["proj_dim"]))
    row: dict[str, Any] = {}
    z_read, labels = [], []
    for task, directory in probe_dirs.items():
        dataset = DomainDataset(directory, frame_stack=artifact.frame_stack)
        rows = np.random.default_rng(0).choice(len(dataset), min(len(dataset), 512), replace=False)
        obs, _, _ = dataset.transitions(np.sort(rows))
        z_read.append(encode_frames(artifact.encoder, obs, projector=artifact.projector))
        labels += [task] * len(obs)
        row[f"r2_conv/{task}"] = probe_domain(artifact.encoder, dataset)
        row[f"r2_proj/{task}"] = probe_domain(artifact.encoder, dataset, projector=artifact.projector)
    z = torch.cat(z_read)
    diag = collapse_diagnostics(z + centre, z, artifact.prototypes.weight, labels)
    row.update({k: v for k, v in diag.items() if not k.startswith("usage_entropy")})
    row.update({f"proto_{k}": v for k, v in prototype_cosine_stats(artifact.prototypes.weight).items()})
    return row


def _fmt(row: dict[str, Any]) -> str:
    tasks = [*SEEN, *UNSEEN]
    r2c = " ".join(f"{row[f'r2_conv/{t}']:.3f}" for t in tasks)
    r2p = " ".join(f"{row[f'r2_proj/{t}']:.3f}" for t in tasks)
    used = " ".join(f"{row[f'n_used/{t}']:.0f}" for t in tasks)
    return (f"{row['variant']:<20} s{row['seed']}  margin {row['margin_train']:+.3f}"
            f"  rank_min {row['eff_rank_min']:5.1f}  cos {row['mean_cos']:.3f}  used {used}"
            f"  max_share {row['max_share']:.2f}  R2 conv [{r2c}]"
            f"  R2 proj [{r2p}]  proto cos {row.get('proto_cos_mean', math.nan):.4f}/"
            f"{row.get('proto_cos_max', math.nan):.3f}  {row['seconds']:.0f} s")  # fmt: skip


def _report(rows: list[dict[str, Any]], out: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [*SEEN, *UNSEEN]
    names = list(dict.fromkeys(r["variant"] for r in rows))

    def stat(name: str, key: str) -> tuple[float, float, int]:
        values = np.array([r.get(key, math.nan) for r in rows if r["variant"] == name], dtype=float)
        return float(values.mean()), float(values.std()), len(values)

    def mean_r2(row: dict[str, Any], kind: str) -> float:
        return float(np.mean([row[f"{kind}/{t}"] for t in tasks]))

    for r in rows:
        r["r2_conv_mean"], r["r2_proj_mean"] = mean_r2(r, "r2_conv"), mean_r2(r, "r2_proj")
    head = ["variant", "seeds", "margin below log M", "eff. rank (min over domains)", "mean cos", "protos used (all)",
            "protos used (min over domains)", "max share", *[f"R2 conv {t}" for t in tasks], "R2 conv mean",
            "R2 proj mean", "max prototype cosine"]  # fmt: skip
    lines = [
        "# Collapse study (issue 12)", "",
        f"3 x {args.transitions} random transitions ({', '.join(SEEN)}; {args.image_size} px, action repeat "
        f"{args.action_repeat}, fast preset); {args.updates} updates at batch {args.batch_size}. Probe: held-out "
        f"episodes of another collection seed ({args.probe_transitions} transitions per domain), unseen domains "
        f"{', '.join(UNSEEN)}. Mean +- std over seeds. Preset 'default' = {PRETRAIN_PRESETS['default']}.", "",
        "| " + " | ".join(head) + " |", "| --- " * len(head) + "|",
    ]  # fmt: skip
    keys = ["margin_train", "eff_rank_min", "mean_cos", "n_used", "n_used_min", "max_share",
            *[f"r2_conv/{t}" for t in tasks], "r2_conv_mean", "r2_proj_mean", "proto_cos_max"]  # fmt: skip
    for name in names:
        cells = []
        for key in keys:
            mean, std, n = stat(name, key)
            cells.append("-" if math.isnan(mean) else f"{mean:.3f}" + (f" +- {std:.3f}" if n > 1 else ""))
        lines.append(f"| {name} | {stat(name, keys[0])[2]} | " + " | ".join(cells) + " |")
    lines += ["", "Against the random-init encoder of the same seed (issue 12 targets: mean R^2 gain >= 0.05 over "
              "the 5 domains, above random init on >= 4 of 5 including an unseen one, in every seed):", "",
              "| variant | seed | conv: mean gain | conv: domains above (unseen) | proj: mean gain | "
              "proj: domains above (unseen) |", "| --- | --- | ---: | --- | ---: | --- |"]  # fmt: skip
    baseline = {r["seed"]: r for r in rows if r["variant"] == "random init"}
    for r in rows:
        base = baseline.get(r["seed"])
        if base is None or r["variant"] == "random init":
            continue
        cells = []
        for kind in ("r2_conv", "r2_proj"):
            gains = {t: r[f"{kind}/{t}"] - base[f"{kind}/{t}"] for t in tasks}
            above = [t for t, g in gains.items() if g > 0]
            unseen = sum(t in UNSEEN for t in above)
            cells += [f"{np.mean(list(gains.values())):+.3f}", f"{len(above)} of 5 ({unseen} unseen)"]
        lines.append(f"| {r['variant']} | {r['seed']} | " + " | ".join(cells) + " |")
    lines += ["", "Per row (every seed):", "", "```", *(_fmt(r) for r in rows), "```", ""]
    (out / "report.md").write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps(rows, indent=1))

    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(names) + 1.8), sharey=True)
    y = np.arange(len(names))
    labels = [f"{n} ({stat(n, 'eff_rank_min')[2]} seed{'s' if stat(n, 'eff_rank_min')[2] > 1 else ''})" for n in names]
    panels = (
        (axes[0], "eff_rank_min", "effective rank of normalised projections\n(min over 5 domains; collapse < 5)"),
        (axes[1], "r2_conv_mean", "state-probe R^2 of conv features\n(mean over 5 domains, held-out episodes)"),
    )
    for ax, key, label in panels:
        means = [stat(n, key)[0] for n in names]
        stds = [stat(n, key)[1] for n in names]
        colors = ["tab:gray" if n == "random init" else "tab:red" if n == "paper" else "tab:blue" for n in names]
        ax.barh(y, means, xerr=stds, color=colors)
        ax.set_xlabel(label)
        if "random init" in names:
            ax.axvline(stat("random init", key)[0], color="tab:gray", ls="--", lw=1, label="random init (mean)")
    axes[0].axvline(20, color="tab:green", ls=":", lw=1, label="no-collapse target >= 20")
    for ax in axes:
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    trained = [n for n in names if n != "random init"]
    escaped = [n for n in trained if stat(n, "eff_rank_min")[0] >= 20]
    title = f"{len(escaped)} of {len(trained)} settings keep the rank >= 20 (red: the reference setting)"
    if {"default", "random init"} <= set(names):
        d, r = stat("default", "r2_conv_mean"), stat("random init", "r2_conv_mean")
        title += (f"; default preset probe R^2 {d[0]:.3f} vs random init {r[0]:.3f} ({d[0] - r[0]:+.3f}, mean of "
                  f"{d[2]} seeds)")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "collapse_study.png", dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/collapse_study")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT",
                        help=f"any of: {', '.join(VARIANTS)} (default: all)")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--transitions", type=int, default=1500, help="per pretraining domain")
    parser.add_argument("--probe-transitions", type=int, default=4000, help="per probe domain (16 episodes)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--action-repeat", type=int, default=4)
    report_help = "after running, report every cached row of this --updates (all variants and seeds)"
    parser.add_argument("--report-all", action="store_true", help=report_help)
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    data, probe_dirs = _data(out, args)
    rows = []
    for seed in args.seeds:
        for name in args.variants:
            cache = out / "rows" / f"{name.replace(' ', '_')}_seed{seed}_{args.updates}.json"
            if cache.is_file():
                row = json.loads(cache.read_text())
            else:
                row = _row(name, seed, out, data, probe_dirs, args)
                cache.write_text(json.dumps(row, indent=1))
            print(_fmt(row), flush=True)
            rows.append(row)
    if args.report_all:
        cached = [json.loads(p.read_text()) for p in sorted((out / "rows").glob(f"*_{args.updates}.json"))]
        order = {name: i for i, name in enumerate(VARIANTS)}
        rows = sorted(cached, key=lambda r: (order.get(r["variant"], len(order)), r["seed"]))
    _report(rows, out, args)
    print(f"report: {out / 'report.md'}; figure: {out / 'collapse_study.png'}; log(M=512) = {math.log(512):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
