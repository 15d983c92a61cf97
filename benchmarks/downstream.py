"""Downstream benchmark (issue 13): embedding mode against state-based SAC and the reference pixel mode.

Per task and seed, with the same SAC heads, batch, learning rate and env-step budget:
  (a) ``state``: SB3 SAC on the flat proprioceptive state (``make_dmc_env(observation="state")``), the upper anchor;
  (b) ``embedding``: SB3 SAC ``MlpPolicy`` on :class:`~sb3_crptpro.VecEncodeObservation` of the default-preset
      pretrained encoder (each frame encoded once);
  (c) ``embedding, random init``: the same with a random-init encoder;
  (d) ``reference``: AugmentedSAC, frozen conv trunk + trainable ``pre_fc``, random-shift augmentation, for the
      training wall time of (b) on the same task and seed;
  (e) ``embedding, encode-time shift`` (not run by default): (b) with each training frame randomly shifted (pad 4,
      :func:`~sb3_crptpro.pretraining.augment.random_shift`) before its one encoder pass, so the policy acts on and
      the buffer stores the shifted frame's vector; evaluation frames are not shifted (issue 13's optional
      encode-time augmentation).
No intrinsic reward anywhere (this compares representations). Training wall time excludes evaluations.

Resumable (one JSON per run under ``<out>/runs``; a re-run skips finished runs) and prints each run as it ends.
Encoders come from ``benchmarks/collapse_study.py`` (``default_seed{seed}`` / ``random_init_seed{seed}``).

Usage::

    python benchmarks/downstream.py --out outputs/downstream --encoders outputs/collapse_study/encoders \\
        --tasks reacher_easy:4 cartpole_swingup:8 --seeds 0 1 2 --env-steps 50000
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from sb3_crptpro import (
    AugmentedSAC,
    VecEncodeObservation,
    crptpro_kwargs,
    env_settings,
    load_artifact,
    make_dmc_vec_env,
    random_policy_returns,
)
from sb3_crptpro.pretraining.augment import random_shift

SHIFTED = "embedding, encode-time shift"
CONFIGS = ("state", "embedding", "embedding, random init", "reference", SHIFTED)
DEFAULT_CONFIGS = CONFIGS[:4]
COLORS = {"state": "black", "embedding": "tab:blue", "embedding, random init": "tab:orange", "reference": "tab:green",
          SHIFTED: "tab:purple"}  # fmt: skip


class _ShiftFrames(VecEnvWrapper):
    """Random shift (replicate pad ``pad``, random crop) of each new pixel observation, terminal ones included."""

    def __init__(self, venv: VecEnv, pad: int, seed: int) -> None:
        super().__init__(venv)
        self.pad, self.generator = pad, torch.Generator().manual_seed(seed)

    def _shift(self, obs: np.ndarray) -> np.ndarray:
        return random_shift(torch.from_numpy(obs), self.pad, self.generator).numpy()

    def reset(self) -> np.ndarray:
        return self._shift(self.venv.reset())

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self._shift(info["terminal_observation"][None])[0]
        return self._shift(obs), rewards, dones, infos


class _TimedVecEnv(VecEnvWrapper):
    """Outermost wrapper: seconds spent stepping the env (physics, rendering and, below it, encoding)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> Any:
        start = time.perf_counter()
        out = self.venv.step_wait()
        self.seconds += time.perf_counter() - start
        return out


class _Curve(BaseCallback):
    """Evaluates every ``eval_every`` env steps; keeps training wall time (evaluations excluded); optional stop."""

    def __init__(self, eval_env: VecEnv, action_repeat: int, eval_every: int, episodes: int,
                 wall_limit: float | None) -> None:  # fmt: skip
        super().__init__()
        self.eval_env, self.action_repeat, self.eval_every, self.episodes = (
            eval_env,
            action_repeat,
            eval_every,
            episodes,
        )
        self.wall_limit = wall_limit
        self.points: list[dict[str, float]] = []
        self.eval_seconds = 0.0
        self.next_eval = eval_every

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()
        self.evaluate(self.episodes)  # the untrained policy: every curve starts at 0 env steps

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start - self.eval_seconds

    def evaluate(self, episodes: int) -> float:
        start = time.perf_counter()
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=episodes, deterministic=True)
        self.eval_seconds += time.perf_counter() - start
        env_steps = self.num_timesteps * self.action_repeat
        self.points.append({"env_steps": env_steps, "train_s": self.train_seconds(), "return": float(returns)})
        return float(returns)

    def _on_step(self) -> bool:
        if self.num_timesteps * self.action_repeat >= self.next_eval:
            self.evaluate(self.episodes)
            self.next_eval += self.eval_every
        return self.wall_limit is None or self.train_seconds() < self.wall_limit


