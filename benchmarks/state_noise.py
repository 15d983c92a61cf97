"""How precise must the state be? State SAC on states read with a probe's error.

A probe with held-out R^2 r leaves a residual of about ``sqrt(1 - r)`` of each variable's spread (R^2 0.95: 22%).
This benchmark adds independent Gaussian noise of ``level x`` each state variable's standard deviation (measured on
the states a trained state-SAC policy visits, the rollout of ``state_probes.py``) to every observation the agent
sees, in training and evaluation, and trains ``six_task.py``'s state SAC (its learner and evaluation protocol: 10
deterministic episodes every 10k env steps). If SAC at the noise of R^2 0.95 still reaches state SAC's score, a
frozen encoder whose features carry the state at that R^2 is not too imprecise for the task.

Resumable: one JSON per level and seed in ``<out>/runs/``; ``<out>/report.md`` is rebuilt from them.

Usage::

    python benchmarks/state_noise.py --out benchmarks/results/state_noise --task cartpole_swingup \\
        --levels 0 0.22 0.45 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from six_task import STATE_LEARNER, TASKS, EvalCurve
from state_probes import _state_policy


class StateNoise(gym.ObservationWrapper):
    """Add ``N(0, scale^2)`` per dim to every observation (its own seeded generator).

    :param scale: ``float32 [S]`` standard deviation per state dim
    """

    def __init__(self, env: gym.Env, scale: np.ndarray, seed: int) -> None:
        super().__init__(env)
        self.scale = np.asarray(scale, np.float32)
        self.rng = np.random.default_rng(seed)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        noise = self.rng.normal(size=observation.shape).astype(np.float32) * self.scale
        return (observation + noise).astype(np.float32)


def state_spread(task: str, out: Path, policy_env_steps: int, seed: int) -> np.ndarray:
    """Standard deviation per state dim over 12 episodes of the trained state-SAC policy (``state_probes.py``'s)."""
    from sb3_crptpro.envs.state_rollout import rollout_states

    model = _state_policy(task, out, policy_env_steps, seed)
    rollout = rollout_states(task, 12, TASKS[task], policy=lambda s: model.predict(s, deterministic=False)[0],
                             seed=seed + 1000)  # fmt: skip
    return rollout.state.std(0)


def run(task: str, level: float, seed: int, spread: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sb3_crptpro import make_dmc_env

    repeat = TASKS[task]

    def env_fn(env_seed: int) -> Any:
        return lambda: StateNoise(make_dmc_env(task, observation="state", action_repeat=repeat, seed=env_seed),
                                  level * spread, env_seed)  # fmt: skip

    train_env, eval_env = DummyVecEnv([env_fn(seed)]), DummyVecEnv([env_fn(seed + 10_000)])
    learner = dict(STATE_LEARNER)
    net_arch = learner.pop("net_arch")
    start = time.perf_counter()
    try:
        model = SAC("MlpPolicy", train_env, policy_kwargs={"net_arch": net_arch}, seed=seed, device="cpu", **learner)
        curve = EvalCurve(eval_env, repeat, args.eval_every, args.eval_episodes)
        model.learn(args.env_steps // repeat, callback=curve)
    finally:
        train_env.close()
        eval_env.close()
    last = curve.points[-1]
    return {"task": task, "level": level, "seed": seed, "env_steps": args.env_steps, "final_return": last["return"],
            "final_std": last["std"], "curve": curve.points, "spread": spread.tolist(),
            "total_s": time.perf_counter() - start}  # fmt: skip


def report(rows: list[dict[str, Any]], out: Path, command: str) -> None:
    lines = ["# State SAC on noisy states", "", f"Command: `{command}`", "",
             "Noise: independent Gaussian, `level x` each variable's standard deviation on the trained policy's "
             "states; a probe of held-out R^2 r leaves about `sqrt(1 - r)` (R^2 0.95: 0.22, 0.80: 0.45).", "",
             "| task | noise level | R^2 it matches | seed | final return (env steps) | mean of the curve |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["task"], r["level"], r["seed"])):
        auc = np.mean([p["return"] for p in r["curve"]])
        lines.append(f"| {r['task']} | {r['level']:.2f} | {1 - r['level'] ** 2:.2f} | {r['seed']} | "
                     f"{r['final_return']:.1f} +- {r['final_std']:.1f} ({r['env_steps']:,}) | {auc:.1f} |")  # fmt: skip
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/state_noise")
    parser.add_argument("--task", default="cartpole_swingup", choices=list(TASKS))
    parser.add_argument("--levels", nargs="+", type=float, default=[0.0, 0.22, 0.45])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--env-steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps (default: 10000)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--policy-env-steps", type=int, default=40_000,
                        help="env steps of the policy whose states set the spread (default: 40000)")  # fmt: skip
    parser.add_argument(
        "--policies",
        default="benchmarks/results/state_probes",
        help="folder of state_probes.py's cached policies (default: benchmarks/results/state_probes)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/state_noise.py", *argv])
    spread = state_spread(args.task, Path(args.policies), args.policy_env_steps, 0)
    for level in args.levels:
        for seed in args.seeds:
            path = out / "runs" / f"{args.task}__{level:.2f}__{seed}.json"
            if not path.is_file():
                row = run(args.task, level, seed, spread, args) | {"command": command}
                path.write_text(json.dumps(row))
                print(f"{args.task} noise {level:.2f} seed {seed}: {row['final_return']:.1f} "
                      f"({row['total_s'] / 60:.1f} min)", flush=True)  # fmt: skip
    report([json.loads(p.read_text()) for p in (out / "runs").glob("*.json")], out, command)
    print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    main(sys.argv[1:])
