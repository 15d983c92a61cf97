"""State-probe R^2 of frozen encoder features: pretrained vs random-init, per domain, seen and unseen.

Without ``--encoder`` it first collects pretraining data and pretrains a small CRPTpro encoder (CPU budget). Probe
data are collected with another seed than pretraining data. Ridge regression from frozen conv features to the
proprioceptive state, trained on the first episodes of each probe domain and scored on held-out later episodes.

Usage: ``python benchmarks/probe.py [--encoder enc.safetensors] [--seen ...] [--unseen ...] [--updates 300]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from sb3_crptpro import load_artifact
from sb3_crptpro.common.networks import Encoder
from sb3_crptpro.data import CrossDomainDataset, DomainDataset, collect
from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer
from sb3_crptpro.pretraining.probe import probe_domain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default="outputs/probe")
    parser.add_argument("--encoder", default=None, help="artifact to probe (default: pretrain one here)")
    parser.add_argument("--seen", nargs="+", default=["cheetah_run", "walker_run", "quadruped_run"])
    parser.add_argument("--unseen", nargs="+", default=["cartpole_swingup"])
    parser.add_argument("--pretrain-transitions", type=int, default=3000)
    parser.add_argument("--probe-transitions", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.work_dir)
    common = {"image_size": args.image_size, "render": "fast", "progress": False}
    start = time.perf_counter()
    if args.encoder is None:
        collect(args.seen, work / "pretrain_data", transitions_per_domain=args.pretrain_transitions, seed=args.seed,
                **common)  # fmt: skip
        config = PretrainConfig(updates=args.updates, batch_size=args.batch_size, seed=args.seed, progress=False,
                                log_every=max(args.updates // 10, 1), checkpoint_every=0)  # fmt: skip
        trainer = Pretrainer(config, CrossDomainDataset(work / "pretrain_data"), work / "pretrain")
        stats = trainer.fit()
        encoder_path = trainer.save(work / "encoder.safetensors", stats)
        print(f"pretrained {args.updates} updates at batch {args.batch_size} in {stats['wall_time_s']:.0f} s")
    else:
        encoder_path = Path(args.encoder)
    artifact = load_artifact(encoder_path)
    torch.manual_seed(args.seed)
    random_encoder = Encoder(artifact.obs_shape)
    tasks = [*args.seen, *args.unseen]
    probe_dirs = collect(tasks, work / "probe_data", transitions_per_domain=args.probe_transitions,
                         seed=args.seed + 1000, **common)  # fmt: skip
    seen = set(artifact.metadata.get("tasks", []))
    print(f"\n{'task':<18} {'in pretraining':>14} {'R2 pretrained':>14} {'R2 random init':>15}")
    for task, directory in zip(tasks, probe_dirs, strict=True):
        data = DomainDataset(directory, frame_stack=artifact.frame_stack)
        r2_pre = probe_domain(artifact.encoder, data)
        r2_rand = probe_domain(random_encoder, data)
        print(f"{task:<18} {('yes' if task in seen else 'no'):>14} {r2_pre:14.3f} {r2_rand:15.3f}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s; artifact {encoder_path}")


if __name__ == "__main__":
    main()