def _buffer_bytes_per_transition(buffer: Any) -> float:
    """All numpy arrays the replay buffer holds, divided by its transition capacity."""
    arrays = [v for v in vars(buffer).values() if isinstance(v, np.ndarray)]
    return sum(a.nbytes for a in arrays) / (buffer.buffer_size * buffer.n_envs)


def _envs(config: str, task: str, action_repeat: int, seed: int, encoder: Path) -> tuple[VecEnv, VecEnv, Any]:
    if config == "state":
        kw = {"observation": "state", "action_repeat": action_repeat}
        return make_dmc_vec_env(task, 1, seed=seed, **kw), make_dmc_vec_env(task, 1, seed=seed + 10_000, **kw), None
    artifact = load_artifact(encoder)
    settings = env_settings(artifact.metadata, action_repeat)
    train_env = make_dmc_vec_env(task, 1, seed=seed, **settings)
    eval_env = make_dmc_vec_env(task, 1, seed=seed + 10_000, **settings)
    if config == "reference":
        return train_env, eval_env, None
    if config == SHIFTED:
        train_env = _ShiftFrames(train_env, pad=4, seed=seed)
    train_env = VecEncodeObservation(train_env, artifact)
    return train_env, VecEncodeObservation(eval_env, artifact), train_env.encoding


def run(config: str, task: str, action_repeat: int, seed: int, encoder: Path, args: argparse.Namespace,
        wall_limit: float | None = None) -> dict[str, Any]:  # fmt: skip
    from stable_baselines3 import SAC

    train_env, eval_env, encoding = _envs(config, task, action_repeat, seed, encoder)
    train_env = _TimedVecEnv(train_env)
    hyper = {"batch_size": args.batch_size, "learning_rate": 3e-4, "buffer_size": args.buffer_size, "tau": 0.005,
             "learning_starts": args.learning_starts, "train_freq": 1, "gradient_steps": 1, "seed": seed,
             "verbose": 0, "device": "cpu"}  # fmt: skip
    if config == "reference":
        model = AugmentedSAC("CnnPolicy", train_env, policy_kwargs=crptpro_kwargs(encoder, net_arch=args.net_arch),
                             **hyper)  # fmt: skip
    else:
        model = SAC("MlpPolicy", train_env, policy_kwargs={"net_arch": args.net_arch}, **hyper)
    curve = _Curve(eval_env, action_repeat, args.eval_every, args.eval_episodes, wall_limit)
    agent_steps = args.env_steps // action_repeat
    model.learn(agent_steps if wall_limit is None else 10 * agent_steps, callback=curve)
    train_s = curve.train_seconds()
    final = curve.evaluate(args.final_episodes)
    steps = curve.points[-1]["env_steps"] // action_repeat
    grad_steps = max(steps - args.learning_starts, 0)
    env_s = train_env.seconds
    encode_s = encoding.seconds if encoding is not None else 0.0
    xs = np.array([p["env_steps"] for p in curve.points], dtype=float)
    ys = np.array([p["return"] for p in curve.points])
    row = {
        "config": config, "task": task, "seed": seed, "action_repeat": action_repeat, "encoder": str(encoder),
        "final_return": final, "auc_return": float(np.trapezoid(ys, xs) / max(xs[-1], 1)) if len(xs) > 1 else final,
        "env_steps": steps * action_repeat, "agent_steps": steps, "gradient_steps": grad_steps,
        "train_s": train_s, "eval_s": curve.eval_seconds,
        "agent_steps_per_s": steps / train_s, "env_steps_per_s": steps * action_repeat / train_s,
        "gradient_steps_per_s": grad_steps / max(train_s - env_s, 1e-9) if grad_steps else 0.0,
        "env_step_s": env_s - encode_s, "encode_s": encode_s, "update_s": train_s - env_s,
        "bytes_per_transition": _buffer_bytes_per_transition(model.replay_buffer),
        "curve": curve.points, "net_arch": args.net_arch, "batch_size": args.batch_size,
    }  # fmt: skip
    train_env.close()
    eval_env.close()
    return row


