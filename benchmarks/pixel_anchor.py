"""Same-machine pixel anchors: DrQ-style SAC with a trainable, shared, critic-trained conv trunk on pixels.

What pixels give in this pipeline, as a bound for the frozen encoders of ``six_task.py``. Configs (``ANCHORS``):
  - ``DrQ, 64 px fast``: :class:`~sb3_crptpro.sb3.drq.DrQSAC` from a random init, frames as embedding mode renders
    them for the shipped encoder (64 px, ``render="fast"``, frame stack 3);
  - ``DrQ, 84 px paper``: the same at DrQ's own frames (84 px, dm_control's default scene);
  - ``DrQ fine-tune, 64 px fast``: the same as the first, starting from the shipped encoder's conv weights.
Each run: the task's action repeat (``six_task.TASKS``), 100,000 env steps, 10 deterministic evaluation episodes
every 10,000 env steps (``six_task.EvalCurve``), batch 128 (DrQ: 512), one update per agent step.

Resumable inside a run: model and replay buffer are saved every ``--checkpoint-every`` agent steps to
``<out>/work/<run>/``; a re-run continues from there (the episode in progress is restarted), and a finished run
leaves one JSON in ``<out>/runs/`` (rows as ``six_task.py`` writes them, so its report can read them).

Usage::

    python benchmarks/pixel_anchor.py --out benchmarks/results/pixel_anchor --anchors "DrQ, 64 px fast" \\
        --tasks cartpole_swingup --seeds 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from six_task import TASKS, EvalCurve, curve_row

#: anchor name -> (image size, render preset, start from the shipped encoder)
ANCHORS: dict[str, tuple[int, str, bool]] = {
    "DrQ, 64 px fast": (64, "fast", False),
    "DrQ, 84 px paper": (84, "paper", False),
    "DrQ fine-tune, 64 px fast": (64, "fast", True),
}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()


class _Checkpoint:
    """Save model, replay buffer and the evaluation curve every ``every`` agent steps (a callback hook)."""

    def __init__(self, folder: Path, every: int) -> None:
        self.folder, self.every = folder, every

    def save(self, model: Any, curve: EvalCurve, elapsed: float) -> None:
        tmp = self.folder / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        model.save(tmp / "model.zip")
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
        state = {"points": curve.points, "eval_seconds": curve.eval_seconds, "next_eval": curve.next_eval,
                 "elapsed": elapsed, "num_timesteps": model.num_timesteps}  # fmt: skip
        (tmp / "state.json").write_text(json.dumps(state))
        for name in ("model.zip", "replay_buffer.pkl", "state.json"):
            (tmp / name).replace(self.folder / name)  # state.json last: it says the other two are complete


def run(name: str, task: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one anchor on one task and seed, resuming from ``<out>/work``; return its row."""
    from stable_baselines3.common.callbacks import BaseCallback

    from sb3_crptpro import make_dmc_vec_env
    from sb3_crptpro.sb3.drq import DrQSAC, drq_kwargs

    size, render, fine_tune = ANCHORS[name]
    action_repeat = TASKS[task]
    total = args.env_steps // action_repeat
    work = Path(args.out) / "work" / f"{_slug(name)}__{task}__{seed}"
    settings = {"image_size": size, "render": render, "action_repeat": action_repeat, "frame_stack": 3}
    env = make_dmc_vec_env(task, 1, seed=seed, **settings)
    eval_env = make_dmc_vec_env(task, 1, seed=seed + 10_000, **settings)
    curve = EvalCurve(eval_env, action_repeat, args.eval_every, args.eval_episodes)
    checkpoint = _Checkpoint(work, args.checkpoint_every)
    previous = 0.0
    try:
        if (work / "state.json").is_file():
            state = json.loads((work / "state.json").read_text())
            model = DrQSAC.load(work / "model.zip", env=env, device="cpu")
            model.load_replay_buffer(work / "replay_buffer.pkl")
            curve.points, curve.eval_seconds, curve.next_eval = (
                state["points"],
                state["eval_seconds"],
                state["next_eval"],
            )
            previous = state["elapsed"]
            print(f"[{name} {task} seed {seed}] resuming at {model.num_timesteps:,} agent steps", flush=True)
        else:
            kwargs = drq_kwargs("dmc-64px" if fine_tune else None, obs_shape=env.observation_space.shape, seed=seed)
            buffer_size = args.buffer_size or total
            model = DrQSAC(env=env, policy_kwargs=kwargs, buffer_size=buffer_size, learning_starts=args.learning_starts,
                           batch_size=args.batch_size, seed=seed, device="cpu", verbose=0)  # fmt: skip
        start = time.perf_counter()

        class Hook(BaseCallback):
            saved_at = model.num_timesteps

            def _on_rollout_start(self) -> None:
                # SB3 stores a step's transition after _on_step and trains after the rollout: here, at the start of
                # the next rollout, buffer, updates and step count agree (a checkpoint in _on_step misses one of each)
                steps = self.model.num_timesteps
                if steps % args.checkpoint_every == 0 and steps != self.saved_at:
                    checkpoint.save(self.model, curve, previous + time.perf_counter() - start)
                    self.saved_at = steps

            def _on_step(self) -> bool:
                if self.num_timesteps % 500 == 0:
                    print(f"[{name} {task} seed {seed}] {self.num_timesteps * action_repeat:,} env steps, "
                          f"{(time.perf_counter() - start) / 60:.1f} min", flush=True)  # fmt: skip
                return True

        curve.start = start  # EvalCurve's seconds count this session's time only
        model.learn(total - model.num_timesteps, callback=[curve, Hook()], reset_num_timesteps=False)
        total_s = previous + time.perf_counter() - start
        checkpoint.save(model, curve, total_s)  # a finished run can be extended (a larger --env-steps)
        updates = int(model._n_updates)
        buffer = model.replay_buffer
        bytes_per = buffer.nbytes() / (buffer.buffer_size * buffer.n_envs)
    finally:
        env.close()
        eval_env.close()
    spec = {"image_size": size, "render": render, "fine_tune": fine_tune, "batch_size": args.batch_size}
    return curve_row(name, task, seed, action_repeat, args.env_steps, curve, total_s, updates, bytes_per,
                     "dmc-64px" if fine_tune else None, spec)  # fmt: skip


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/pixel_anchor")
    parser.add_argument("--anchors", nargs="+", default=["DrQ, 64 px fast"], choices=list(ANCHORS))
    parser.add_argument("--tasks", nargs="+", default=["cartpole_swingup"], choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--env-steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps (default: 10000)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-starts", type=int, default=1000, help="agent steps (default: 1000, DrQ's)")
    parser.add_argument("--buffer-size", type=int, default=0,
                        help="replay transitions (default: 0, the whole run, as DrQ's 100k)")  # fmt: skip
    parser.add_argument("--checkpoint-every", type=int, default=2500, help="agent steps (default: 2500)")
    args = parser.parse_args(argv)
    runs = Path(args.out) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/pixel_anchor.py", *argv])
    for name in args.anchors:
        for task in args.tasks:
            for seed in args.seeds:
                path = runs / f"{_slug(name)}__{task}__{seed}.json"
                if path.is_file():
                    continue
                row = run(name, task, seed, args) | {"command": command}
                path.write_text(json.dumps(row, indent=1))
                print(f"{task} seed {seed} {name}: {row['final_return']:.1f} +- {row['final_std']:.1f} "
                      f"(curve mean {row['auc_return']:.1f}), {row['total_s'] / 60:.1f} min", flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
