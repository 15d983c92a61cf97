"""CRPTpro's decoupled random collection: a uniform-random policy steps several domains (DMC tasks and Gymnasium
envs that render, mixed freely), one dataset each.

The work of a domain is cut into fixed *chunks* of ``chunk_transitions`` transitions. Chunk ``c`` of task ``t`` is
generated from its own seed stream ``SeedSequence(seed, spawn_key=(crc32(t), c))`` (env reset seed and action
sampler) starting from a fresh episode, and is written as one shard. The dataset therefore depends only on the seed
and the config, never on how many worker processes ran or in which order chunks finished; a crash loses only the
chunks in flight, and re-running the same command redoes exactly the missing ones.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sb3_crptpro._version import __version__
from sb3_crptpro.common.folder_lock import exclusive_folder
from sb3_crptpro.common.progress import progress_bar
from sb3_crptpro.data.store import (
    FLAG_FIRST,
    FLAG_TERMINATED,
    FLAG_TRUNCATED,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    DatasetError,
    ShardData,
    read_manifest,
    write_manifest,
    write_shard,
)
from sb3_crptpro.envs import DMCConfig, PixelEnv, build_config, pixel_env
from sb3_crptpro.envs.tasks import check_bounded_actions

__all__ = ["DEFAULT_CHUNK_TRANSITIONS", "collect"]

#: transitions per shard: two full episodes at action repeat 2
DEFAULT_CHUNK_TRANSITIONS = 1000
_PROGRESS_EVERY = 50


@dataclass(frozen=True)
class _Job:
    directory: Path
    config: DMCConfig
    chunk: int
    n_transitions: int
    seed: int


def _chunk_seed_sequence(seed: int, task: str, chunk: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(task.encode()), chunk))


_WORKER_ENVS: dict[DMCConfig, PixelEnv] = {}
_WORKER_QUEUE: Any = None


def _worker_env(config: DMCConfig) -> PixelEnv:
    """One single-frame env per config and process, reused across chunks (each chunk reseeds it)."""
    single = replace(config, frame_stack=1)
    if single not in _WORKER_ENVS:
        _WORKER_ENVS[single] = pixel_env(single)
    return _WORKER_ENVS[single]


def _close_worker_envs() -> None:
    """Close the envs cached in this process (an unclosed Gymnasium MuJoCo renderer raises EGL errors when it is
    garbage-collected at interpreter exit)."""
    while _WORKER_ENVS:
        _WORKER_ENVS.popitem()[1].close()


def _collect_chunk(job: _Job, report: Callable[[str, int], None]) -> ShardData:
    env = _worker_env(job.config)
    sequence = _chunk_seed_sequence(job.seed, job.config.task, job.chunk)
    env_seed = int(sequence.generate_state(1)[0])
    rng = np.random.default_rng(sequence)
    low, high = env.action_space.low, env.action_space.high
    n_frames_max = 2 * job.n_transitions + 1  # bound; trimmed below
    frames = np.empty((n_frames_max, *env.config.obs_shape), np.uint8)
    states: list[np.ndarray] = []
    actions = np.zeros((n_frames_max, *env.action_space.shape), np.float32)
    rewards = np.zeros(n_frames_max, np.float32)
    flags = np.zeros(n_frames_max, np.uint8)

    i = 0

    def start_episode(seed: int | None) -> None:
        nonlocal i
        obs, info = env.reset(seed=seed)
        frames[i], flags[i] = obs, FLAG_FIRST
        states.append(info["state"])
        i += 1

    start_episode(env_seed)
    for t in range(job.n_transitions):
        action = rng.uniform(low, high).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        frames[i], actions[i], rewards[i] = obs, action, reward
        flags[i] = FLAG_TERMINATED * terminated | FLAG_TRUNCATED * truncated
        states.append(info["state"])
        i += 1
        if (t + 1) % _PROGRESS_EVERY == 0:
            report(job.config.task, _PROGRESS_EVERY)
        if (terminated or truncated) and t + 1 < job.n_transitions:
            start_episode(None)  # the task's random state continues: still determined by env_seed
    report(job.config.task, job.n_transitions % _PROGRESS_EVERY)
    return ShardData(frames[:i], np.stack(states), actions[:i], rewards[:i], flags[:i])


def _shard_path(job: _Job) -> Path:
    return job.directory / f"shard_{job.chunk:05d}.bin"


def _run_job(job: _Job, report: Callable[[str, int], None]) -> tuple[_Job, dict[str, Any]]:
    entry = write_shard(_shard_path(job), _collect_chunk(job, report))
    return job, {"index": job.chunk, **entry}


def _init_worker(queue: Any, counter: Any, cpus: list[int]) -> None:
    """Per-process set-up: progress queue, one software-GL thread, and (one worker per core) a pinned core.

    Measured on 2 cores with llvmpipe: a renderer pinned to one core with ``LP_NUM_THREADS=1`` runs ~1.5x faster
    than one left to spread its GL threads over cores shared with other workers.
    """
    global _WORKER_QUEUE
    _WORKER_QUEUE = queue
    os.environ.setdefault("LP_NUM_THREADS", "1")  # read by Mesa when the GL context is created (first render)
    with counter.get_lock():
        rank = counter.value
        counter.value += 1
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpus[rank % len(cpus)]})


def _queue_report(task: str, n: int) -> None:
    if n:
        _WORKER_QUEUE.put((task, n))


def _run_job_in_worker(job: _Job) -> tuple[_Job, dict[str, Any]]:
    return _run_job(job, _queue_report)


def _identity(config: DMCConfig, seed: int, transitions: int, chunk_transitions: int) -> dict[str, Any]:
    return {
        "env": config.to_dict(),
        "collection": {
            "policy": "uniform_random",
            "seed": seed,
            "transitions": transitions,
            "chunk_transitions": chunk_transitions,
            "seed_streams": "SeedSequence(seed, spawn_key=(crc32(task), chunk))",
        },
    }


def _probe(config: DMCConfig, seed: int) -> dict[str, Any]:
    """Build the env and render its first frame, before anything is written: an env that cannot be built or cannot
    render (a missing optional dependency) fails here, not in a worker after the folders exist. Returns the shapes
    the manifest records."""
    probe = pixel_env(replace(config, frame_stack=1))
    try:
        check_bounded_actions(config.task, probe.action_space)
        probe.reset(seed=seed)
        return {
            "frame": [3, config.image_size, config.image_size],
            "state_dim": probe.state_dim,
            "action_dim": int(np.prod(probe.action_space.shape)),
        }
    finally:
        probe.close()


def _prepare_domain(
    directory: Path,
    config: DMCConfig,
    seed: int,
    transitions: int,
    chunk_transitions: int,
    resume: bool,
    shapes: dict[str, Any],
) -> dict[str, Any]:
    """Create or check the manifest of one domain; drop leftovers of an interrupted run."""
    identity = _identity(config, seed, transitions, chunk_transitions)
    if (directory / MANIFEST_NAME).exists():
        if not resume:
            raise FileExistsError(f"{directory} already holds a dataset; pass resume=True (--resume) or another --out")
        manifest = read_manifest(directory)
        for key, expected in identity.items():
            recorded = manifest.get(key)
            if recorded != expected:
                diff = sorted(k for k in set(expected) | set(recorded or {}) if (recorded or {}).get(k) != expected[k])
                raise DatasetError(
                    f"{directory} was collected with a different config ({key}: {', '.join(diff)} differ: "
                    f"recorded {[(recorded or {}).get(k) for k in diff]}, requested {[expected[k] for k in diff]}); "
                    "use another --out directory or the recorded settings"
                )
    else:
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            **identity,
            "shapes": shapes,
            "shards": [],
            "counts": {"transitions": 0, "frames": 0, "episodes": 0, "bytes": 0},
            "complete": False,
        }
        write_manifest(directory, manifest)
    intact = [e for e in manifest["shards"] if _size_matches(directory / e["file"], e["bytes"])]
    if len(intact) < len(manifest["shards"]):  # missing or truncated shards (issue 14): collected again below
        manifest["shards"] = intact
        _record_shard_counts(manifest)
        write_manifest(directory, manifest)
    known = {entry["file"] for entry in manifest["shards"]}
    for leftover in directory.iterdir():
        # temp files of killed writers, and shards renamed after the last manifest update: redone below
        if leftover.name.endswith(".tmp") or (leftover.name.startswith("shard_") and leftover.name not in known):
            leftover.unlink(missing_ok=True)
    return manifest


def _size_matches(path: Path, expected: int) -> bool:
    return path.is_file() and path.stat().st_size == expected


def _record_shard_counts(manifest: dict[str, Any], n_chunks: int = -1) -> None:
    manifest["counts"] = {k: sum(e[k] for e in manifest["shards"]) for k in ("transitions", "frames", "episodes")}
    manifest["counts"]["bytes"] = sum(e["bytes"] for e in manifest["shards"])
    manifest["complete"] = len(manifest["shards"]) == n_chunks


def _record_shard(directory: Path, manifest: dict[str, Any], entry: dict[str, Any], n_chunks: int) -> None:
    manifest["shards"] = sorted([*manifest["shards"], entry], key=lambda e: e["index"])
    _record_shard_counts(manifest, n_chunks)
    write_manifest(directory, manifest)


@contextlib.contextmanager
def _progress_bars(totals: dict[str, int], done: dict[str, int], enabled: bool) -> Iterator[dict[str, tqdm]]:
    bars = {
        task: progress_bar(total, f"{task:<16}", "frame", enabled, initial=done[task], position=i)
        for i, (task, total) in enumerate(totals.items())
    }
    try:
        yield bars
    finally:
        for bar in bars.values():
            bar.close()


def collect(
    tasks: Sequence[str],
    out_dir: str | Path,
    *,
    transitions_per_domain: int,
    n_workers: int | None = None,
    seed: int = 0,
    image_size: int = 84,
    action_repeat: int = 2,
    render: str = "paper",
    frame_stack: int = 3,
    camera_id: int | None = None,
    chunk_transitions: int = DEFAULT_CHUNK_TRANSITIONS,
    resume: bool = True,
    progress: bool = True,
) -> list[Path]:
    """Collect ``transitions_per_domain`` uniform-random transitions from each task into ``out_dir/<task>/``.

    :param tasks: DMC task names and/or Gymnasium ids (:func:`~sb3_crptpro.envs.resolve_env`), one dataset directory
        each (``/`` in an id becomes ``--`` in the folder name)
    :param out_dir: parent folder of the domain directories
    :param transitions_per_domain: exact number of transitions per domain
    :param n_workers: worker processes (default: CPU count); 1 collects in this process
    :param seed: root seed; the dataset is a function of the seed and the config only
    :param image_size: frame side in pixels
    :param action_repeat: physics steps per transition
    :param render: render preset (``"paper"`` or ``"fast"``)
    :param frame_stack: frame stack recorded for readers (frames are stored once, stacks are rebuilt on read)
    :param camera_id: MuJoCo camera (default: 2 for quadruped, 0 otherwise)
    :param chunk_transitions: transitions per shard (unit of work and of crash loss)
    :param resume: continue an interrupted collection in ``out_dir`` (a finished one is left as is)
    :param progress: show a progress bar per domain
    :return: the domain directories, in the order of ``tasks``

    With ``n_workers > 1`` workers are separate processes (forkserver/spawn): in a script, call ``collect`` under
    ``if __name__ == "__main__":``, as for any ``multiprocessing`` code.
    """
    if transitions_per_domain < 1:
        raise ValueError(f"transitions_per_domain must be >= 1, got {transitions_per_domain}")
    if chunk_transitions < 1:
        raise ValueError(f"chunk_transitions must be >= 1, got {chunk_transitions}")
    if not tasks:
        raise ValueError("no tasks given")
    configs = [
        build_config(
            t,
            image_size=image_size,
            frame_stack=frame_stack,
            action_repeat=action_repeat,
            camera_id=camera_id,
            render=render,
        )
        for t in tasks
    ]
    if len({c.task for c in configs}) != len(configs):
        raise ValueError(f"duplicate tasks in {list(tasks)}")
    out = Path(out_dir)
    n_chunks = -(-transitions_per_domain // chunk_transitions)
    manifests: dict[str, dict[str, Any]] = {}
    jobs: list[_Job] = []
    shapes = {config.task: _probe(config, seed) for config in configs}
    with contextlib.ExitStack() as locks:  # one writer per dataset folder, released however this process ends
        for config in configs:
            directory = out / _folder(config.task)
            locks.enter_context(exclusive_folder(directory, "dataset"))
            manifest = _prepare_domain(
                directory, config, seed, transitions_per_domain, chunk_transitions, resume, shapes[config.task]
            )
            manifests[config.task] = manifest
            have = {entry["index"] for entry in manifest["shards"]}
            for chunk in range(n_chunks):
                if chunk not in have:
                    size = min(chunk_transitions, transitions_per_domain - chunk * chunk_transitions)
                    jobs.append(_Job(directory, config, chunk, size, seed))
        jobs.sort(key=lambda j: (j.chunk, [c.task for c in configs].index(j.config.task)))  # domains advance together

        totals = {c.task: transitions_per_domain for c in configs}
        done = {task: int(m["counts"]["transitions"]) for task, m in manifests.items()}
        workers = min(n_workers or os.cpu_count() or 1, max(len(jobs), 1))
        with _progress_bars(totals, done, progress) as bars:

            def finish(result: tuple[_Job, dict[str, Any]]) -> None:
                job, entry = result
                _record_shard(job.directory, manifests[job.config.task], entry, n_chunks)

            if workers <= 1:
                try:
                    for job in jobs:
                        finish(_run_job(job, lambda task, n: bars[task].update(n)))
                finally:
                    _close_worker_envs()
            else:
                _run_pool(jobs, workers, bars, finish)
        return [out / _folder(c.task) for c in configs]


def _folder(task: str) -> str:
    """Dataset folder of a task: namespaced Gymnasium ids (``ALE/Pong-v5``) become one folder (``ALE--Pong-v5``)."""
    return task.replace("/", "--")


def _run_pool(
    jobs: list[_Job], workers: int, bars: dict[str, tqdm], finish: Callable[[tuple[_Job, dict[str, Any]]], None]
) -> None:
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    queue = ctx.Queue()
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpus = available if workers <= len(available) else []  # pin only when every worker gets its own core

    def drain() -> None:
        while (item := queue.get()) is not None:
            bars[item[0]].update(item[1])

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(queue, ctx.Value("i", 0), cpus)
        ) as pool:
            pending: set[Future] = {pool.submit(_run_job_in_worker, job) for job in jobs}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        finish(future.result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    finally:
        queue.put(None)
        reader.join(timeout=5)
