"""Prototypical pretraining with CRPTpro's intrinsic loss (PAPER.md, "Losses"), checkpoint/resume and DDP.

One update: sample ``(obs, next_obs)`` from the cross-domain dataset, random-shift both, predict the online
prototype scores of ``obs``, compute Sinkhorn targets from the EMA target network on ``next_obs``, minimise
``L_comp + alpha * L_intr`` with Adam, then move the target encoder/projector towards the online ones.

Runs unchanged under ``torchrun --nproc_per_node=N``: every rank samples its own batches (own generator, own
domain phase), gradients are averaged by DistributedDataParallel, only rank 0 logs and writes files.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from sb3_crptpro.common.artifact import load_artifact, save_artifact
from sb3_crptpro.common.folder_lock import exclusive_folder
from sb3_crptpro.common.networks import Encoder, Predictor, Projector, Prototypes, ema_update
from sb3_crptpro.common.progress import progress_bar
from sb3_crptpro.common.threads import batch_threads, pinned_batch_threads
from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.data.sampler import CrossDomainDataset
from sb3_crptpro.data.store import atomic_write_bytes, manifest_sha256
from sb3_crptpro.envs.tasks import check_stack_fits
from sb3_crptpro.pretraining.augment import random_crop, random_shift
from sb3_crptpro.pretraining.diagnostics import (
    assignment_entropy,
    collapse_diagnostics,
    collapse_warning,
    prototype_cosine_stats,
    prototype_usage,
)
from sb3_crptpro.pretraining.losses import (
    comparative_loss,
    inverse_dynamics_loss,
    prototype_spread_loss,
    total_loss,
)

#: the command lines that trained a work dir's run, one a line (the artifact's ``provenance.sessions``)
SESSIONS_NAME = "sessions.txt"

__all__ = ["PRETRAIN_PRESETS", "CollapseWarning", "PretrainConfig", "Pretrainer", "save_random_init"]


class CollapseWarning(UserWarning):
    """Pretraining ended in the trivial solution (see :func:`~sb3_crptpro.pretraining.diagnostics.collapse_warning`)."""


CHECKPOINT_NAME = "checkpoint.pt"
# fields that may change between an interrupted run and its resumption without changing the trajectory
_RESUMABLE_CHANGES = {"updates", "log_every", "checkpoint_every", "progress", "preset", "probe_frames"}

#: ``paper``: the reference exactly (the :class:`PretrainConfig` defaults); ``default``: the setting selected by
#: ``benchmarks/collapse_study.py`` (issue 12), used by ``sb3-crptpro pretrain``, ``pretrain_encoder`` and the demo
PRETRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "default": {"centering": "projections", "center_momentum": 0.9, "sinkhorn_temperature": 0.05},
}


@dataclass
class PretrainConfig:
    """Pretraining hyperparameters; defaults are the reference values (PAPER.md)."""

    #: number of updates (reference: 16,666 rounds x 3 domains ~ 50k)
    updates: int = 50_000
    #: batch size per update, summed over processes under DDP (reference 512)
    batch_size: int = 512
    #: Adam learning rate for encoder + projector + predictor + prototypes
    lr: float = 1e-4
    #: softmax / Sinkhorn temperature T
    temperature: float = 0.1
    #: number of prototypes M
    num_protos: int = 512
    #: projector output size
    proj_dim: int = 128
    #: predictor hidden size
    pred_dim: int = 512
    #: Sinkhorn-Knopp iterations
    sinkhorn_iters: int = 3
    #: EMA rate of the target encoder/projector
    ema_tau: float = 0.05
    #: weight of CRPTpro's intrinsic (prototype-spreading) loss; 0 gives plain Proto-RL
    alpha: float = 0.005
    #: ``round_robin`` (one domain per batch, in turn; the reference) or ``mixed``
    sampling: str = "round_robin"
    #: ``shift`` (pad 4 + crop back, the reference), ``crop`` (RAD crop to ``crop_size``) or ``none``
    augment: str = "shift"
    #: padding of the random shift
    pad: int = 4
    #: output size of ``augment="crop"`` (default: image size - 2 * pad)
    crop_size: int | None = None
    #: root seed (weights init, sampling, augmentation)
    seed: int = 0
    #: log metrics every N updates
    log_every: int = 100
    #: write a checkpoint every N updates (0: only at the end)
    checkpoint_every: int = 1000
    #: ``auto`` (cuda if available), ``cpu``, ``cuda``, ``cuda:1``...
    device: str = "auto"
    #: show a progress bar
    progress: bool = True
    #: name of the preset these values came from (recorded in the artifact; see :data:`PRETRAIN_PRESETS`)
    preset: str = "paper"
    #: temperature of the target scores inside Sinkhorn-Knopp; ``None`` uses ``temperature`` (the reference). SwAV
    #: (Caron et al. 2020) uses 0.05 against a softmax temperature of 0.1: sharper, less uniform targets
    sinkhorn_temperature: float | None = None
    #: keep the prototypes fixed for the first K updates (SwAV ``freeze_prototypes_niters``: prototypes that move in
    #: the first iterations are a known cause of collapse, facebookresearch/swav issue 69); 0 = never (reference)
    freeze_prototypes: int = 0
    #: number of recent normalised target projections balanced together with the batch in Sinkhorn (SwAV's queue for
    #: batches smaller than the number of prototypes); 0 = no queue (reference)
    queue_length: int = 0
    #: ``none`` (reference) or ``projections``: subtract a running mean of the target projections before they are
    #: normalised (DINO's centring of the teacher output, Caron et al. 2021, eq. 4); the artifact's projector carries
    #: the final centre in its bias, so every consumer reads centred projections
    centering: str = "none"
    #: momentum of the running centre (DINO: 0.9)
    center_momentum: float = 0.9
    #: probe frames per domain for the collapse diagnostics logged every ``log_every`` updates (0: off)
    probe_frames: int = 64
    #: weight of an auxiliary inverse-dynamics loss (not CRPTpro's; 0 = off, the reference): an MLP reads the recorded
    #: action from the online projections of ``obs`` and ``next_obs`` (:func:`~.losses.inverse_dynamics_loss`); costs
    #: one more encoder pass with gradient per update
    inverse_dynamics: float = 0.0

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides: Any) -> PretrainConfig:
        """A config from a :data:`PRETRAIN_PRESETS` entry, with ``overrides`` on top.

        :raises ValueError: unknown preset
        """
        if preset not in PRETRAIN_PRESETS:
            raise ValueError(f"unknown pretraining preset {preset!r}; choose one of {sorted(PRETRAIN_PRESETS)}")
        return cls(**{**PRETRAIN_PRESETS[preset], **overrides, "preset": preset})

    def __post_init__(self) -> None:
        for name in ("updates", "batch_size", "num_protos", "proj_dim", "pred_dim", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.augment not in ("shift", "crop", "none"):
            raise ValueError(f"augment must be 'shift', 'crop' or 'none', got {self.augment!r}")
        if not 0 < self.ema_tau <= 1 or self.temperature <= 0 or self.lr <= 0 or self.alpha < 0:
            raise ValueError("need 0 < ema_tau <= 1, temperature > 0, lr > 0 and alpha >= 0")
        if self.centering not in ("none", "projections"):
            raise ValueError(f"centering must be 'none' or 'projections', got {self.centering!r}")
        if self.sinkhorn_temperature is not None and self.sinkhorn_temperature <= 0:
            raise ValueError(f"sinkhorn_temperature must be > 0, got {self.sinkhorn_temperature}")
        if min(self.freeze_prototypes, self.queue_length, self.probe_frames) < 0 or not 0 <= self.center_momentum < 1:
            raise ValueError("need freeze_prototypes, queue_length, probe_frames >= 0 and 0 <= center_momentum < 1")
        if not (math.isfinite(self.inverse_dynamics) and self.inverse_dynamics >= 0):
            raise ValueError(f"inverse_dynamics must be a finite weight >= 0, got {self.inverse_dynamics}")
        if self.pad < 0 or self.checkpoint_every < 0:
            raise ValueError(f"need pad >= 0 and checkpoint_every >= 0, got {self.pad} and {self.checkpoint_every}")
        floats = {k: getattr(self, k) for k in ("lr", "temperature", "ema_tau", "alpha", "center_momentum")}
        if not all(math.isfinite(v) for v in floats.values()):
            raise ValueError(f"need finite values, got {floats}")
        try:
            torch.device("cpu" if self.device == "auto" else self.device)
        except RuntimeError:
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}") from None


class _OnlineLosses(nn.Module):
    """Online encoder, projector, predictor and prototypes (and, with ``config.inverse_dynamics``, the
    inverse-dynamics head); ``forward`` returns the losses (one DDP module)."""

    def __init__(self, obs_shape: tuple[int, int, int], config: PretrainConfig, action_dims: list[int]) -> None:
        super().__init__()
        self.encoder = Encoder(obs_shape)
        self.projector = Projector(self.encoder.repr_dim, config.proj_dim)
        self.predictor = Predictor(config.proj_dim, config.pred_dim)
        self.prototypes = Prototypes(config.proj_dim, config.num_protos)
        self.temperature, self.iters = config.temperature, config.sinkhorn_iters
        self.sinkhorn_temperature = config.sinkhorn_temperature
        self.inverse_head: nn.Module | None = None
        if config.inverse_dynamics:
            self.inverse_head = nn.Sequential(
                nn.Linear(2 * config.proj_dim, config.pred_dim),
                nn.ReLU(),
                nn.Linear(config.pred_dim, len(action_dims) * max(action_dims)),
            )
        self.register_buffer("action_dims", torch.tensor(action_dims, dtype=torch.int64), persistent=False)

    def forward(
        self, obs: torch.Tensor, proj_t: torch.Tensor, queue: torch.Tensor | None = None, batch: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(L_comp, L_intr, q_t, L_inv)``; ``L_inv`` is ``None`` without the inverse-dynamics head, else it reads
        ``batch``'s augmented ``next_obs``, ``action`` and ``domain``."""
        z = self.projector(self.encoder(obs))
        pred_s = self.predictor(z)
        comp, q_t = comparative_loss(pred_s, proj_t, self.prototypes.weight, self.temperature, self.iters,
                                     sinkhorn_temperature=self.sinkhorn_temperature, queue=queue)  # fmt: skip
        inverse = None
        if self.inverse_head is not None:
            next_obs, action, domain = batch
            z_next = self.projector(self.encoder(next_obs))
            predicted = self.inverse_head(torch.cat([z, z_next], dim=1))
            inverse = inverse_dynamics_loss(predicted, action, domain, self.action_dims)
        return comp, prototype_spread_loss(self.prototypes.weight), q_t, inverse


