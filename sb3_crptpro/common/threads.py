"""How many threads torch uses for each kind of work: one for per-frame work, the free cores for batched updates.

torch's default (one intra-op thread per physical core) suits batched work on an idle machine. On per-frame work
(encoding one 64 px observation, a policy forward on one observation) more threads only add synchronisation, and
beside another busy process they wait for a core: measured on 2 cores beside one CPU-bound process, encoding one
64 px frame took 5.0 ms with torch's default 2 threads and 1.6 ms with 1 (1.1 ms either way on the idle machine),
and a batch of 256 frames 266 ms with 2 threads, 169 ms with 1 (101 ms with 2 threads idle). Switching is cheap:
``torch.set_num_threads`` between parallel regions ~0.1 us, entering and leaving :func:`frame_threads` ~3.5 us
(same machine, loaded), against ~1 ms for the encoding it wraps.

So every stage of the package runs per-frame work (rendering workers, env encoders, evaluation, the policy's
forward on a rollout step) under :func:`frame_threads` (1 thread) and batched updates (pretraining, the gradient
steps of ``train``) under :func:`batch_threads`: the cores not taken by other running processes when the run starts.

That count is decided once and kept: the thread count changes the floating-point results of a batched update (a
reduction split over 1 or 2 threads sums in another order), so a count that followed the load from update to update
would make two runs with the same seed differ. :func:`pinned_batch_threads` fixes it for a run (``train`` and
``pretrain`` record it, and a resumed run reuses the recorded count); elsewhere (the Python API) the first batched
work of a process decides it for the rest of the process (:func:`batch_thread_count`).

A user's choice wins: with ``OMP_NUM_THREADS`` (or ``MKL_NUM_THREADS``) set, or after an explicit
``torch.set_num_threads(n)`` to anything but torch's default, these helpers leave torch's thread count alone, with one
exception: a run's pinned count (``train --threads N``, or the count a resumed run recorded) is applied to its batched
work whatever the process's thread count then, since a resumed run is the uninterrupted one only on the same count
(measured: a reference-mode ``train`` resumed in a process left at 1 thread by earlier work, beside a first session on
2, ended with other actor weights).
``torch.set_num_threads`` is process-wide: the context managers set it on entry and restore it on exit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = [
    "FRAME_BATCH",
    "THREADS_HELP",
    "batch_thread_count",
    "batch_threads",
    "frame_threads",
    "free_cores",
    "pinned_batch_threads",
    "torch_default_threads",
    "torch_threads",
    "user_chose_threads",
    "worker_threads",
]

#: what ``sb3-crptpro <command> --help`` says about threads
THREADS_HELP = (
    "threads: per-frame work (env encoders, rollout and evaluation steps) runs on 1 torch thread, batched updates "
    "(pretraining, gradient steps) on the cores no other process is using when the run starts (recorded with the run "
    "and reused when it resumes: the count changes the float results); to choose yourself, set OMP_NUM_THREADS, e.g. "
    "`OMP_NUM_THREADS=2 sb3-crptpro train ...` (then it is used for everything but the gradient steps of a run given "
    "--threads or resumed: they run on that run's count)"
)

#: environment variables that set torch's (OpenMP's, MKL's) thread count
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: batches of at most this many frames count as per-frame work (a rollout step of a few envs, an evaluation step)
FRAME_BATCH = 8

#: seconds a :func:`free_cores` reading is reused (reading ``/proc`` costs ~0.1 ms)
_FREE_CORES_TTL_S = 2.0


class _Setting:
    """One open :func:`torch_threads` context: the count it set and the count it found (restored on exit)."""

    __slots__ = ("before", "count")

    def __init__(self, count: int, before: int) -> None:
        self.count = count
        self.before = before


_set_by_us: list[_Setting] = []  # the torch_threads contexts open now, innermost last
_pinned: list[int] = []  # batched-work thread counts fixed by the pinned_batch_threads contexts open now
_process_batch_count: int | None = None  # decided at this process's first unpinned batched work
_free_cache: tuple[float, int] = (-1e9, 0)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.cache
def torch_default_threads() -> int:
    """The intra-op thread count torch picks when nobody sets one: its physical cores (cpuinfo's cores count,
    ``at::intraop_default_num_threads``), read here from Linux's CPU topology; elsewhere ``os.cpu_count()``.
    Read once per process."""
    cores: set[tuple[str, str]] = set()
    for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        try:
            cores.add(((cpu / "physical_package_id").read_text().strip(), (cpu / "core_id").read_text().strip()))
        except OSError:
            continue
    return len(cores) or os.cpu_count() or 1


def user_chose_threads() -> bool:
    """Whether the user set torch's thread count: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` in the environment, or
    a ``torch.set_num_threads`` to another count than torch's default (outside this module's contexts)."""
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return True
    expected = _set_by_us[-1].count if _set_by_us else torch_default_threads()
    return torch.get_num_threads() != expected


def _running_tasks() -> int | None:
    """Runnable threads on the machine now, minus this process's own (Linux ``/proc``); ``None`` elsewhere."""
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    mine = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            mine += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return max(0, running - mine)


