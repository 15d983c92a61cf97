"""Crash-safe downstream training (issue 14): periodic checkpoints of a run, and a resume that is the run it
interrupted.

A checkpoint is a folder ``<run>/checkpoints/step_<n>/`` holding the model zip (SB3's own format: weights, optimiser
states, ``num_timesteps``, entropy coefficient, the last observations), the replay buffer (SB3's
``save_replay_buffer`` format, its arrays cut to the rows in use: :mod:`~sb3_crptpro.sb3.buffer_files`), the
intrinsic reward wrapper's queue (when there is one), the RNG states of ``random``, numpy and torch, and the state
of every env, training and evaluation (``envs.pkl``: each episode as its reset's random state and the actions since,
see :meth:`~sb3_crptpro.envs.pixel_env.PixelEnv.get_episode_state`, plus SB3's ``Monitor`` counters). It is written
in full first; only then does ``<run>/checkpoints/latest`` (a one-line text file, replaced atomically) name it, and
older folders are removed. A ``kill -9`` at any moment therefore leaves the previous complete checkpoint in charge:
at most one checkpoint interval of training is lost.

Checkpoints are taken between rounds of SB3's ``learn`` loop (at the start of a rollout, after the gradient steps of
the previous one) and when ``learn`` ends, so a resumed run picks up exactly there: the envs replay their current
episodes, and the run writes what the uninterrupted run writes (tested file by file, timings apart).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import random
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_crptpro.data.store import atomic_write_bytes
from sb3_crptpro.sb3.buffer_files import save_filled_replay_buffer

__all__ = [
    "CheckpointCallback",
    "ResumeProofCallback",
    "RunSnapshot",
    "check_checkpoint_files",
    "checkpoint_step",
    "continue_evaluations",
    "latest_checkpoint",
    "load_env_states",
    "reading_checkpoint",
    "restore_rng",
    "restore_vec_env",
    "resumed_logger",
    "save_checkpoint",
    "trim_monitor_files",
    "vec_env_state",
]

CHECKPOINTS = "checkpoints"
MODEL, BUFFER, REWARD, STATE, ENVS = "model.zip", "replay_buffer.pkl", "intrinsic_reward.pt", "state.json", "envs.pkl"

#: SB3 ``Monitor`` attributes that carry an episode across a resume (the rest are timings or the open file)
MONITOR_FIELDS = ("rewards", "needs_reset", "total_steps", "episode_returns", "episode_lengths", "episode_times")


def _rng_state() -> dict[str, Any]:
    return {"random": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng(folder: Path) -> None:
    """Restore the RNG states stored by :func:`save_checkpoint` in ``folder``."""
    state = torch.load(folder / "rng.pt", weights_only=False)  # our own file: tuples of ints and a byte tensor
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def vec_env_state(venv: VecEnv) -> dict[str, Any]:
    """The state of every env of ``venv`` (:class:`~sb3_crptpro.envs.pixel_env.PixelEnv` episodes, through any
    VecEnv wrapper and worker process) and of their ``Monitor`` wrappers, picklable."""
    from stable_baselines3.common.monitor import Monitor

    monitored = all(venv.env_is_wrapped(Monitor))
    return {
        "episodes": venv.env_method("get_episode_state"),
        "monitor": {name: venv.get_attr(name) for name in MONITOR_FIELDS} if monitored else None,
    }


def restore_vec_env(venv: VecEnv, state: dict[str, Any]) -> None:
    """Put ``venv`` (built as the one :func:`vec_env_state` read) in that state; its next ``reset`` takes no seed.

    :raises ValueError: a state of another number of envs
    """
    if len(state["episodes"]) != venv.num_envs:
        raise ValueError(f"the checkpoint holds {len(state['episodes'])} envs, this VecEnv has {venv.num_envs}")
    for i, episode in enumerate(state["episodes"]):
        venv.env_method("set_episode_state", episode, indices=[i])
    for name, values in (state["monitor"] or {}).items():
        for i, value in enumerate(values):  # not set_attr: in a worker that sets it on the outermost wrapper
            venv.env_method("set_wrapper_attr", name, value, indices=[i])
    venv.unwrapped._reset_seeds()  # SB3 seeds a VecEnv at its first reset(); a restored one was seeded long ago


def trim_monitor_files(run_dir: str | Path, state: dict[str, Any]) -> None:
    """Cut each ``<run_dir>/<i>.monitor.csv`` back to the episodes its ``Monitor`` had logged when ``state``
    (:func:`vec_env_state`) was taken: the resumed run logs the later ones again."""
    for i, returns in enumerate((state["monitor"] or {}).get("episode_returns", [])):
        path = Path(run_dir) / f"{i}.monitor.csv"
        if path.is_file():
            lines = path.read_text().splitlines(keepends=True)
            path.write_text("".join(lines[: 2 + len(returns)]))  # a JSON comment line, the column names, one row each


def save_checkpoint(run_dir: str | Path, model: Any, reward_wrapper: Any | None = None,
                    eval_env: VecEnv | None = None) -> Path:  # fmt: skip
    """Write a complete checkpoint of ``model`` (its envs, the reward wrapper's queue, ``eval_env``), then point
    ``latest`` at it.

    :return: the checkpoint folder
    """
    root = Path(run_dir) / CHECKPOINTS
    folder = root / f"step_{model.num_timesteps}"
    if folder.exists():  # a partial folder left by a crash at this very step
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.save(folder / MODEL)
    save_filled_replay_buffer(model.replay_buffer, folder / BUFFER)  # sized to what it holds
    if reward_wrapper is not None:
        reward_wrapper.save(folder / REWARD)
    torch.save(_rng_state(), folder / "rng.pt")
    envs = {"train": vec_env_state(model.get_env()), "eval": None if eval_env is None else vec_env_state(eval_env)}
    (folder / ENVS).write_bytes(pickle.dumps(envs))
    pending = getattr(model, "_overlap_pending", None)  # OverlappedSAC: a round of updates not run yet
    state = {"num_timesteps": int(model.num_timesteps), "buffer_size": int(model.replay_buffer.size()),
             "pending_updates": None if pending is None else list(pending),
             "files": {f.name: f.stat().st_size for f in sorted(folder.iterdir())}}  # fmt: skip
    (folder / STATE).write_text(json.dumps(state))
    atomic_write_bytes(root / "latest", folder.name.encode() + b"\n")
    for old in root.glob("step_*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def load_env_states(folder: str | Path) -> dict[str, Any] | None:
    """The env states a checkpoint holds (``None`` for a checkpoint written before they were saved)."""
    path = Path(folder) / ENVS
    return pickle.loads(path.read_bytes()) if path.is_file() else None  # our own file, written by save_checkpoint


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder ``latest`` names, or ``None`` when the run has no complete checkpoint.

    Without a ``latest`` file (deleted by hand), the complete ``step_*`` folder of the most agent steps: a folder is
    complete once its ``state.json`` is written, and ``latest`` is written after it.
    """
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / "latest"
    if not pointer.is_file():
        complete = [f for f in root.glob("step_*") if (f / STATE).is_file() and f.name[5:].isdigit()]
        return max(complete, key=lambda f: int(f.name[5:]), default=None)
    folder = pointer.parent / pointer.read_text().strip()
    return folder if (folder / STATE).is_file() else None


def check_checkpoint_files(folder: str | Path) -> None:
    """Refuse a checkpoint whose files are not the sizes ``state.json`` recorded when they were written (cut short
    by a full disk, a copy stopped halfway, edited by hand); checkpoints written by earlier versions record none.

    :raises ValueError: a recorded file missing or of another size (one line, naming the file)
    """
    folder = Path(folder)
    recorded = json.loads((folder / STATE).read_text()).get("files", {})
    for name, size in recorded.items():
        path = folder / name
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            found = "is missing" if actual is None else f"has {actual} bytes, not the {size} written"
            raise ValueError(f"checkpoint {folder} is damaged: {name} {found} (cut short or changed since); this run "
                             "cannot be resumed from it")  # fmt: skip


@contextlib.contextmanager
def reading_checkpoint(folder: str | Path, name: str) -> Iterator[None]:
    """Turn a failure to read checkpoint file ``name`` (a damaged pickle, zip or torch file) into one line.

    :raises ValueError: from ``UnpicklingError``, ``EOFError``, ``BadZipFile``, ``OSError``, and the ``RuntimeError``
        / ``AssertionError`` that torch's and SB3's loaders raise on a damaged file
    """
    try:
        yield
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError, RuntimeError, AssertionError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(
            f"checkpoint {Path(folder)} cannot be read: {name} is damaged ({detail}); this run cannot be "
            "resumed from it"
        ) from exc


def checkpoint_step(folder: str | Path) -> int:
    """The agent steps (``num_timesteps``) a checkpoint folder holds."""
    path = Path(folder) / STATE
    try:
        return int(json.loads(path.read_text())["num_timesteps"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is damaged ({exc}): resume from another run or start a new one") from None


class CheckpointCallback(BaseCallback):
    """Calls :func:`save_checkpoint` every ``every`` agent steps (summed over envs), between rounds of ``learn``
    (at the start of a rollout: the previous rollout's transitions are stored and its gradient steps done), and once
    more when ``learn`` ends.

    :param run_dir: the run directory (checkpoints go to ``<run_dir>/checkpoints``)
    :param every: agent steps between checkpoints (> 0)
    :param reward_wrapper: a :class:`~sb3_crptpro.sb3.reward.PrototypeIntrinsicReward` whose queue is saved too
    :param eval_env: the evaluation VecEnv, whose env states are saved too
    """

    def __init__(self, run_dir: str | Path, every: int, reward_wrapper: Any | None = None,
                 eval_env: VecEnv | None = None) -> None:  # fmt: skip
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.run_dir, self.every, self.reward_wrapper, self.eval_env = Path(run_dir), every, reward_wrapper, eval_env
        self.next_at = 0
        self.saved_at = -1

    def _on_training_start(self) -> None:
        self.next_at = (self.num_timesteps // self.every + 1) * self.every
        self.saved_at = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _save(self) -> None:
        save_checkpoint(self.run_dir, self.model, self.reward_wrapper, self.eval_env)
        self.saved_at = self.model.num_timesteps
        self.next_at = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        # Not in _on_step (SB3 calls it before the step's transition is stored) nor at the rollout's end (before
        # that rollout's gradient steps): here a resume continues exactly where the run was
        if self.model.num_timesteps >= self.next_at:
            self._save()

    def _on_training_end(self) -> None:
        if self.model.num_timesteps > self.saved_at:
            self._save()


def resumed_logger(run_dir: Path, step: int) -> Any:
    """SB3's logger for a resumed run: its TensorBoard run continues, and what the interrupted run logged after
    ``step`` is purged (``SummaryWriter(purge_step=)``: readers hide those events; the resumed run logs them again)."""
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
    from stable_baselines3.common.utils import get_latest_run_id
    from torch.utils.tensorboard import SummaryWriter

    class _Purging(TensorBoardOutputFormat):
        def __init__(self, folder: str) -> None:  # not super().__init__: its SummaryWriter has no purge_step
            self.writer = SummaryWriter(log_dir=folder, purge_step=step + 1)
            self._is_closed = False

    folder = str(run_dir / f"tb_{max(get_latest_run_id(str(run_dir), 'tb'), 1)}")
    return Logger(folder=folder, output_formats=[_Purging(folder)])


def continue_evaluations(callback: Any, path: Path, step: int) -> None:
    """Preload ``EvalCallback``'s history from ``evaluations.npz`` up to ``step`` (later ones are redone)."""
    import numpy as np

    if not path.is_file():
        return
    data = np.load(path)
    keep = data["timesteps"] <= step
    callback.evaluations_timesteps = [int(t) for t in data["timesteps"][keep]]
    callback.evaluations_results = [list(r) for r in data["results"][keep]]
    callback.evaluations_length = [list(r) for r in data["ep_lengths"][keep]]
    if callback.evaluations_results:
        callback.best_mean_reward = float(max(np.mean(r) for r in callback.evaluations_results))


class RunSnapshot:
    """The files of a run that a resume rewrites (``config.yml``, ``command.txt``, the model zips, ``monitor.csv``
    files, ``evaluations.npz``, the reward queue), as they were before it, and the TensorBoard files that existed:
    :meth:`restore` puts them back after a resume that failed before it proved it can continue
    (:class:`ResumeProofCallback`), so such a failure leaves the run as it found it.

    :param run_dir: the run directory
    :param model: file name of the run's final model (``config.yml``'s ``model``)
    """

    def __init__(self, run_dir: str | Path, model: str) -> None:
        run_dir = Path(run_dir)
        names = ["config.yml", "command.txt", model, "best_model.zip", "evaluations.npz", REWARD]
        paths = [run_dir / name for name in names] + sorted(run_dir.glob("*monitor.csv"))
        self.files = {path: path.read_bytes() if path.is_file() else None for path in paths}
        self.run_dir = run_dir
        self.tensorboard = set(run_dir.glob("tb_*/*"))

    def restore(self) -> None:
        """Write every file back as it was (remove those that did not exist), and remove new TensorBoard files."""
        for path, data in self.files.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_bytes(path, data)
        for path in set(self.run_dir.glob("tb_*/*")) - self.tensorboard:
            path.unlink(missing_ok=True)


class ResumeProofCallback(BaseCallback):
    """``proven`` once a resumed run has done one round of SB3's ``learn`` loop (a rollout with its gradient steps:
    the next rollout starts) or ``learn`` has ended: from then on the resumed run is known to work with the
    checkpoint's objects (an object pickled by an older version fails at the latest there)."""

    def __init__(self) -> None:
        super().__init__()
        self.proven = False
        self._rollouts = 0

    def _on_rollout_start(self) -> None:
        self._rollouts += 1
        self.proven = self.proven or self._rollouts > 1

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.proven = True
