"""Domain-balanced batches of ``(stack_t, stack_t+1)`` from several collected domains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.data.domain import DomainDataset
from sb3_crptpro.data.store import MANIFEST_NAME, DatasetError

__all__ = ["SAMPLING_MODES", "Batch", "CrossDomainDataset", "find_domain_dirs"]

#: ``round_robin``: each batch comes from one domain, domains in turn (the reference schedule).
#: ``mixed``: each batch is split evenly over the domains.
SAMPLING_MODES = ("round_robin", "mixed")


@dataclass
class Batch:
    """One sampled batch."""

    #: ``uint8 [B, 3k, H, W]`` frame stacks at time t
    obs: torch.Tensor
    #: ``uint8 [B, 3k, H, W]`` frame stacks at time t + 1
    next_obs: torch.Tensor
    #: ``int64 [B]`` index of the domain each row comes from (order of :attr:`CrossDomainDataset.tasks`)
    domain: torch.Tensor
    #: ``float32 [B, max_state_dim]`` proprioceptive state at time t, zero-padded past each domain's state size
    state: torch.Tensor
    #: ``float32 [B, max_action_dim]`` action taken between ``obs`` and ``next_obs``, zero-padded past each domain's
    #: action size
    action: torch.Tensor


def find_domain_dirs(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Expand dataset paths: a domain directory is kept, a folder of domain directories gives all of them (sorted)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if (path / MANIFEST_NAME).is_file():
            found.append(path)
        elif path.is_dir():
            children = sorted(p for p in path.iterdir() if (p / MANIFEST_NAME).is_file())
            if not children:
                raise DatasetError(f"{path} holds no dataset (no {MANIFEST_NAME} in it or its subfolders)")
            found.extend(children)
        elif path.exists():
            raise DatasetError(f"dataset path {path} is a file; a dataset is a folder written by `sb3-crptpro collect`")
        else:
            raise DatasetError(f"dataset path {path} does not exist")
    if not found:
        raise DatasetError("no dataset paths given")
    return found


class CrossDomainDataset:
    """Several domains' datasets behind one sampler.

    :param paths: domain directories, or a folder containing them
    :param frame_stack: frames per stack (``k``); observations have ``3k`` channels
    :param mode: one of :data:`SAMPLING_MODES`
    :param verify: check shard checksums when opening
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        frame_stack: int = 3,
        mode: str = "round_robin",
        verify: bool = True,
    ) -> None:
        if mode not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {mode!r}; choose one of {SAMPLING_MODES}")
        self.mode = mode
        self.frame_stack = frame_stack
        self.domains = [DomainDataset(p, frame_stack=frame_stack, verify=verify) for p in find_domain_dirs(paths)]
        shapes = {d.frame_shape for d in self.domains}
        if len(shapes) > 1:
            raise DatasetError(f"domains have different frame shapes {sorted(shapes)}; collect them at one image size")
        presets = {d.env_config["render"] for d in self.domains}
        if len(presets) > 1:
            warn_user(f"datasets mix render presets {sorted(presets)}")
        self._cursor = 0

    @property
    def tasks(self) -> list[str]:
        return [d.task for d in self.domains]

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return self.domains[0].obs_shape

    @property
    def render_presets(self) -> list[str]:
        return sorted({d.env_config["render"] for d in self.domains})

    @property
    def max_state_dim(self) -> int:
        return max(d.state_dim for d in self.domains)

    @property
    def max_action_dim(self) -> int:
        return max(d.action_dim for d in self.domains)

    def __len__(self) -> int:
        return sum(len(d) for d in self.domains)

    def _domain_counts(self, batch_size: int, generator: torch.Generator) -> np.ndarray:
        n = len(self.domains)
        counts = np.zeros(n, np.int64)
        if self.mode == "round_robin":
            counts[self._cursor % n] = batch_size
            self._cursor += 1
        else:
            counts[:] = batch_size // n
            extra = torch.randperm(n, generator=generator)[: batch_size % n].numpy()
            counts[extra] += 1
        return counts

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """Draw ``batch_size`` transitions uniformly within domains, domains balanced as :attr:`mode` says."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        counts = self._domain_counts(batch_size, generator)
        shape = (batch_size, *self.obs_shape)
        obs = torch.empty(shape, dtype=torch.uint8)
        next_obs = torch.empty(shape, dtype=torch.uint8)
        domain = torch.empty(batch_size, dtype=torch.int64)
        state = torch.zeros(batch_size, self.max_state_dim, dtype=torch.float32)
        action = torch.zeros(batch_size, self.max_action_dim, dtype=torch.float32)
        start = 0
        for d, count in enumerate(counts):
            if count == 0:
                continue
            rows = slice(start, start + int(count))
            dataset = self.domains[d]
            indices = torch.randint(len(dataset), (int(count),), generator=generator).numpy()
            _, _, states = dataset.transitions(indices, obs[rows].numpy(), next_obs[rows].numpy(),
                                               action[rows, : dataset.action_dim].numpy())  # fmt: skip
            state[rows, : dataset.state_dim] = torch.from_numpy(states)
            domain[rows] = d
            start += int(count)
        return Batch(obs=obs, next_obs=next_obs, domain=domain, state=state, action=action)

    def state_dict(self) -> dict[str, Any]:
        """Sampler position (for exact checkpoint/resume)."""
        return {"cursor": self._cursor, "mode": self.mode, "tasks": self.tasks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        recorded = state.get("tasks")
        if recorded != self.tasks:
            if sorted(recorded or []) == sorted(self.tasks):  # domain ids and the round-robin turn follow the order
                raise DatasetError(f"sampler state is for the same tasks in another order: pass the datasets in the "
                                   f"recorded order ({' '.join(recorded)}), not {' '.join(self.tasks)}")  # fmt: skip
            raise DatasetError(f"sampler state is for tasks {recorded}, this dataset has {self.tasks}")
        self._cursor = int(state["cursor"])
