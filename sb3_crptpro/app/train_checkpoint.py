"""Crash-safe downstream training (issue 14): periodic checkpoints of a run and what a resume needs from them.

A checkpoint is a folder ``<run>/checkpoints/step_<n>/`` holding the model zip (SB3's own format: weights, optimiser
states, ``num_timesteps``, entropy coefficient), the replay buffer (SB3's ``save_replay_buffer``), the intrinsic
reward wrapper's queue (when there is one) and the RNG states of ``random``, numpy and torch. It is written in full
first; only then does ``<run>/checkpoints/latest`` (a one-line text file, replaced atomically) name it, and older
folders are removed. A ``kill -9`` at any moment therefore leaves the previous complete checkpoint in charge: at most
one checkpoint interval of training is lost.

What a resume cannot restore: the physics state of the envs in the middle of an episode (dm_control cannot save
it); the resumed run starts new episodes, as after any reset.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from sb3_crptpro.data.store import atomic_write_bytes

__all__ = ["CheckpointCallback", "checkpoint_step", "latest_checkpoint", "restore_rng", "save_checkpoint"]

CHECKPOINTS = "checkpoints"
MODEL, BUFFER, REWARD, STATE = "model.zip", "replay_buffer.pkl", "intrinsic_reward.pt", "state.json"


def _rng_state() -> dict[str, Any]:
    return {"random": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_rng(folder: Path) -> None:
    """Restore the RNG states stored by :func:`save_checkpoint` in ``folder``."""
    state = torch.load(folder / "rng.pt", weights_only=False)  # our own file: tuples of ints and a byte tensor
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(run_dir: str | Path, model: Any, reward_wrapper: Any | None = None) -> Path:
    """Write a complete checkpoint of ``model`` (and the reward wrapper's queue), then point ``latest`` at it.

    :return: the checkpoint folder
    """
    root = Path(run_dir) / CHECKPOINTS
    folder = root / f"step_{model.num_timesteps}"
    if folder.exists():  # a partial folder left by a crash at this very step
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.save(folder / MODEL)
    model.save_replay_buffer(folder / BUFFER)
    if reward_wrapper is not None:
        reward_wrapper.save(folder / REWARD)
    torch.save(_rng_state(), folder / "rng.pt")
    state = {"num_timesteps": int(model.num_timesteps), "buffer_size": int(model.replay_buffer.size())}
    (folder / STATE).write_text(json.dumps(state))
    atomic_write_bytes(root / "latest", folder.name.encode() + b"\n")
    for old in root.glob("step_*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder ``latest`` names, or ``None`` when the run has no complete checkpoint."""
    pointer = Path(run_dir) / CHECKPOINTS / "latest"
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    return folder if (folder / STATE).is_file() else None


def checkpoint_step(folder: str | Path) -> int:
    """The agent steps (``num_timesteps``) a checkpoint folder holds."""
    path = Path(folder) / STATE
    try:
        return int(json.loads(path.read_text())["num_timesteps"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is damaged ({exc}): resume from another run or start a new one") from None


class CheckpointCallback(BaseCallback):
    """Calls :func:`save_checkpoint` every ``every`` agent steps (summed over envs), at the end of a rollout
    (all its transitions stored, before the gradient steps that follow it).

    :param run_dir: the run directory (checkpoints go to ``<run_dir>/checkpoints``)
    :param every: agent steps between checkpoints (> 0)
    :param reward_wrapper: a :class:`~sb3_crptpro.sb3.reward.PrototypeIntrinsicReward` whose queue is saved too
    """

    def __init__(self, run_dir: str | Path, every: int, reward_wrapper: Any | None = None) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.run_dir, self.every, self.reward_wrapper = Path(run_dir), every, reward_wrapper
        self.next_at = 0

    def _on_training_start(self) -> None:
        self.next_at = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # Not in _on_step: SB3 calls it before the step's transition is stored, a checkpoint would miss it
        if self.num_timesteps >= self.next_at:
            save_checkpoint(self.run_dir, self.model, self.reward_wrapper)
            self.next_at = (self.num_timesteps // self.every + 1) * self.every