def free_cores() -> int:
    """Cores not taken by other running processes now (at least 1): the cores this process may use minus the
    threads of other processes that are runnable (the smallest of three readings of ``/proc/loadavg``, so that a
    short-lived task does not count; the rounded 1-minute load average where there is no ``/proc``). Reused for 2 s.
    """
    global _free_cache
    now = time.monotonic()
    if now - _free_cache[0] < _FREE_CORES_TTL_S:
        return _free_cache[1]
    readings = [r for r in (_running_tasks() for _ in range(3)) if r is not None]
    if readings:
        busy = min(readings)
    else:
        try:
            busy = round(os.getloadavg()[0])
        except OSError:
            busy = 0
    cores = max(1, min(_available_cores(), torch_default_threads()) - busy)
    _free_cache = (now, cores)
    return cores


@contextlib.contextmanager
def torch_threads(count: int, *, over_user: bool = False) -> Iterator[int]:
    """Run the body with ``count`` torch threads (restored on exit), unless the user chose the thread count
    (:func:`user_chose_threads`) and ``over_user`` is false: then it is left as it is.

    :param count: intra-op threads (>= 1)
    :param over_user: apply ``count`` even where the user chose a thread count (a run's pinned batched count)
    :return: (as the context value) the thread count the body runs with
    :raises ValueError: ``count`` < 1
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not over_user and user_chose_threads():
        yield torch.get_num_threads()
        return
    setting = _Setting(count, torch.get_num_threads())
    if count != setting.before:
        torch.set_num_threads(count)
    _set_by_us.append(setting)
    try:
        yield count
    finally:
        _close(setting)


def _close(setting: _Setting) -> None:
    """Leave ``setting``'s context. Contexts normally close innermost first; one closed out of order (left open by
    a ``learn`` that raised, then closed by the garbage collector while other contexts are open) neither removes
    another's entry nor changes the count: the next context inward takes over the count to restore."""
    index = next(i for i, open_setting in enumerate(_set_by_us) if open_setting is setting)
    del _set_by_us[index]
    if index < len(_set_by_us):
        _set_by_us[index].before = setting.before
    elif torch.get_num_threads() != setting.before:
        torch.set_num_threads(setting.before)


def frame_threads() -> contextlib.AbstractContextManager[int]:
    """One torch thread, for per-frame work (an env step's encoding, a policy forward on one observation)."""
    return torch_threads(1)


def batch_thread_count() -> int:
    """Threads for batched work now: the innermost :func:`pinned_batch_threads` count, else the free cores
    (:func:`free_cores`) read at this process's first call and kept for the rest of the process."""
    global _process_batch_count
    if _pinned:
        return _pinned[-1]
    if _process_batch_count is None:
        _process_batch_count = free_cores()
    return _process_batch_count


@contextlib.contextmanager
def pinned_batch_threads(count: int | None = None) -> Iterator[int]:
    """Fix the thread count of every :func:`batch_threads` in the body (a run: its updates sum in one order).

    :param count: the count (a resumed run passes the one its run recorded); ``None``: the free cores now, or the
        user's thread count when the user chose one (:func:`user_chose_threads`)
    :return: (as the context value) the count, to record with the run
    :raises ValueError: ``count`` < 1
    """
    if count is None:
        count = torch.get_num_threads() if user_chose_threads() else free_cores()
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    _pinned.append(count)
    try:
        yield count
    finally:
        _pinned.pop()


def batch_threads(reserved: int = 0) -> contextlib.AbstractContextManager[int]:
    """:func:`batch_thread_count` threads, at most the cores this process may use minus ``reserved`` (at least 1),
    for batched updates. Inside :func:`pinned_batch_threads` the count is applied even where the user chose another
    one (the run's count is what makes a resumed run the uninterrupted one).

    :param reserved: cores kept for this process's own workers (e.g. one per ``SubprocVecEnv`` worker, which
        :func:`free_cores` counts as busy only while they run)
    """
    return torch_threads(max(1, min(batch_thread_count(), _available_cores() - reserved)), over_user=bool(_pinned))


def worker_threads(count: int = 1) -> None:
    """Set ``count`` torch threads for the rest of this process (a rendering / encoding worker process: 1), unless
    the user set ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (which the worker inherits)."""
    if not any(os.environ.get(name) for name in THREAD_VARIABLES):
        torch.set_num_threads(count)