def _fmt(row: dict[str, Any]) -> str:
    return (f"{row['task']:>16} seed {row['seed']} {row['config']:>22}: final {row['final_return']:7.1f}  "
            f"AUC {row['auc_return']:7.1f}  {row['env_steps']:6d} env steps in {row['train_s']:6.0f} s  "
            f"{row['agent_steps_per_s']:6.1f} agent steps/s  (env {row['env_step_s']:.0f} s, encode "
            f"{row['encode_s']:.0f} s, updates {row['update_s']:.0f} s)  "
            f"{row['bytes_per_transition']:,.0f} B/transition")  # fmt: skip


def _stat(rows: list[dict[str, Any]], key: str) -> str:
    values = np.array([r[key] for r in rows], dtype=float)
    return f"{values.mean():.1f} +- {values.std():.1f}" if len(values) else "-"


def report(rows: list[dict[str, Any]], randoms: dict[str, float], out: Path, args: argparse.Namespace) -> None:
    """Write ``report.md`` (tables, targets) and ``learning_curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lines = ["# Downstream benchmark", "", f"Command: `python benchmarks/downstream.py {shlex.join(sys.argv[1:])}`", "",
             f"SAC heads {args.net_arch}, batch {args.batch_size}, lr 3e-4, train_freq 1, learning_starts "
             f"{args.learning_starts} agent steps, no intrinsic reward; {args.env_steps} env steps except `reference`, "
             "which gets the training wall time of `embedding` (same task and seed). Mean +- std over seeds.",
             ""]  # fmt: skip
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.6 * len(tasks)), squeeze=False)
    for t, task in enumerate(tasks):
        lines += [f"## {task} (random policy {randoms.get(task, float('nan')):.1f})", "",
                  "| config | seeds | final return | AUC return | env steps | agent steps/s | gradient steps/s | "
                  "bytes/transition | training s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        by_config = {c: [r for r in rows if r["task"] == task and r["config"] == c] for c in CONFIGS}
        for config, rs in by_config.items():
            if not rs:
                continue
            lines.append(f"| {config} | {len(rs)} | {_stat(rs, 'final_return')} | {_stat(rs, 'auc_return')} | "
                         f"{_stat(rs, 'env_steps')} | {_stat(rs, 'agent_steps_per_s')} | "
                         f"{_stat(rs, 'gradient_steps_per_s')} | {_stat(rs, 'bytes_per_transition')} | "
                         f"{_stat(rs, 'train_s')} |")  # fmt: skip
            for col, x_key in enumerate(("env_steps", "train_s")):
                ax = axes[t][col]
                grid = np.linspace(0, min(max(p[x_key] for p in r["curve"]) for r in rs), 30)
                ys = np.array([np.interp(grid, [p[x_key] for p in r["curve"]], [p["return"] for p in r["curve"]])
                               for r in rs])  # fmt: skip
                label = "embedding, pretrained" if config == "embedding" else config
                ax.plot(grid, ys.mean(0), color=COLORS[config], label=f"{label} ({len(rs)} seeds)")
                ax.fill_between(grid, ys.min(0), ys.max(0), color=COLORS[config], alpha=0.15)
        lines += ["", *_verdicts(by_config), ""]
        for col, xlabel in enumerate(("environment steps", "training wall time (s, evaluations excluded)")):
            ax = axes[t][col]
            if task in randoms:
                ax.axhline(randoms[task], color="grey", ls=":", label="random policy")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("evaluation return (deterministic)")
            ax.set_title(task)
            ax.grid(alpha=0.3)
        axes[t][0].legend(fontsize=8, loc="upper left")
    verdicts = []
    for task in tasks:
        final = {c: np.mean([r["final_return"] for r in rows if r["task"] == task and r["config"] == c] or [np.nan])
                 for c in CONFIGS}  # fmt: skip
        gap = final["embedding"] - final["embedding, random init"]
        verdicts.append(f"{task}: embedding mode with the pretrained encoder ends at "
                        f"{final['embedding'] / final['state']:.0%} of state SAC's final return, "
                        f"{gap:+.0f} vs the random-init encoder")  # fmt: skip
    fig.suptitle("Downstream SAC, mean over seeds (band: min-max)\n" + "\n".join(verdicts), fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=110)
    plt.close(fig)
    lines += ["![learning curves](learning_curves.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


def _verdicts(by_config: dict[str, list[dict[str, Any]]]) -> list[str]:
    def mean(config: str, key: str, seeds: list[int] | None = None) -> float:
        rs = [r for r in by_config.get(config) or [] if seeds is None or r["seed"] in seeds]
        return float(np.mean([r[key] for r in rs])) if rs else float("nan")

    emb, state = mean("embedding", "final_return"), mean("state", "final_return")
    rand, ref = mean("embedding, random init", "final_return"), mean("reference", "final_return")
    speed = {c: mean(c, "agent_steps_per_s") for c in CONFIGS}
    lines = [
        f"- embedding / state final return: {emb / state:.2f} (target >= 0.5); embedding - random init: "
        f"{emb - rand:+.1f} (target > 0)",
        f"- agent steps/s: embedding / state {speed['embedding'] / speed['state']:.2f}x (target >= 0.8x)",
    ]
    shifted = by_config.get(SHIFTED) or []
    seeds = sorted({r["seed"] for r in shifted} & {r["seed"] for r in by_config["embedding"]}) if shifted else []
    if seeds:  # on the seeds both configs ran
        gaps = [mean(SHIFTED, k, seeds) - mean("embedding", k, seeds) for k in ("final_return", "auc_return")]
        lines.append(f"- encode-time shift - embedding (seeds {', '.join(map(str, seeds))}): final return "
                     f"{gaps[0]:+.1f}, AUC {gaps[1]:+.1f}")  # fmt: skip
    if by_config.get("reference"):  # a run without the reference config reports no ratio to it
        lines[1] += f", embedding / reference {speed['embedding'] / speed['reference']:.1f}x (target >= 15x)"
        lines.append(f"- reference mode final return {ref:.1f} after {mean('reference', 'env_steps'):.0f} env steps "
                     "in the same training wall time")  # fmt: skip
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/downstream")
    parser.add_argument(
        "--encoders",
        default="outputs/collapse_study/encoders",
        help="folder with default_seed{s} and random_init_seed{s}.safetensors (collapse_study.py)",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["reacher_easy:4", "cartpole_swingup:8"],
        help="task:action_repeat (first a pretraining domain, then an unseen one)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), choices=CONFIGS)
    parser.add_argument("--env-steps", type=int, default=50_000)
    parser.add_argument("--eval-every", type=int, default=5000, help="env steps")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--final-episodes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--buffer-size", type=int, default=100_000)
    parser.add_argument("--learning-starts", type=int, default=1000, help="agent steps")
    parser.add_argument("--net-arch", nargs="+", type=int, default=[256, 256])
    parser.add_argument("--report-only", action="store_true", help="only rebuild report.md and the figure")
    args = parser.parse_args(argv)  # fmt: skip
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    tasks = [(t.split(":")[0], int(t.split(":")[1]) if ":" in t else 2) for t in args.tasks]
    randoms_path = out / "random_policy.json"
    randoms = json.loads(randoms_path.read_text()) if randoms_path.exists() else {}
    for seed in [] if args.report_only else args.seeds:
        for task, action_repeat in tasks:
            if task not in randoms:
                randoms[task] = random_policy_returns(task, args.final_episodes, seed=10_000, observation="state",
                                                      action_repeat=action_repeat)["mean"]  # fmt: skip
                randoms_path.write_text(json.dumps(randoms))
            for config in args.configs:
                path = out / "runs" / f"{task}_{config.replace(', ', '_').replace(' ', '_')}_seed{seed}.json"
                if path.exists():
                    continue
                name = "random_init" if config == "embedding, random init" else "default"  # SHIFTED: default
                encoder = Path(args.encoders) / f"{name}_seed{seed}.safetensors"
                if config != "state" and not encoder.is_file():
                    raise SystemExit(f"{encoder} not found: run benchmarks/collapse_study.py first (see its docstring)")
                wall = None
                if config == "reference":
                    twin = out / "runs" / f"{task}_embedding_seed{seed}.json"
                    wall = json.loads(twin.read_text())["train_s"] if twin.exists() else None
                row = run(config, task, action_repeat, seed, encoder, args, wall_limit=wall)
                path.write_text(json.dumps(row))
                print(_fmt(row), flush=True)
    rows = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    report(rows, randoms, out, args)
    print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    main(sys.argv[1:])