def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this torch build sees no CUDA GPU; use --device cpu (or auto)")
    if name == "cuda" and dist.is_initialized():
        return torch.device("cuda", local_rank)
    return torch.device(name)


class Pretrainer:
    """Fit CRPTpro on a :class:`~sb3_crptpro.data.CrossDomainDataset`.

    :param config: hyperparameters
    :param dataset: the cross-domain dataset (its ``mode`` is set from ``config.sampling``)
    :param work_dir: where metrics (``metrics.csv``, TensorBoard events) and checkpoints go; ``None`` keeps
        nothing on disk (no checkpoints)
    """

    def __init__(self, config: PretrainConfig, dataset: CrossDomainDataset, work_dir: str | Path | None = None):
        self.config = config
        self.dataset = dataset
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if config.device.startswith("cuda") else "gloo")
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.device = _resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
        if config.batch_size % self.world:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by {self.world} processes")
        size = dataset.obs_shape[-1]
        check_stack_fits(dataset.obs_shape[0] // 3, size)
        if config.augment != "none" and 2 * config.pad > size:
            raise ValueError(f"pad {config.pad} is more than half of the {size} px frames: the random shift would "
                             f"mostly show padding (the reference pads 4 on 84 px)")  # fmt: skip
        dataset.mode = config.sampling
        dataset.load_state_dict({**dataset.state_dict(), "cursor": self.rank})  # ranks start on different domains

        torch.manual_seed(config.seed)  # same initial weights on every rank
        self.online = _OnlineLosses(dataset.obs_shape, config, [d.action_dim for d in dataset.domains]).to(self.device)
        self.target_encoder = copy.deepcopy(self.online.encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.online.projector).requires_grad_(False)
        self.model: nn.Module = self.online
        if dist.is_initialized():
            self.model = nn.parallel.DistributedDataParallel(self.online)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.lr)
        # one CPU generator drives sampling and augmentation offsets (augmentation itself runs on self.device)
        self.generator = torch.Generator().manual_seed(config.seed * 1_000_003 + 7919 * self.rank + 1)
        self.update = 0
        self.losses: list[float] = []
        self._seconds_before = 0.0  # wall time of earlier sessions up to the restored checkpoint
        #: torch threads of the updates, fixed for the run (the count changes the float results): recorded in the
        #: checkpoint and reused on resume; ``None`` until :meth:`fit` decides it (common.threads)
        self.batch_thread_count: int | None = None
        #: the command lines that trained the run in ``work_dir``, first to last (set by :meth:`fit`)
        self.sessions: list[str] = []
        self._session_start: float | None = None
        self._logger: Any = None
        # remedies' state (issue 12): running centre of the target projections, FIFO queue of normalised ones
        self.center = torch.zeros(config.proj_dim, device=self.device)
        self.queue = torch.zeros(config.queue_length, config.proj_dim, device=self.device)
        self.queue_filled = 0
        self._probe: tuple[torch.Tensor, torch.Tensor, list[str]] | None = None
        self.diagnostics: dict[str, float] = {}

    # ------------------------------------------------------------------ one update
    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.augment == "shift":
            return random_shift(x, c.pad, self.generator)
        if c.augment == "crop":
            return random_crop(x, c.crop_size or x.shape[-1] - 2 * c.pad, self.generator)
        return x

    def _read_targets(self, proj_t: torch.Tensor) -> torch.Tensor:
        """Target projections as the loss reads them: minus the running centre when centring is on."""
        return proj_t - self.center if self.config.centering == "projections" else proj_t

    @torch.no_grad()
    def _update_center(self, proj_t: torch.Tensor) -> None:
        """DINO's centre update, ``c <- m c + (1 - m) mean(proj_t)`` (Caron et al. 2021, eq. 4), after its use."""
        mean = proj_t.mean(dim=0)
        if dist.is_initialized():
            dist.all_reduce(mean)
            mean /= self.world
        self.center.mul_(self.config.center_momentum).add_(mean, alpha=1 - self.config.center_momentum)

    @torch.no_grad()
    def _enqueue(self, z_t: torch.Tensor) -> None:
        """Push normalised target projections into the FIFO queue (newest first, as in SwAV)."""
        n = min(len(z_t), len(self.queue))
        if n:
            self.queue = torch.cat([F.normalize(z_t[:n], dim=1), self.queue[:-n]])
            self.queue_filled = min(self.queue_filled + n, len(self.queue))

    def step(self) -> dict[str, float]:
        """Run one update and return its metrics (losses always, coverage metrics on logging updates)."""
        c = self.config
        batch = self.dataset.sample(c.batch_size // self.world, self.generator)
        obs = self._augment(batch.obs.to(self.device, non_blocking=True))
        next_obs = self._augment(batch.next_obs.to(self.device, non_blocking=True))
        frozen = self.update < c.freeze_prototypes
        if not frozen:
            self.online.prototypes.normalize_()  # reference: rows renormalised before every update
        with torch.no_grad():
            proj_raw = self.target_projector(self.target_encoder(next_obs))
            proj_t = self._read_targets(proj_raw)
        queue = self.queue[: self.queue_filled] if self.queue_filled else None
        extra = None
        if c.inverse_dynamics:
            extra = (next_obs, batch.action.to(self.device), batch.domain.to(self.device))
        comp, intr, q_t, inverse = self.model(obs, proj_t, queue, extra)
        loss = total_loss(comp, intr, c.alpha)
        if inverse is not None:
            loss = loss + c.inverse_dynamics * inverse
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if frozen:
            self.online.prototypes.weight.grad = None  # Adam skips parameters without a gradient: bit-identical
        self.optimizer.step()
        if c.centering == "projections":
            self._update_center(proj_raw)
        self._enqueue(proj_t)
        ema_update(self.target_encoder, self.online.encoder, c.ema_tau)
        ema_update(self.target_projector, self.online.projector, c.ema_tau)
        self.update += 1
        metrics = {"loss": loss.item(), "loss_comp": comp.item(), "loss_intr": intr.item()}
        if inverse is not None:
            metrics["loss_inverse"] = inverse.item()
        if self.update % c.log_every == 0 or self.update == c.updates:
            # coverage of this batch: usage counts the prototype each target assignment favours
            metrics["assign_entropy"] = assignment_entropy(q_t)
            metrics.update(prototype_usage(q_t, c.num_protos))
            metrics.update(prototype_cosine_stats(self.online.prototypes.weight))
            # the same without Sinkhorn balancing (which spreads q_t by construction): nearest prototype per sample
            with torch.no_grad():
                raw = F.normalize(proj_t, dim=1) @ F.normalize(self.online.prototypes.weight, dim=1).T
            usage = prototype_usage(raw, c.num_protos)
            metrics["n_used_raw"], metrics["usage_entropy_raw"] = usage["n_used"], usage["usage_entropy"]
            if c.probe_frames:
                self.diagnostics = self.probe_diagnostics()
                metrics.update({f"probe/{k}": v for k, v in self.diagnostics.items()})
        return metrics

    # ------------------------------------------------------------------ collapse diagnostics
    def _probe_batch(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Fixed probe frames: ``probe_frames`` per domain, drawn once with a generator of their own (seed 12345)."""
        if self._probe is None:
            generator = torch.Generator().manual_seed(12345)
            obs, next_obs, labels = [], [], []
            for domain in self.dataset.domains:
                indices = torch.randint(len(domain), (self.config.probe_frames,), generator=generator).numpy()
                o, n, _ = domain.transitions(indices)
                obs.append(torch.from_numpy(o))
                next_obs.append(torch.from_numpy(n))
                labels += [domain.task] * len(o)
            self._probe = (torch.cat(obs), torch.cat(next_obs), labels)
        return self._probe

    @torch.no_grad()
    def probe_diagnostics(self) -> dict[str, float]:
        """Collapse diagnostics (:func:`~sb3_crptpro.pretraining.diagnostics.collapse_diagnostics`) on the fixed
        probe frames.

        Uses the target network on un-augmented frames (what the Sinkhorn targets see), the reference Sinkhorn for
        the probe comparative loss, and the projections as the artifact will be read (centre subtracted).
        """
        obs, next_obs, labels = self._probe_batch()
        protos = self.online.prototypes.weight
        z_raw = torch.cat([self.target_projector(self.target_encoder(x.to(self.device))) for x in next_obs.split(256)])
        z_read = self._read_targets(z_raw)
        pred = torch.cat([self.online.predictor(self.online.projector(self.online.encoder(x.to(self.device))))
                          for x in obs.split(256)])  # fmt: skip
        comp, _ = comparative_loss(pred, z_read, protos, self.config.temperature, self.config.sinkhorn_iters)
        return collapse_diagnostics(z_raw.cpu(), z_read.cpu(), protos.cpu(), labels, float(comp))

    # ------------------------------------------------------------------ loop
    @property
    def holds_earlier_run(self) -> bool:
        """Whether the work dir holds an earlier run (a checkpoint or ``metrics.csv``): :meth:`fit` then needs
        ``resume=True``."""
        return (
            self.work_dir is not None
            and not self.rank
            and any((self.work_dir / name).exists() for name in (CHECKPOINT_NAME, "metrics.csv"))
        )

    def fit(self, resume: bool = False, command: str | None = None) -> dict[str, Any]:
        """Train up to ``config.updates`` updates (continuing from the last checkpoint when ``resume``), holding the
        work dir's lock (:func:`~sb3_crptpro.common.folder_lock.exclusive_folder`) throughout.

        :param command: the command line of this session; once the checks have passed and updates are about to
            run, it is appended to ``<work_dir>/sessions.txt`` (:attr:`sessions`); a refused call records nothing
        :return: training stats: updates, final losses and coverage, ``wall_time_s`` (seconds, summed over every
            session of a resumed run up to the checkpoint each one resumed from), ``session_wall_time_s`` and
            ``updates_per_s`` (this call alone)
        :raises FolderInUseError: another process is writing the work dir
        :raises ValueError: an earlier run without ``resume``; a checkpoint of another config or past ``updates``
        """
        with contextlib.ExitStack() as lock:
            if self.work_dir is not None and not self.rank:
                lock.enter_context(exclusive_folder(self.work_dir, "pretraining work dir"))
            return self._fit(resume, command)

    def _fit(self, resume: bool, command: str | None) -> dict[str, Any]:
        c = self.config
        if not resume and self.holds_earlier_run:
            raise ValueError(f"{self.work_dir} holds an earlier run (checkpoint or metrics.csv): resume it (--resume) "
                             "or pretrain into another work dir")  # fmt: skip
        if resume and self.load_checkpoint() and self.update > c.updates:
            raise ValueError(f"the checkpoint in {self.work_dir} is at update {self.update}, past updates={c.updates}: "
                             f"ask for at least {self.update} updates")  # fmt: skip
        if resume:  # only now that the resume can go on: a refused one leaves every file as it was
            self._drop_metrics_after(self.update)
        if command is not None and self.work_dir is not None and not self.rank:
            # only a session that trains joins the record (a refused or a no-op resume trains nothing)
            self.sessions = _record_session(self.work_dir, command if self.update < c.updates else None, resume)
        start, start_update, last_log = time.perf_counter(), self.update, time.perf_counter()
        self._session_start = start
        bar = progress_bar(c.updates, "pretrain", "upd", bool(c.progress and not self.rank), initial=self.update)
        metrics: dict[str, float] = self._last_logged_metrics() if self.update >= c.updates else {}
        # the thread count of the updates is fixed for the run (it changes the float results): the one a resumed
        # checkpoint recorded, else the free cores now (common.threads)
        with pinned_batch_threads(self.batch_thread_count) as self.batch_thread_count:
            try:
                while self.update < c.updates:
                    with batch_threads():
                        metrics = self.step()
                    self.losses.append(metrics["loss"])
                    bar.update(1)
                    if "n_used" in metrics:
                        now = time.perf_counter()
                        metrics["updates_per_s"] = c.log_every / max(now - last_log, 1e-9)
                        last_log = now
                        bar.set_postfix(loss=f"{metrics['loss']:.3f}", used=int(metrics["n_used"]))
                        self._log(metrics)
                    if c.checkpoint_every and self.update % c.checkpoint_every == 0:
                        self.save_checkpoint()
            finally:
                bar.close()
            if self.work_dir is not None and (not c.checkpoint_every or self.update % c.checkpoint_every):
                self.save_checkpoint()
            elapsed = time.perf_counter() - start
            if c.probe_frames and not self.diagnostics:
                with batch_threads():
                    self.diagnostics = self.probe_diagnostics()
        warning = collapse_warning(self.diagnostics, c.num_protos, c.preset, self.update) if self.diagnostics else None
        if warning and not self.rank:
            warn_user(warning, CollapseWarning)
        return {
            "updates": self.update,
            "world_size": self.world,
            # all sessions of a resumed run (up to the checkpoint each resumed from), then this session alone
            "wall_time_s": self._seconds_before + elapsed,
            "session_wall_time_s": elapsed,
            "updates_per_s": (self.update - start_update) / max(elapsed, 1e-9),
            "final": metrics,
            "diagnostics": self.diagnostics,
            "collapsed": warning is not None,
            # the centre folded into the artifact's projector bias (raw projection = artifact projection + centre)
            **({"projection_center": self.center.cpu().tolist()} if c.centering == "projections" else {}),
        }

    def _log(self, metrics: dict[str, float]) -> None:
        if self.rank or self.work_dir is None:
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self._logger is None:
            from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat

            self._logger = Logger(str(self.work_dir), [TensorBoardOutputFormat(str(self.work_dir / "tb"))])
        for key, value in metrics.items():
            self._logger.record(f"pretrain/{key}", value)
        self._logger.dump(self.update)
        path = self.work_dir / "metrics.csv"
        fields = ["update", *sorted(metrics)]
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({"update": self.update, **metrics})

    def _last_logged_metrics(self) -> dict[str, float]:
        """The last ``metrics.csv`` row (a resumed run that has no update left reports it as its final metrics)."""
        path = None if self.work_dir is None else self.work_dir / "metrics.csv"
        if path is None or not path.is_file():
            return {}
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        return {k: float(v) for k, v in rows[-1].items() if k != "update" and v not in ("", None)} if rows else {}

    def _drop_metrics_after(self, update: int) -> None:
        """Remove the ``metrics.csv`` rows of updates after the checkpoint (and a row cut short by a crash): they are
        redone, so a resumed run's file equals an uninterrupted run's (apart from the timing column)."""
        path = None if self.work_dir is None or self.rank else self.work_dir / "metrics.csv"
        if path is None or not path.is_file():
            return
        lines = path.read_bytes().decode().splitlines(keepends=True)  # csv's own \r\n endings kept
        width = len(lines[0].split(",")) if lines else 0

        def keep(line: str) -> bool:
            cells = line.rstrip("\r\n").split(",")
            return line.endswith("\n") and len(cells) == width and cells[0].isdigit() and int(cells[0]) <= update

        atomic_write_bytes(path, "".join(lines[:1] + [line for line in lines[1:] if keep(line)]).encode())

    # ------------------------------------------------------------------ checkpoints
    def _gather(self, value: Any) -> list[Any]:
        if not dist.is_initialized():
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def save_checkpoint(self) -> Path | None:
        """Write everything needed to continue bit-for-bit (atomic replace); only rank 0 writes."""
        generators = self._gather(self.generator.get_state().cpu())
        samplers = self._gather(self.dataset.state_dict())
        if self.rank or self.work_dir is None:
            return None
        state = {
            "update": self.update,
            "config": asdict(self.config),
            "online": self.online.state_dict(),
            "target_encoder": self.target_encoder.state_dict(),
            "target_projector": self.target_projector.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generators": generators,
            "samplers": samplers,
            "losses": self.losses,
            "center": self.center,
            "queue": self.queue,
            "queue_filled": self.queue_filled,
            "batch_thread_count": self.batch_thread_count,
            "inputs": self._inputs(),
            "wall_time_s": self._seconds_before + (time.perf_counter() - (self._session_start or time.perf_counter())),
        }
        self.work_dir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        path = self.work_dir / CHECKPOINT_NAME
        atomic_write_bytes(path, buffer.getvalue())
        return path

    def load_checkpoint(self) -> bool:
        """Restore the last checkpoint of ``work_dir`` if there is one; return whether one was loaded. Reads only:
        :meth:`fit` trims ``metrics.csv`` to the checkpoint once the resume is accepted."""
        path = None if self.work_dir is None else self.work_dir / CHECKPOINT_NAME
        if path is None or not path.is_file():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        saved = {k: v for k, v in state["config"].items() if k not in _RESUMABLE_CHANGES}
        now = {k: v for k, v in asdict(self.config).items() if k not in _RESUMABLE_CHANGES}
        if saved != now:
            diff = sorted(k for k in now if saved.get(k) != now[k])
            values = ", ".join(f"{k} {saved.get(k)!r} then, {now[k]!r} now" for k in diff)
            raise ValueError(f"checkpoint {path} was written with another config ({values}): resume with the "
                             "checkpoint's values, or pretrain into another work dir")  # fmt: skip
        recorded, inputs = state.get("inputs"), self._inputs()
        if recorded is not None and recorded != inputs:  # older checkpoints record no inputs
            diff = [k for k in inputs["datasets"] if recorded["datasets"].get(k) != inputs["datasets"][k]]
            shapes = tuple(recorded["obs_shape"]), tuple(inputs["obs_shape"])
            what = f"other data ({', '.join(diff or sorted(recorded['datasets']))}: manifest checksums differ)"
            if shapes[0] != shapes[1]:
                what = f"observations {shapes[0]}, not {shapes[1]} (another image size or frame stack)"
            raise ValueError(f"checkpoint {path} was written on {what}; resume on the data it was written on, or "
                             "pretrain into a new work dir")  # fmt: skip
        if len(state["generators"]) != self.world:
            raise ValueError(f"checkpoint {path} was written by {len(state['generators'])} processes, not {self.world}")
        self.online.load_state_dict(state["online"])
        self.target_encoder.load_state_dict(state["target_encoder"])
        self.target_projector.load_state_dict(state["target_projector"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generators"][self.rank].cpu())
        self.dataset.load_state_dict(state["samplers"][self.rank])
        self.update = int(state["update"])
        self.losses = list(state["losses"])
        self._seconds_before = float(state.get("wall_time_s", 0.0))  # checkpoints before 0.3 record no time
        self.batch_thread_count = state.get("batch_thread_count")  # nor the updates' thread count
        if "center" in state:  # checkpoints of 0.x before issue 12 have no remedies' state
            self.center = state["center"].to(self.device)
            self.queue = state["queue"].to(self.device)
            self.queue_filled = int(state["queue_filled"])
        return True

    def _inputs(self) -> dict[str, Any]:
        """What a checkpoint must be resumed on: each domain's manifest checksum and the observation shape. A task
        given in several datasets (e.g. collected at several action repeats) is keyed ``task``, ``task #2``, ... in
        the order of ``--data``, so that no dataset's checksum overwrites another's."""
        keys, seen = [], {}
        for d in self.dataset.domains:
            seen[d.task] = seen.get(d.task, 0) + 1
            keys.append(d.task if seen[d.task] == 1 else f"{d.task} #{seen[d.task]}")
        return {"datasets": {k: manifest_sha256(d.path) for k, d in zip(keys, self.dataset.domains, strict=True)},
                "obs_shape": list(self.dataset.obs_shape)}  # fmt: skip

    # ------------------------------------------------------------------ artifact
    def save(
        self, path: str | Path, stats: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None
    ) -> Path | None:
        """Save the online encoder, projector and prototypes as a safe artifact (rank 0 only); ``provenance``
        (e.g. the command line) goes into its metadata."""
        if self.rank:
            return None
        self.online.prototypes.normalize_()
        datasets = self._inputs()["datasets"]
        projector = self.online.projector
        if self.config.centering == "projections":  # consumers read centred projections: fold the centre into the bias
            projector = copy.deepcopy(projector)
            with torch.no_grad():
                projector.linear.bias.sub_(self.center.to(projector.linear.bias))
        stats = stats or {"updates": self.update, "diagnostics": self.diagnostics}
        return save_artifact(
            path,
            self.online.encoder,
            projector,
            self.online.prototypes,
            config=dataclasses.asdict(self.config),
            stats=stats,
            render=",".join(self.dataset.render_presets),
            tasks=self.dataset.tasks,
            datasets=datasets,
            frame_stack=self.dataset.frame_stack,
            provenance={"seed": self.config.seed, **(provenance or {})},
        )


def _record_session(work_dir: Path, command: str | None, resume: bool) -> list[str]:
    """Append ``command`` (unless ``None``) to ``<work_dir>/sessions.txt``, started afresh without ``resume``;
    return every line."""
    path = work_dir / SESSIONS_NAME
    earlier = path.read_text().splitlines() if resume and path.is_file() else []
    if command is None:
        return earlier
    work_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, "".join(f"{line}\n" for line in [*earlier, command]).encode())
    return [*earlier, command]


def save_random_init(encoder: str | Path, path: str | Path) -> Path:
    """Save ``encoder``'s pretraining run as it was before its first update: the baseline that says what pretraining
    bought (the "random init" rows of the benchmarks and the demo).

    The networks are rebuilt from the artifact's recorded config and observation shape exactly as :class:`Pretrainer`
    builds them (``torch.manual_seed(config.seed)``, then encoder, projector, predictor, prototypes), so the tensors
    equal a ``Pretrainer.save`` at update 0 of the same run, without its data. The global torch RNG is left as it was.

    :param encoder: artifact path or shipped name (:func:`~sb3_crptpro.common.artifact.load_artifact`)
    :param path: the ``.safetensors`` file to write; its metadata records ``provenance.random_init_of`` (the
        pretrained tensors' checksum) and ``stats.updates == 0``
    :return: ``path``
    :raises FileNotFoundError: no such artifact or shipped name
    """
    with torch.random.fork_rng(devices=[]):  # loading builds modules too, which draws initial weights
        meta = load_artifact(encoder).metadata
        names = {f.name for f in dataclasses.fields(PretrainConfig)}
        config = PretrainConfig(**{k: v for k, v in meta["config"].items() if k in names})
        torch.manual_seed(config.seed)
        # the inverse-dynamics head is built after the saved networks: it changes none of their initial weights
        networks = _OnlineLosses(tuple(meta["obs_shape"]), dataclasses.replace(config, inverse_dynamics=0.0), [])
    networks.prototypes.normalize_()
    saved = save_artifact(path, networks.encoder, networks.projector, networks.prototypes, config=meta["config"],
                          stats={"updates": 0, "wall_time_s": 0.0, "diagnostics": {}}, render=meta.get("render"),
                          tasks=meta.get("tasks"), datasets=meta.get("datasets"), frame_stack=meta["frame_stack"],
                          provenance={"seed": config.seed, "random_init_of": meta["tensor_sha256"]})  # fmt: skip
    return Path(saved)
