"""Time to sample a batch of (stack_t, stack_t+1) vs one forward/backward of the reference conv trunk.

Usage: ``python benchmarks/sampler_throughput.py [--data DIR] [--batch-size 512]``. Without ``--data`` a small
dataset (3 domains, fast preset) is collected into a temp folder first. Sampling must not dominate an update.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn

from sb3_crptpro.data import CrossDomainDataset, collect


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (page cache, allocator)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def reference_trunk(channels: int) -> nn.Module:
    # PAPER.md: Conv(9->32, 3, s2) ReLU + 3 x [Conv(32->32, 3, s1) ReLU], plus the 39200 -> 128 projector
    layers: list[nn.Module] = [nn.Conv2d(channels, 32, 3, stride=2), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Conv2d(32, 32, 3, stride=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(128))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or tmp
        if args.data is None:
            collect(
                ["cheetah_run", "walker_run", "reacher_easy"],
                tmp,
                transitions_per_domain=1000,
                render="fast",
                progress=False,
            )
        g = torch.Generator().manual_seed(0)
        for mode in ("round_robin", "mixed"):
            dataset = CrossDomainDataset(data, mode=mode)
            t_sample = timed(lambda d=dataset: d.sample(args.batch_size, g), args.repeats)
            print(f"sample({args.batch_size}) [{mode}]: {t_sample * 1e3:.1f} ms")
        batch = dataset.sample(args.batch_size, g)
        net = reference_trunk(batch.obs.shape[1])

        def update() -> None:
            net(batch.obs.float() / 255).square().mean().backward()

        t_update = timed(update, max(args.repeats // 2, 1))
        print(f"conv trunk forward+backward at batch {args.batch_size}: {t_update * 1e3:.1f} ms")
        print(f"sampling / update compute: {t_sample / t_update:.3f}")


if __name__ == "__main__":
    main()
