"""State SAC fed the state as a probe reads it from frozen features: is the information there, precisely enough?

Probes (``state_probes.py``) read cartpole's state from the frozen conv map at R^2 0.97-0.99 on a good policy's
frames, and state SAC with noise of that size still swings up (``state_noise.py``), yet every frozen-encoder agent
ends at 170-280. This script closes the loop: a decoder (``--decoder ridge``:
:func:`~sb3_crptpro.pretraining.probe.fit_ridge_decoder`; ``--decoder mlp``:
:func:`~sb3_crptpro.pretraining.probe.fit_mlp_decoder`) is fitted from a feature set to the state variables on
recorded episodes (the random policy's and a trained state-SAC policy's, at the downstream action repeat, frames
stacked as the env stacks them), then the state learner (``six_task.STATE_LEARNER``, the learner of the state-SAC
row) trains on the pixel env with each observation replaced by the decoded state: render, encode, decode, act. The
decoder uses the true states only to be fitted, before training: it is a diagnostic, not an agent a user could build
without state labels.

If the decoded-state agent swings up, the frozen features hold the state precisely enough along the states a
learner visits, and what fails is learning from the raw features; if it does not, the features' precision (or their
coverage of the states a learner visits) is the limit. Evaluation: deterministic policy, 10 episodes, every
``--eval-every`` env steps, on a separately seeded env.

Resumable per run: one JSON per feature set and seed in ``<out>/runs/``; ``<out>/report.md`` is rebuilt from all.

Usage::

    python benchmarks/decoded_state.py --out benchmarks/results/decoded_state --features "pretrained conv" --seeds 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from six_task import STATE_LEARNER, TASKS
from state_probes import FEATURE_SETS, _features, _state_policy

SOURCES = ("random policy", "state SAC policy")
LABELS = {fs.label: fs for fs in FEATURE_SETS if fs.frames == "64 px fast" and fs.stack == "downstream"}


def _recorded(task: str, args: argparse.Namespace, artifacts: dict[str, Any], fs: Any) -> dict[str, Any]:
    """Features and probe targets of each source's episodes (record every agent step, stacks as the env's)."""
    from sb3_crptpro.envs.state_rollout import render_rollout, rollout_states, stack_frames
    from sb3_crptpro.pretraining.probe import probe_target_names, probe_targets

    repeat = TASKS[task]
    out: dict[str, Any] = {}
    for i, source in enumerate(SOURCES):
        policy = None
        if source == "state SAC policy":
            model = _state_policy(task, args.policy_dir, args.policy_env_steps, 0)
            policy = lambda s, m=model: m.predict(s, deterministic=False)[0]  # noqa: E731
        rollout = rollout_states(task, args.episodes, repeat, repeat, policy=policy, seed=5000 + 100 * i)
        frames = render_rollout(rollout, 64, "fast")
        stacks = stack_frames(frames, rollout.step, gap=1)
        out[source] = {"x": _features(fs, stacks, artifacts), "y": torch.from_numpy(probe_targets(rollout.state, task)),
                       "episode": rollout.episode, "returns": rollout.episode_returns.tolist()}  # fmt: skip
        out["names"] = probe_target_names(rollout.names, task)
    return out


def _split(data: dict[str, Any]) -> dict[str, tuple[torch.Tensor, ...]]:
    """Per source: (train x, train y, test x, test y), the first 3/4 of its episodes against the last quarter."""
    out = {}
    for source in SOURCES:
        d = data[source]
        cut = int(np.ceil(0.75 * (d["episode"].max() + 1)))
        train, test = d["episode"] < cut, d["episode"] >= cut
        out[source] = (d["x"][train], d["y"][train], d["x"][test], d["y"][test])
    return out


def _decoder(
    data: dict[str, Any], kind: str, seed: int, fit_on: Sequence[str] = SOURCES
) -> tuple[Any, dict[str, list[float]]]:
    """Fit on the first 3/4 of the episodes of the sources ``fit_on``, score on the last quarter of each source's.
    ``kind``: ``ridge`` (:func:`~sb3_crptpro.pretraining.probe.fit_ridge_decoder`) or ``mlp``
    (:func:`~sb3_crptpro.pretraining.probe.fit_mlp_decoder`; its early stopping holds out the last 20% of the rows,
    i.e. of the last source's training episodes)."""
    from sb3_crptpro.pretraining.probe import fit_mlp_decoder, fit_ridge_decoder, r2_per_dim

    split = _split(data)
    x, y = torch.cat([split[s][0] for s in fit_on]), torch.cat([split[s][1] for s in fit_on])
    held_out = {s: (split[s][2], split[s][3]) for s in SOURCES}
    decoder = fit_ridge_decoder(x, y) if kind == "ridge" else fit_mlp_decoder(x, y, seed=seed)
    r2 = {s: r2_per_dim(decoder(x).double(), y.double()).tolist() for s, (x, y) in held_out.items()}
    return decoder, r2


def _decoded_env(task: str, seed: int, fs: Any, artifacts: dict[str, Any], decoder: Any, true: list[int]) -> Any:
    """The pixel env whose observation is the decoded state; the dims in ``true`` are the true state's instead
    (from the env's ``info["state"]``), to see which variable's reading limits the learner."""
    import gymnasium as gym

    from sb3_crptpro import env_settings, make_dmc_env
    from sb3_crptpro.pretraining.probe import probe_targets

    env = make_dmc_env(task, seed=seed, **env_settings(artifacts["pretrained"].metadata, action_repeat=TASKS[task]))
    size = int(decoder.mean_y.shape[0])  # both decoders keep the targets' mean
    if fs.encoder == "pixels":
        features = lambda x: torch.from_numpy(x.reshape(1, -1).astype(np.float32) / 255.0)  # noqa: E731
    else:  # 64 px frames: the artifact's own encoder (state_probes._features rebuilds one per call)
        artifact = artifacts[fs.encoder]
        head = artifact.projector if fs.output == "projection" else torch.nn.Identity()
        encoder = artifact.encoder.eval()
        features = lambda x: head(encoder(torch.from_numpy(x[None])))  # noqa: E731

    def observe(pixels: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        with torch.no_grad():
            decoded = decoder(features(pixels))[0].numpy()
        if true:
            decoded[true] = probe_targets(info["state"][None], task)[0, true]
        return decoded

    class Decoded(gym.Wrapper):
        def __init__(self, inner: gym.Env) -> None:
            super().__init__(inner)
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)

        def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
            pixels, info = self.env.reset(**kwargs)
            return observe(pixels, info), info

        def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
            pixels, reward, terminated, truncated, info = self.env.step(action)
            return observe(pixels, info), reward, terminated, truncated, info

    return Decoded(env)


def _name(task: str, label: str, decoder: str, seed: int, episodes: int = 12, true: Sequence[str] = ()) -> str:
    """A run's file stem; the defaults (ridge, 12 recorded episodes per source, nothing true) add nothing to it."""
    extra = ("" if decoder == "ridge" else f"__{decoder}") + ("" if episodes == 12 else f"__ep{episodes}")
    extra += "".join(f"__true_{name.replace(' ', '_')}" for name in true)
    return f"{task}__{label.replace(' ', '_')}{extra}__seed{seed}"


def run(fs_label: str, seed: int, args: argparse.Namespace, artifacts: dict[str, Any]) -> dict[str, Any]:
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor

    fs, task, start = LABELS[fs_label], args.task, time.perf_counter()
    data = _recorded(task, args, artifacts, fs)
    decoder, r2 = _decoder(data, args.decoder, seed)
    scores = "; ".join(f"{s} " + " ".join(f"{v:.3f}" for v in r) for s, r in r2.items())
    print(f"  {fs_label}, {args.decoder} decoder: held-out R^2 {scores}", flush=True)
    repeat = TASKS[task]
    true = [data["names"].index(name) for name in args.true_vars]
    env = Monitor(_decoded_env(task, seed, fs, artifacts, decoder, true))
    eval_env = Monitor(_decoded_env(task, seed + 10_000, fs, artifacts, decoder, true))
    learner = dict(STATE_LEARNER)
    net_arch = learner.pop("net_arch")
    model = SAC("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed, device="cpu", **learner)
    # SB3's EvalCallback keeps its results only with a log path
    log_path = args.out / "work" / _name(task, fs_label, args.decoder, seed, args.episodes, args.true_vars)
    evaluation = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes, eval_freq=args.eval_every // repeat,
                              log_path=str(log_path), deterministic=True, verbose=0)  # fmt: skip
    model.learn(args.env_steps // repeat, callback=evaluation)
    curve = [float(np.mean(r)) for r in evaluation.evaluations_results]
    env.close()
    eval_env.close()
    final = evaluation.evaluations_results[-1]
    return {"task": task, "features": fs_label, "seed": seed, "names": data["names"], "held_out_r2": r2,
            "decoder": args.decoder, "episodes_per_source": args.episodes, "true_vars": list(args.true_vars),
            "probe_returns": {s: data[s]["returns"] for s in SOURCES},
            "eval_env_steps": [int(t) * repeat for t in evaluation.evaluations_timesteps], "curve": curve,
            "final_mean": float(np.mean(final)), "final_std": float(np.std(final)), "env_steps": args.env_steps,
            "minutes": (time.perf_counter() - start) / 60, "torch_threads": torch.get_num_threads()}  # fmt: skip


def locality(fs_label: str, args: argparse.Namespace, artifacts: dict[str, Any], command: str) -> None:
    """``--locality``: the decoder fitted on each source alone and on both, scored on each source's held-out
    episodes (no agent is trained); writes ``<out>/locality_<task>.md``."""
    data = _recorded(args.task, args, artifacts, LABELS[fs_label])
    lines = [f"# One read-out for all states? {args.task}, {fs_label}, {args.decoder} decoder", "", f"Command: "
             f"`{command}`", "", f"Held-out R^2 per state variable ({args.episodes} recorded episodes per source, the "
             "last quarter held out).", "", "| fitted on | scored on | " + " | ".join(data["names"]) + " |",
             "|---|---|" + "---:|" * len(data["names"])]  # fmt: skip
    for fit_on in ([SOURCES[1]], [SOURCES[0]], list(SOURCES)):
        _, r2 = _decoder(data, args.decoder, 0, fit_on)
        for source, values in r2.items():
            lines.append(f"| {' + '.join(fit_on)} | {source} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
            print(f"  fitted on {' + '.join(fit_on)}, scored on {source}: " + " ".join(f"{v:.3f}" for v in values))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"locality_{args.task}.md").write_text("\n".join(lines) + "\n")


def report(rows: list[dict[str, Any]], out: Path, command: str) -> None:
    """``report.md``: one table per task (its state variables as columns), one row per run."""
    commands = sorted({r.get("command", command) for r in rows})
    lines = ["# State SAC on the state decoded from frozen features", "", "Commands:", "",
             *[f"- `{c}`" for c in commands], "",
             "Held-out R^2 of the decoder per state variable (last quarter of each source's episodes), and the "
             "state learner's evaluation return (10 episodes, deterministic) when every observation is the decoded "
             "state."]  # fmt: skip
    for task in sorted({r["task"] for r in rows}):
        names = next(r["names"] for r in rows if r["task"] == task)
        lines += ["", f"## {task}", "",
                  "| features | decoder | recorded episodes per source | seed | "
                  + " | ".join(f"R^2 {n} (random / state SAC)" for n in names)
                  + " | final return | curve (every eval) | minutes |",
                  "|---|---|---:|---:|" + "---:|" * len(names) + "---:|---|---:|"]  # fmt: skip
        for r in (r for r in rows if r["task"] == task):
            cells = [f"{a:.2f} / {b:.2f}" for a, b in zip(*r["held_out_r2"].values(), strict=True)]
            curve = ", ".join(f"{v:.0f}" for v in r["curve"])
            result = f"{r['final_mean']:.1f} +- {r['final_std']:.1f} | {curve} | {r['minutes']:.1f}"
            decoder = r.get("decoder", "ridge") + "".join(f", true {n}" for n in r.get("true_vars", []))
            episodes = r.get("episodes_per_source", 12)
            head = f"| {r['features']} | {decoder} | {episodes} | {r['seed']} | "
            lines.append(head + " | ".join(cells) + f" | {result} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/decoded_state"))
    parser.add_argument("--task", default="cartpole_swingup", choices=list(TASKS))
    parser.add_argument("--features", nargs="+", default=["pretrained conv"], choices=list(LABELS))
    parser.add_argument("--decoder", default="ridge", choices=["ridge", "mlp"], help="(default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--locality", action="store_true",
                        help="fit the decoder on each source alone and on both and score it on each; no agent "
                        "(writes <out>/locality_<task>.md)")  # fmt: skip
    parser.add_argument("--true-vars", nargs="+", default=[], metavar="NAME",
                        help="state variables given true instead of decoded, e.g. 'pole angular velocity'")  # fmt: skip
    parser.add_argument("--env-steps", type=int, default=100_000, help="(default: %(default)s)")
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps (default: %(default)s)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="(default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=12, help="recorded episodes per source (default: 12)")
    parser.add_argument("--policy-dir", type=Path, default=Path("benchmarks/results/state_probes"),
                        help="where the state-SAC policy is cached (state_probes.py's --out)")  # fmt: skip
    parser.add_argument("--policy-env-steps", type=int, default=40_000, help="(default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # per-frame encoding and a small MLP learner
    from sb3_crptpro import load_artifact

    artifacts = {"pretrained": load_artifact("dmc-64px")}
    random_init = args.policy_dir / "random_init.safetensors"
    if any(LABELS[f].encoder == "random init" for f in args.features):
        from sb3_crptpro.pretraining.pretrainer import save_random_init

        if not random_init.is_file():
            save_random_init(artifacts["pretrained"].path, random_init)
        artifacts["random init"] = load_artifact(random_init)
    command = shlex.join(["python", "benchmarks/decoded_state.py", *sys.argv[1:]])
    if args.locality:
        locality(args.features[0], args, artifacts, command)
        print(f"report: {args.out / ('locality_' + args.task + '.md')}")
        return
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for label in args.features:
        for seed in args.seeds:
            path = runs / f"{_name(args.task, label, args.decoder, seed, args.episodes, args.true_vars)}.json"
            if path.is_file():
                continue
            print(f"{args.task} / {label} / {args.decoder} decoder / seed {seed}", flush=True)
            row = run(label, seed, args, artifacts)
            row["command"] = command
            path.write_text(json.dumps(row))
            print(f"  final {row['final_mean']:.1f} +- {row['final_std']:.1f} ({row['minutes']:.1f} min)", flush=True)
    rows = [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]
    report(rows, args.out, command)
    print(f"report: {args.out / 'report.md'}")


if __name__ == "__main__":
    main()
