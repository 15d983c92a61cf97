"""Per-variable state probes: which state variable can be read from an encoder's features, on which frames?

For each task, two rollouts (``SOURCES``): the uniform-random policy, and a state-SAC policy trained here (the
states a good policy visits: an upright pole, a running cheetah), both at the task's downstream action repeat
(``six_task.TASKS``) and recorded every ``gcd(downstream, pretraining)`` env steps. The same recorded physics
states are rendered at each frame setting (``FRAMES``), stacked three at a time at the downstream action repeat
or at the pretraining one, and encoded as each feature set says (``FEATURE_SETS``: the shipped encoder and its
random init, projection or conv map, and raw pixels as the reference of what the frames hold). Probes (held-out
episodes, the last quarter): ridge (:func:`~sb3_crptpro.pretraining.probe.linear_probe`) and a small MLP on the
top 512 principal components (:func:`~sb3_crptpro.pretraining.probe.mlp_probe`); R^2 per state variable.

Resumable: one JSON per task and source in ``<out>/runs/``; ``<out>/report.md`` is rebuilt from all of them.

Usage::

    python benchmarks/state_probes.py --out benchmarks/results/state_probes --tasks cartpole_swingup
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from six_task import STATE_LEARNER, TASKS

#: the shipped encoder's pretraining data were collected at action repeat 4 (its artifact's provenance.commands)
PRETRAIN_ACTION_REPEAT = 4
SOURCES = ("random policy", "state SAC policy")
#: frame setting -> (image size, render preset)
FRAMES: dict[str, tuple[int, str]] = {"64 px fast": (64, "fast"), "64 px paper": (64, "paper"),
                                      "84 px paper": (84, "paper")}  # fmt: skip


@dataclass(frozen=True)
class FeatureSet:
    """What a probe reads: ``encoder`` ``pretrained`` / ``random init`` / ``pixels`` (frames / 255, no encoder);
    ``output`` ``projection`` (128-d, what embedding mode feeds SAC) or ``conv`` (the flattened conv map, what
    reference mode's heads read); ``frames`` a key of ``FRAMES``; ``stack`` ``downstream`` or ``pretraining``
    (the action repeat that spaces the stacked frames)."""

    label: str
    encoder: str
    output: str
    frames: str = "64 px fast"
    stack: str = "downstream"


FEATURE_SETS: tuple[FeatureSet, ...] = (
    FeatureSet("pretrained projection", "pretrained", "projection"),
    FeatureSet("pretrained conv", "pretrained", "conv"),
    FeatureSet("random-init projection", "random init", "projection"),
    FeatureSet("random-init conv", "random init", "conv"),
    FeatureSet("pretrained conv, 64 px paper", "pretrained", "conv", frames="64 px paper"),
    FeatureSet("pretrained conv, 84 px paper", "pretrained", "conv", frames="84 px paper"),
    FeatureSet("random-init conv, 84 px paper", "random init", "conv", frames="84 px paper"),
    FeatureSet("pretrained projection, pretraining gap", "pretrained", "projection", stack="pretraining"),
    FeatureSet("pretrained conv, pretraining gap", "pretrained", "conv", stack="pretraining"),
    FeatureSet("raw pixels", "pixels", "pixels"),
)


def _state_policy(task: str, out: Path, env_steps: int, seed: int) -> Any:
    """SB3 SAC on states (``six_task.STATE_LEARNER``), trained for ``env_steps`` once and cached as a zip."""
    from stable_baselines3 import SAC

    from sb3_crptpro import make_dmc_vec_env

    path = out / "policies" / f"{task}_{env_steps}.zip"
    if path.is_file():
        return SAC.load(path, device="cpu")
    learner = dict(STATE_LEARNER)
    net_arch = learner.pop("net_arch")
    env = make_dmc_vec_env(task, 1, observation="state", action_repeat=TASKS[task], seed=seed)
    model = SAC("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed, device="cpu", **learner)
    start = time.perf_counter()
    model.learn(env_steps // TASKS[task])
    print(f"  state SAC on {task}: {env_steps:,} env steps in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def _rows(episode: np.ndarray, test_fraction: float, max_train: int, max_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Train rows (first episodes) and test rows (the last ``test_fraction``), evenly thinned to the caps."""
    n_episodes = int(episode.max()) + 1
    n_test = max(1, round(test_fraction * n_episodes))
    test = np.flatnonzero(episode >= n_episodes - n_test)
    train = np.flatnonzero(episode < n_episodes - n_test)

    def thin(idx: np.ndarray, cap: int) -> np.ndarray:
        return idx if len(idx) <= cap else idx[np.linspace(0, len(idx) - 1, cap).round().astype(int)]

    return thin(train, max_train), thin(test, max_test)


def _features(fs: FeatureSet, stacks: np.ndarray, artifacts: dict[str, Any]) -> torch.Tensor:
    from sb3_crptpro.pretraining.probe import encode_frames

    if fs.encoder == "pixels":
        return torch.from_numpy(stacks.reshape(len(stacks), -1).astype(np.float32) / 255.0)
    artifact = artifacts[fs.encoder]
    if fs.output == "conv":
        from sb3_crptpro.common.networks import Encoder

        meta = artifact.metadata
        encoder = Encoder(stacks.shape[1:], n_filters=int(meta["n_filters"]), n_layers=int(meta["n_layers"]))
        encoder.load_state_dict(artifact.encoder.state_dict())  # convs work at any frame size
        return encode_frames(encoder, stacks)
    return encode_frames(artifact.encoder, stacks, projector=artifact.projector)


def probe_source(task: str, source: str, args: argparse.Namespace, artifacts: dict[str, Any]) -> dict[str, Any]:
    """All feature sets' per-variable R^2 on one task's rollout from one source."""
    from sb3_crptpro.envs.state_rollout import render_rollout, rollout_states, stack_frames
    from sb3_crptpro.pretraining.probe import linear_probe, mlp_probe, probe_target_names, probe_targets

    start = time.perf_counter()
    down = TASKS[task]
    record_every = math.gcd(down, PRETRAIN_ACTION_REPEAT)
    policy = None
    if source == "state SAC policy":
        model = _state_policy(task, Path(args.out), args.policy_env_steps, args.seed)
        policy = lambda s: model.predict(s, deterministic=False)[0]  # noqa: E731
        # its sampled actions draw on torch's global generator: seeded here, the rollout does not depend on what ran
        # before it in the process (other tasks, sources or feature sets)
        torch.manual_seed(args.seed)
    short = args.episodes is not None  # many short episodes: per-episode variables (reacher's target) probed too
    episodes = args.episodes if short else max(4, math.ceil(args.records / (1000 // record_every)))
    rollout = rollout_states(task, episodes, down, record_every, policy=policy, seed=args.seed + 1000,
                             max_records=math.ceil(args.records / episodes) if short else None)  # fmt: skip
    targets = probe_targets(rollout.state, task, keep_episode_dims=short)
    names = probe_target_names(rollout.names, task, keep_episode_dims=short)
    train, test = _rows(rollout.episode, 0.25, args.max_train, args.max_test)
    chosen = [fs for fs in FEATURE_SETS if fs.label in args.features]
    frames = {name: render_rollout(rollout, *FRAMES[name]) for name in {fs.frames for fs in chosen}}
    gaps = {"downstream": down // record_every, "pretraining": PRETRAIN_ACTION_REPEAT // record_every}
    results: dict[str, Any] = {}
    for fs in chosen:
        if fs.stack == "pretraining" and gaps["pretraining"] == gaps["downstream"]:
            continue  # the same stacks as the downstream row
        if fs.output == "projection" and FRAMES[fs.frames][0] != artifacts["pretrained"].metadata["image_size"]:
            continue
        stacks = stack_frames(frames[fs.frames], rollout.step, gaps[fs.stack])
        feats = _features(fs, stacks, artifacts)
        y = torch.from_numpy(targets)
        split = (feats[train], y[train], feats[test], y[test])
        results[fs.label] = {"linear": linear_probe(*split).tolist(), "mlp": mlp_probe(*split, seed=args.seed).tolist(),
                             "dims": int(feats.shape[1])}  # fmt: skip
        print(f"  {task} / {source} / {fs.label}: mean R^2 linear {np.nanmean(results[fs.label]['linear']):.3f}, "
              f"MLP {np.nanmean(results[fs.label]['mlp']):.3f}", flush=True)  # fmt: skip
    return {"task": task, "source": source, "names": names, "records": len(rollout), "episodes": episodes,
            "train_rows": len(train), "test_rows": len(test), "record_every": record_every,
            "downstream_action_repeat": down, "pretraining_action_repeat": PRETRAIN_ACTION_REPEAT,
            "episode_returns": rollout.episode_returns.tolist(), "results": results,
            "feature_sets": [asdict(fs) for fs in chosen], "encoder": args.encoder,
            "seconds": time.perf_counter() - start,
            "policy_env_steps": args.policy_env_steps if policy else 0,
            "torch_threads": torch.get_num_threads()}  # fmt: skip


def _cell(row: dict[str, Any], label: str, i: int) -> str:
    r = row["results"].get(label)
    return "" if r is None else f"{r['linear'][i]:.2f} / {r['mlp'][i]:.2f}"


def report(rows: list[dict[str, Any]], out: Path, command: str, encoder: str) -> None:
    """``report.md``: a summary table (mean R^2 over variables) and a table per task and source."""
    labels = [fs.label for fs in FEATURE_SETS if any(fs.label in row["results"] for row in rows)]
    lines = ["# Per-variable state probes", "", f"Command: `{command}`", "",
             "Held-out R^2 (last quarter of the episodes) of a ridge probe / a small MLP probe, per state variable. "
             f"Feature sets: the encoder `{encoder}` (\"pretrained\") and its random init, as the 128-d projection "
             "(embedding mode's input) or the flattened conv map (reference mode's); frames at 64 px `fast` (today's "
             "downstream), 64 px `paper`, 84 px `paper`; stacks spaced by the downstream or the pretraining action "
             "repeat; raw pixels (frames / 255) as what the frames themselves hold.", "",
             "## Mean R^2 over the state variables (MLP probe)", "",
             "| task | source | " + " | ".join(labels) + " |", "|---|---|" + "---:|" * len(labels)]  # fmt: skip
    for row in rows:
        cells = [f"{np.nanmean(row['results'][lb]['mlp']):.2f}" if lb in row["results"] else "" for lb in labels]
        lines.append(f"| {row['task']} | {row['source']} | " + " | ".join(cells) + " |")
    for row in rows:
        present = [lb for lb in labels if lb in row["results"]]
        returns = np.mean(row["episode_returns"])
        lines += ["", f"## {row['task']}, {row['source']} (mean episode return {returns:.1f}; {row['records']:,} "
                      f"records from {row['episodes']} episodes, {row['train_rows']:,} train / "
                      f"{row['test_rows']:,} test rows)", "",
                  "| variable | " + " | ".join(present) + " |", "|---|" + "---:|" * len(present)]  # fmt: skip
        for i, name in enumerate(row["names"]):
            lines.append(f"| {name} | " + " | ".join(_cell(row, lb, i) for lb in present) + " |")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def figure(rows: list[dict[str, Any]], path: Path, encoder: str = "dmc-64px") -> None:
    """One heat map per task and source (the sources some row has): feature sets x state variables, the better of
    the two probes' held-out R^2 (clipped to [0, 1]; the number printed in each cell is unclipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [fs.label for fs in FEATURE_SETS if any(fs.label in row["results"] for row in rows)]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    sources = [src for src in SOURCES if any(r["source"] == src for r in rows)]
    most = max(len(r["names"]) for r in rows)
    fig, axes = plt.subplots(len(tasks), len(sources), figsize=(len(sources) * (0.5 * most + 3) + 3,
                             4.8 * len(tasks)), squeeze=False, gridspec_kw={"hspace": 0.65})  # fmt: skip
    placed = {(r["task"], r["source"]): r for r in rows}
    for ax, (task, source) in zip(axes.flat, [(t, src) for t in tasks for src in sources], strict=True):
        row = placed.get((task, source))
        if row is None:
            ax.set_axis_off()
            continue
        present = [lb for lb in labels if lb in row["results"]]
        best = np.array([np.fmax(row["results"][lb]["linear"], row["results"][lb]["mlp"]) for lb in present])
        image = ax.imshow(np.clip(best, 0, 1), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(best):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k")
        ax.set_xticks(range(len(row["names"])), row["names"], rotation=40, ha="right", fontsize=7)
        left_done = source != sources[0] and (task, sources[0]) in placed  # the panel to its left names the rows
        ax.set_yticks(range(len(present)), [""] * len(present) if left_done else present, fontsize=7)
        returns = np.mean(row["episode_returns"])
        ax.set_title(
            f"{row['task']}: frames of the {row['source']}\n(mean return {returns:.0f}, {row['episodes']} episodes)",
            fontsize=9,
        )
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="held-out R^2 (better of ridge and MLP probe)")
    fig.suptitle(f'Which state variables can be read from the features of {encoder} ("pretrained")? '
                 "(1 = fully, 0 = not at all)", fontsize=11, y=1.0 + 0.1 / len(tasks))  # fmt: skip
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/state_probes")
    parser.add_argument("--encoder", default="dmc-64px", help="artifact path or shipped name (default: dmc-64px)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--records", type=int, default=3000, help="records per rollout (default: 3000)")
    parser.add_argument("--max-train", type=int, default=2400, help="(default: 2400)")
    parser.add_argument("--max-test", type=int, default=900, help="(default: 900)")
    parser.add_argument("--policy-env-steps", type=int, default=40_000,
                        help="env steps of the state-SAC policy's training (default: 40000)")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=None,
                        help="split the records over this many episodes, each cut short, and probe the variables "
                        "drawn anew each episode too (reacher's to_target); default: whole episodes, those left "
                        "out")  # fmt: skip
    parser.add_argument("--features", nargs="+", default=[fs.label for fs in FEATURE_SETS],
                        choices=[fs.label for fs in FEATURE_SETS], metavar="LABEL",
                        help="feature sets to probe, by label (default: all of them)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from sb3_crptpro import load_artifact
    from sb3_crptpro.pretraining.pretrainer import save_random_init

    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    random_init = out / "random_init.safetensors"
    if not random_init.is_file():
        save_random_init(args.encoder, random_init)
    artifacts = {"pretrained": load_artifact(args.encoder), "random init": load_artifact(random_init)}
    command = shlex.join(["python", "benchmarks/state_probes.py", *argv])
    for task in args.tasks:
        for source in args.sources:
            short = "" if args.episodes is None else f"__{args.episodes}_episodes"
            path = out / "runs" / f"{task}__{source.replace(' ', '_')}{short}.json"
            if not path.is_file():
                path.write_text(json.dumps(probe_source(task, source, args, artifacts) | {"command": command}))
    rows = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    order = {t: i for i, t in enumerate(TASKS)}
    rows.sort(key=lambda r: (order[r["task"]], SOURCES.index(r["source"])))
    report(rows, out, command, args.encoder)
    figure(rows, out / "state_probes.png", args.encoder)
    print(f"report: {out / 'report.md'}, figure: {out / 'state_probes.png'}")


if __name__ == "__main__":
    main(sys.argv[1:])
