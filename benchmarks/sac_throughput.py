"""Gradient steps/s of SAC variants on a 9x84x84 DMC env, all measured in this process at the same batch size.

(a) AugmentedSAC + frozen CRPTproExtractor (features computed once per batch), also with a bf16 frozen trunk;
(b) stock SB3 SAC with the same ``crptpro_kwargs`` (frozen trunk run by actor, critic and target separately);
(c) stock SB3 ``SAC("CnnPolicy")`` (NatureCNN trained end to end).
Encoder weights are random (speed does not depend on them). Also prints replay-buffer bytes per transition.

Usage: ``python benchmarks/sac_throughput.py [--batch-size 128] [--steps 5]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from stable_baselines3 import SAC

from sb3_crptpro import AugmentedSAC, crptpro_kwargs, make_dmc_env, save_artifact
from sb3_crptpro.networks import Encoder, Projector, Prototypes


def steps_per_second(model, batch_size: int, steps: int) -> float:
    model.learn(batch_size + 10)  # fill the buffer (learning_starts = batch_size + 10: no update yet)
    model.train(gradient_steps=1, batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    model.train(gradient_steps=steps, batch_size=batch_size)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    common = {"learning_starts": args.batch_size + 10, "batch_size": args.batch_size, "buffer_size": 2000, "seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Encoder((9, 84, 84))
        path = save_artifact(Path(tmp) / "random.safetensors", encoder, Projector(encoder.repr_dim), Prototypes(),
                             config={}, stats={}, render="fast")  # fmt: skip
        runs = {
            "(a) AugmentedSAC + frozen CRPTpro": (AugmentedSAC, crptpro_kwargs(path)),
            "(a') same, bf16 frozen trunk": (
                AugmentedSAC,
                crptpro_kwargs(path, features_extractor_kwargs={"encoder_dtype": torch.bfloat16}),
            ),
            "(b) SAC + crptpro_kwargs": (SAC, crptpro_kwargs(path)),
            "(c) SAC CnnPolicy (NatureCNN)": (SAC, None),
        }
        results = {}
        print(f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
        for name, (algo, policy_kwargs) in runs.items():
            env = make_dmc_env("cheetah_run", render="fast", seed=0)
            model = algo("CnnPolicy", env, policy_kwargs=policy_kwargs, **common)
            results[name] = steps_per_second(model, args.batch_size, args.steps)
            print(f"{name:<36} {results[name]:6.2f} steps/s")
        a, a16, b, c = results.values()
        print(f"(a)/(b) = {a / b:.2f}   (a)/(c) = {a / c:.2f}   (a')/(c) = {a16 / c:.2f}")
        per = 2 * 9 * 84 * 84
        print(f"replay bytes per transition (obs + next_obs stacks, SB3 layout, also ours for now): {per}")


if __name__ == "__main__":
    main()
