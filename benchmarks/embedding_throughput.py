"""Agent steps/s with training, side by side in one process (issue 13): state SAC, embedding mode, reference mode.

Same SAC heads, batch, ``train_freq=1``; after ``learning_starts`` (not timed) each config runs ``--steps`` agent
steps (the reference mode ``--reference-steps``). Prints where the time goes: env stepping (physics + rendering),
encoding, gradient updates (the rest). Configs:

- ``state``: SB3 SAC on the flat proprioceptive state (no rendering), the upper anchor;
- ``state, fused Adam``: the same with ``policy_kwargs={"optimizer_kwargs": {"fused": True}}`` (the optimizer the
  overlapped config uses by default: a fair anchor for it);
- ``embedding``: SB3 SAC on :class:`~sb3_crptpro.VecEncodeObservation` (1 env, DummyVecEnv);
- ``embedding, 2 envs``: 2 env processes (SubprocVecEnv, forkserver), frames of both encoded in one pass,
  ``gradient_steps=2`` per vector step (same updates per transition);
- ``embedding, overlapped``: :class:`~sb3_crptpro.OverlappedSAC` on :func:`~sb3_crptpro.make_encoded_vec_env`
  (1 env worker process that steps, renders and encodes while this process runs the update; this process runs torch
  on ``cpu_count - 1`` threads, the worker on 1; fused Adam, :func:`~sb3_crptpro.with_fused_adam`);
- ``embedding, overlapped, SB3 Adam``: the same with SB3's default (unfused) Adam;
- ``reference``: AugmentedSAC + frozen conv trunk + trainable ``pre_fc`` on pixels.

The configs run ``--repeats`` times, interleaved (this machine's speed drifts); the median is reported.

Usage: ``python benchmarks/embedding_throughput.py --encoder outputs/collapse_study/encoders/default_seed0.safetensors``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from downstream import _TimedVecEnv as _Timed  # the same timing wrapper (benchmarks/ is the script's folder)
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import SubprocVecEnv

from sb3_crptpro import (
    AugmentedSAC,
    OverlappedSAC,
    VecEncodeObservation,
    crptpro_kwargs,
    env_settings,
    load_artifact,
    make_dmc_vec_env,
    make_encoded_vec_env,
    with_fused_adam,
)

CONFIGS = ("state", "state, fused Adam", "embedding", "embedding, 2 envs", "embedding, overlapped",
           "embedding, overlapped, SB3 Adam", "reference")  # fmt: skip


def measure(name: str, args: argparse.Namespace) -> dict[str, float]:
    artifact = load_artifact(args.encoder)
    settings = env_settings(artifact.metadata, args.action_repeat)
    n_envs = 2 if name == "embedding, 2 envs" else 1
    threads = torch.get_num_threads()
    overlapped = name.startswith("embedding, overlapped")
    if name.startswith("state"):
        venv = make_dmc_vec_env(args.task, 1, seed=0, observation="state", action_repeat=args.action_repeat)
    elif overlapped:
        venv = make_encoded_vec_env(args.task, 1, args.encoder, seed=0, **settings)
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    else:
        vec = {"vec_env_cls": SubprocVecEnv, "vec_env_kwargs": {"start_method": "forkserver"}} if n_envs > 1 else {}
        venv = make_dmc_vec_env(args.task, n_envs, seed=0, **vec, **settings)
        if name != "reference":
            venv = VecEncodeObservation(venv, artifact)
    encoding = getattr(venv, "encoding", None)
    timed = _Timed(venv)
    common = {"batch_size": args.batch_size, "learning_starts": args.learning_starts, "train_freq": 1,
              "gradient_steps": n_envs, "buffer_size": 50_000, "seed": 0, "verbose": 0, "device": "cpu"}  # fmt: skip
    if name == "reference":
        model = AugmentedSAC("CnnPolicy", timed, policy_kwargs=crptpro_kwargs(artifact, net_arch=args.net_arch),
                             **common)  # fmt: skip
        steps = args.reference_steps
    else:
        policy_kwargs: dict = {"net_arch": args.net_arch}
        if name == "state, fused Adam":
            policy_kwargs = with_fused_adam(policy_kwargs, "cpu")
        elif name == "embedding, overlapped, SB3 Adam":
            policy_kwargs["optimizer_kwargs"] = {"fused": False}
        model = (OverlappedSAC if overlapped else SAC)("MlpPolicy", timed, policy_kwargs=policy_kwargs, **common)
        steps = args.steps
    model.learn(args.learning_starts + 2 * n_envs)  # fill up to learning_starts, plus the first updates (warm-up)
    timed.seconds = 0.0
    encode_before = encoding.seconds if encoding is not None else 0.0
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    wall = time.perf_counter() - start
    encode = (encoding.seconds - encode_before) if encoding is not None else 0.0
    timed.close()
    torch.set_num_threads(threads)
    # in the 2-env config, encoding runs in this process; env stepping overlaps across the 2 processes. Overlapped:
    # env_s is the time spent waiting for the worker (its stepping and encoding minus what the update hid)
    return {"agent_steps_per_s": steps / wall, "env_s": timed.seconds - encode, "encode_s": encode,
            "update_s": wall - timed.seconds, "wall_s": wall, "steps": steps}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", required=True, help="artifact (its image size and frame stack are used)")
    parser.add_argument("--task", default="finger_spin")
    parser.add_argument("--action-repeat", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--net-arch", nargs="+", type=int, default=[256, 256])
    parser.add_argument("--learning-starts", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2000, help="timed agent steps (state and embedding)")
    parser.add_argument("--reference-steps", type=int, default=200, help="timed agent steps (reference mode)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per config (interleaved); medians reported")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS, metavar="CONFIG",
                        help=f"configs to run (default: all of {', '.join(map(repr, CONFIGS))})")  # fmt: skip
    args = parser.parse_args()
    print(f"{args.task}, action repeat {args.action_repeat}, batch {args.batch_size}, heads {args.net_arch}, "
          f"train_freq 1, torch threads {torch.get_num_threads()}, {args.repeats} repeats")  # fmt: skip
    names = [name for name in CONFIGS if name in args.configs]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            r = measure(name, args)
            runs[name].append(r)
            print(f"[{repeat + 1}/{args.repeats}] {name:>31}: {r['agent_steps_per_s']:7.1f} agent steps/s over "
                  f"{r['steps']} steps; per step: env {1e3 * r['env_s'] / r['steps']:.2f} ms, encode "
                  f"{1e3 * r['encode_s'] / r['steps']:.2f} ms, updates {1e3 * r['update_s'] / r['steps']:.2f} ms",
                  flush=True)  # fmt: skip
    results = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
    for name in names:
        r = results[name]
        each = ", ".join(f"{x['agent_steps_per_s']:.1f}" for x in runs[name])
        print(f"median {name:>31}: {r['agent_steps_per_s']:7.1f} agent steps/s (runs: {each}); per step: env "
              f"{1e3 * r['env_s'] / r['steps']:.2f} ms, encode {1e3 * r['encode_s'] / r['steps']:.2f} ms, updates "
              f"{1e3 * r['update_s'] / r['steps']:.2f} ms")  # fmt: skip
    for name in (n for n in names if n.startswith("embedding")):
        r = results[name]["agent_steps_per_s"]
        parts = [f"{r / results['reference']['agent_steps_per_s']:.1f}x the reference mode (target >= 15x)"
                 if "reference" in results else ""]  # fmt: skip
        for anchor in (n for n in names if n.startswith("state")):
            # the ratio within each repeat (the configs of a repeat run back to back) is less exposed to the drift
            pairs = zip(runs[name], runs[anchor], strict=True)
            paired = [x["agent_steps_per_s"] / s["agent_steps_per_s"] for x, s in pairs]
            label = anchor.replace("state", "state SAC", 1)
            each = ", ".join(f"{p:.2f}x" for p in paired)
            parts.append(f"{r / results[anchor]['agent_steps_per_s']:.2f}x {label} (target >= 0.8x; within each "
                         f"repeat {each}, median {statistics.median(paired):.2f}x)")  # fmt: skip
        print(f"{name}: {'; '.join(p for p in parts if p)}")


if __name__ == "__main__":
    main()
