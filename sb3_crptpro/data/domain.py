"""Read one domain's dataset: memory-mapped shards, frame stacks rebuilt on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sb3_crptpro.common.folder_lock import folder_in_use
from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.data.store import FLAG_FIRST, DatasetError, ShardReader, read_manifest

__all__ = ["DomainDataset"]


class DomainDataset:
    """All transitions of one collected domain.

    Frames are memory-mapped (nothing is loaded into RAM up front). Transition ``i`` pairs the frame stack ending at
    frame ``j - 1`` with the one ending at frame ``j`` for the ``i``-th non-first frame ``j``; a stack never reaches
    back past the first frame of its episode: like the env after ``reset``, it repeats that first frame instead.

    :param path: the domain directory (holds ``manifest.json``)
    :param frame_stack: frames per stack when reading (may differ from the one recorded at collection)
    :param verify: check every shard's sha256 against the manifest (sizes are always checked)
    :raises DatasetError: ``collect`` (another process) is writing the dataset now; no shards; a shard missing,
        cut short or (with ``verify``) changed
    :warns UserWarning: the collection that wrote it stopped before its last shard (``complete`` false in the
        manifest): what is there is read
    """

    def __init__(self, path: str | Path, frame_stack: int = 3, verify: bool = True) -> None:
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        self.path = Path(path)
        if folder_in_use(self.path):
            raise DatasetError(f"dataset {self.path} is being written by another process (collect): wait for it to "
                               "finish, then read it")  # fmt: skip
        self.manifest: dict[str, Any] = read_manifest(self.path)
        if not self.manifest["shards"]:
            raise DatasetError(f"dataset {self.path} has no shards yet")
        if not self.manifest.get("complete", True):
            warn_user(f"dataset {self.path} is incomplete ({len(self.manifest['shards'])} shards): its collection "
                      "stopped before the end; `sb3-crptpro collect --resume` with the same arguments finishes it. "
                      "Reading what is there.")  # fmt: skip
        self.frame_stack = frame_stack
        self.shards = [ShardReader(self.path, entry, self.manifest, verify) for entry in self.manifest["shards"]]
        # episode start (local frame index) of every frame, and the frames that end a transition
        self._episode_start: list[np.ndarray] = []
        self._transition_frames: list[np.ndarray] = []
        for shard in self.shards:
            first = (np.asarray(shard.flags) & FLAG_FIRST) != 0
            if len(first) and not first[0]:
                raise DatasetError(f"shard {shard.path} does not start with an episode's first frame")
            starts = np.flatnonzero(first)
            self._episode_start.append(starts[np.cumsum(first) - 1].astype(np.int64))
            self._transition_frames.append(np.flatnonzero(~first).astype(np.int64))
        counts = [len(t) for t in self._transition_frames]
        self._cumulative = np.cumsum([0, *counts])

    @property
    def task(self) -> str:
        return str(self.manifest["env"]["task"])

    @property
    def env_config(self) -> dict[str, Any]:
        """The env config recorded at collection (task, image size, action repeat, camera, render preset...)."""
        return dict(self.manifest["env"])

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest["shapes"]["frame"])  # type: ignore[return-value]

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        c, h, w = self.frame_shape
        return (c * self.frame_stack, h, w)

    @property
    def state_dim(self) -> int:
        return int(self.manifest["shapes"]["state_dim"])

    @property
    def action_dim(self) -> int:
        return int(self.manifest["shapes"]["action_dim"])

    def __len__(self) -> int:
        return int(self._cumulative[-1])

    def locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map transition indices to ``(shard index, local index of the frame ending the transition)``."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"transition index out of range [0, {len(self)})")
        shard = np.searchsorted(self._cumulative, indices, side="right") - 1
        local = np.empty_like(indices)
        for s in np.unique(shard):
            mask = shard == s
            local[mask] = self._transition_frames[s][indices[mask] - self._cumulative[s]]
        return shard, local

    def transitions(
        self,
        indices: np.ndarray,
        out_obs: np.ndarray | None = None,
        out_next: np.ndarray | None = None,
        out_actions: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame stacks ``(obs_t, obs_tp1)`` as ``uint8 [n, 3k, H, W]`` and ``state_t`` ``float32 [n, S]``.

        ``out_obs``/``out_next`` (C-contiguous ``uint8 [n, 3k, H, W]``) are filled in place when given.
        ``out_actions`` (``float32 [n, action_dim]``), when given, is filled with each transition's action: the one
        the collecting policy took between the two stacks (stored with the frame ending the transition,
        ``store.py``).
        """
        shard_ids, local = self.locate(indices)
        n, k = len(local), self.frame_stack
        c, h, w = self.frame_shape
        obs = np.empty((n, k * c, h, w), np.uint8) if out_obs is None else out_obs
        nxt = np.empty((n, k * c, h, w), np.uint8) if out_next is None else out_next
        states = np.empty((n, self.state_dim), np.float32)
        obs_view = obs.reshape(n, k, c, h, w)
        next_view = nxt.reshape(n, k, c, h, w)
        offsets = np.arange(-k, 1)  # frames j-k .. j
        for s in np.unique(shard_ids):
            rows = np.flatnonzero(shard_ids == s)
            j = local[rows]
            frame_idx = np.maximum(j[:, None] + offsets[None, :], self._episode_start[s][j][:, None])
            frames = self.shards[s].frames
            obs_view[rows] = frames[frame_idx[:, :k]]
            next_view[rows] = frames[frame_idx[:, 1:]]
            states[rows] = self.shards[s].states[j - 1]
            if out_actions is not None:
                out_actions[rows] = self.shards[s].arrays["actions"][j]
        return obs, nxt, states

    def episode_ids(self) -> np.ndarray:
        """Episode number (0-based, over the whole domain) of every transition, in transition order."""
        ids, offset = [], 0
        for starts, frames in zip(self._episode_start, self._transition_frames, strict=True):
            unique_starts, inverse = np.unique(starts[frames], return_inverse=True)
            ids.append(inverse + offset)
            offset += len(unique_starts)
        return np.concatenate(ids) if ids else np.empty(0, np.int64)
