"""Each stage's time beside one CPU-bound process, as a ratio to its time on the idle machine (same process).

A laptop runs other work: torch's default thread count (one per core) slows small per-frame work several-fold
when a core is taken (:mod:`sb3_crptpro.common.threads`). This script runs each stage once idle and once beside a
busy loop in a subprocess (``python -c "while True: pass"``), and prints seconds and the ratio busy / idle:

- ``collect``: 2 rendering workers, 64 px, fast preset (the data of the pretrain stage)
- ``pretrain``: a short pretraining on those data (default preset, batch 64)
- ``train embedding``: ``sb3-crptpro train --mode embedding`` (one process; updates after ``learning_starts``)
- ``train overlap``: the same with ``--overlap`` (a worker renders and encodes, this process updates)
- ``train reference``: ``--mode reference`` (AugmentedSAC on pixels)
- ``evaluate``: ``sb3-crptpro evaluate`` of the embedding run
- ``stock SAC``: ``SAC("CnnPolicy", env, policy_kwargs=crptpro_kwargs("dmc-64px"))`` (SB3's defaults: batch 256,
  one update per step), seconds per ``learn`` step after ``learning_starts`` (an env step and an update); SB3 runs
  all but the frozen trunk at torch's default thread count
- ``stock SAC + callback``: the same with ``learn(..., callback=UpdateThreadsCallback())``, which runs the whole
  update on the package's thread pick

Each stock-SAC run decides its thread count afresh, as a process started at that moment would
(:func:`~sb3_crptpro.common.threads.pinned_batch_threads`). Target (item "speed on a busy machine"): every stage's
ratio at most 2; the bare ``stock SAC`` row is SB3's own threading, measured and reported, not counted.
``--omp-num-threads N`` runs everything with ``OMP_NUM_THREADS=N`` set, i.e. the user's choice, which the package
leaves alone (N = the core count gives what the package did before it picked thread counts itself).

Usage: ``python benchmarks/busy_machine.py [--episodes 2] [--pretrain-updates 60] [--train-steps 400]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def busy_process(on: bool) -> Iterator[None]:
    """One CPU-bound Python process beside the body (nothing when ``on`` is false)."""
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(1.0)  # running before the stage starts
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def timed(stage: Callable[[], object], busy: bool) -> float:
    with busy_process(busy):
        start = time.perf_counter()
        stage()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=300, help="collected per domain (default: %(default)s)")
    parser.add_argument("--pretrain-updates", type=int, default=60, help="(default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=400, help="agent steps, embedding (default: %(default)s)")
    parser.add_argument("--reference-steps", type=int, default=80, help="agent steps, reference (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=2, help="evaluate episodes (default: %(default)s)")
    parser.add_argument("--sac-steps", type=int, default=4, help="stock SAC updates (default: %(default)s)")
    parser.add_argument("--stages", nargs="+", default=None, help="run only these (names as printed; default: all)")
    parser.add_argument("--omp-num-threads", type=int, default=None, help="set OMP_NUM_THREADS (default: unset)")
    args = parser.parse_args()
    if args.omp_num_threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(args.omp_num_threads)
    import torch  # after OMP_NUM_THREADS
    from stable_baselines3 import SAC

    from sb3_crptpro import crptpro_kwargs, env_settings, load_artifact, make_dmc_env
    from sb3_crptpro.app.evaluation import evaluate_run
    from sb3_crptpro.app.training import TrainConfig, train
    from sb3_crptpro.common.threads import free_cores, pinned_batch_threads, torch_default_threads
    from sb3_crptpro.data import CrossDomainDataset, collect
    from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer
    from sb3_crptpro.sb3.threads import UpdateThreadsCallback

    tmp = Path(tempfile.mkdtemp(prefix="busy_machine_"))
    runs: dict[str, Path] = {}
    sac_seconds: dict[str, float] = {}
    tasks = ["cartpole_swingup", "walker_walk"]

    def collect_stage(tag: str) -> None:
        collect(tasks, tmp / f"data_{tag}", transitions_per_domain=args.transitions, n_workers=2, image_size=64,
                action_repeat=8, render="fast", progress=False)  # fmt: skip

    def pretrain_stage(tag: str) -> None:
        config = PretrainConfig.from_preset("default", updates=args.pretrain_updates, batch_size=64, progress=False,
                                            checkpoint_every=0, probe_frames=0)  # fmt: skip
        Pretrainer(config, CrossDomainDataset(tmp / "data_idle")).fit()

    def train_stage(tag: str, **kwargs: object) -> None:
        config = TrainConfig(task="walker_walk", encoder="dmc-64px", eval_freq=0, checkpoint_every=0, progress=False,
                             log_dir=str(tmp / f"logs_{tag}"), **kwargs)  # type: ignore[arg-type]  # fmt: skip
        runs[tag] = train(config, command=["busy_machine"])

    embedding = {
        "mode": "embedding",
        "steps": args.train_steps,
        "overrides": {"learning_starts": args.train_steps // 4},
    }
    reference = {"steps": args.reference_steps, "overrides": {"learning_starts": args.reference_steps // 4}}
    meta = load_artifact("dmc-64px").metadata

    def stock_sac(tag: str, callback: bool = False) -> None:
        env = make_dmc_env("cheetah_run", seed=0, **env_settings(meta, action_repeat=8))
        with pinned_batch_threads():  # decided now, as by a process started now
            model = SAC("CnnPolicy", env, buffer_size=1000, learning_starts=300,
                        policy_kwargs=crptpro_kwargs("dmc-64px"))  # fmt: skip
            model.learn(300)  # fill up to learning_starts (no update)
            start = time.perf_counter()
            threads = UpdateThreadsCallback() if callback else None
            model.learn(args.sac_steps, reset_num_timesteps=False, callback=threads)
            sac_seconds[tag] = (time.perf_counter() - start) / args.sac_steps
        env.close()

    stages: dict[str, Callable[[str], None]] = {
        "collect": collect_stage,
        "pretrain": pretrain_stage,
        "train embedding": lambda tag: train_stage(f"emb_{tag}", **embedding),
        "train overlap": lambda tag: train_stage(f"ovl_{tag}", overlap=True, **embedding),
        "train reference": lambda tag: train_stage(f"ref_{tag}", **reference),
        "evaluate": lambda tag: evaluate_run(runs["emb_idle"], episodes=args.episodes),
    }
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, torch default threads {torch_default_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, free cores now {free_cores()}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)  # fmt: skip
    print(f"{'stage':<28}{'idle s':>9}{'busy s':>9}{'ratio':>7}", flush=True)
    ratios = {}
    wanted = set(args.stages or [*stages, "stock SAC", "stock SAC + callback"])
    if "evaluate" in wanted:
        wanted.add("train embedding")  # evaluate reads its run
    for name, stage in stages.items():
        if name not in wanted:
            continue
        idle = timed(lambda: stage("idle"), busy=False)  # noqa: B023
        busy = timed(lambda: stage("busy"), busy=True)  # noqa: B023
        ratios[name] = busy / idle
        print(f"{name:<28}{idle:>9.1f}{busy:>9.1f}{busy / idle:>7.2f}", flush=True)
    for name, callback in (("stock SAC", False), ("stock SAC + callback", True)):
        if name not in wanted:
            continue
        timed(lambda: stock_sac("idle", callback), busy=False)  # noqa: B023
        timed(lambda: stock_sac("busy", callback), busy=True)  # noqa: B023
        idle, busy = sac_seconds["idle"], sac_seconds["busy"]
        if callback:  # the bare stock path is SB3's own threading: reported, not counted
            ratios[name] = busy / idle
        print(f"{name + ' s/step':<28}{idle:>9.2f}{busy:>9.2f}{busy / idle:>7.2f}", flush=True)
    worst = max(ratios, key=ratios.get)  # type: ignore[arg-type]
    print(f"worst ratio of the counted stages {ratios[worst]:.2f} ({worst}); target <= 2: "
          f"{'met' if ratios[worst] <= 2 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
