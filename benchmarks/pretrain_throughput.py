"""Pretraining update throughput: the full update vs the pure model compute on a pre-made batch.

Full update = sample + augment + forward + losses + backward + Adam + EMA (``Pretrainer.step``).
Pure compute = forward + losses + backward + Adam on one batch that was sampled and augmented beforehand.
Both run in this process on the same model. Target: full <= 1.1x pure compute time.

Usage: ``python benchmarks/pretrain_throughput.py [--data DIR] [--batch-sizes 128 512] [--updates 3]``. Without
``--data`` a small dataset (3 domains, 84 px, fast preset) is collected into a temp folder first.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from sb3_crptpro.data import CrossDomainDataset, collect
from sb3_crptpro.pretraining.losses import total_loss
from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer


def seconds_per_call(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or tmp
        if args.data is None:
            collect(["cheetah_run", "walker_run", "quadruped_run"], tmp, transitions_per_domain=1000, render="fast",
                    progress=False)  # fmt: skip
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
        print(f"{'batch':>6} {'full upd/s':>11} {'pure upd/s':>11} {'full/pure time':>15}")
        for batch_size in args.batch_sizes:
            config = PretrainConfig(batch_size=batch_size, updates=10**9, progress=False, device=args.device)
            trainer = Pretrainer(config, CrossDomainDataset(data))
            full = seconds_per_call(trainer.step, args.updates)

            batch = trainer.dataset.sample(batch_size, trainer.generator)
            obs = trainer._augment(batch.obs.to(trainer.device))
            next_obs = trainer._augment(batch.next_obs.to(trainer.device))

            def pure(trainer: Pretrainer = trainer, obs: torch.Tensor = obs, next_obs: torch.Tensor = next_obs) -> None:
                with torch.no_grad():
                    proj_t = trainer.target_projector(trainer.target_encoder(next_obs))
                comp, intr, _ = trainer.model(obs, proj_t)
                trainer.optimizer.zero_grad(set_to_none=True)
                total_loss(comp, intr, trainer.config.alpha).backward()
                trainer.optimizer.step()
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()

            compute = seconds_per_call(pure, args.updates)
            print(f"{batch_size:>6} {1 / full:11.3f} {1 / compute:11.3f} {full / compute:14.3f}x")


if __name__ == "__main__":
    main()
