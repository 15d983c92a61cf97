"""Proto-RL's prototype kNN intrinsic reward as an SB3 ``VecEnvWrapper`` (PAPER.md, "Intrinsic reward").

Each new observation is embedded with the frozen pretrained encoder + projector (normalised). The intrinsic reward
is the Euclidean distance to the k-th nearest embedding in a FIFO *candidate queue*. The queue is refreshed the
Proto-RL way: for each prototype, one embedding is drawn from a softmax (over a batch) of that prototype's cosine
scores and pushed. The wrapper draws from a window of recent steps (all envs) every ``update_every`` steps, so a
single env still feeds the queue diverse candidates.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize

from sb3_crptpro.common.artifact import PretrainedArtifact, load_artifact
from sb3_crptpro.common.threads import frame_threads
from sb3_crptpro.envs.factory import check_vec_env_time_limits
from sb3_crptpro.sb3.encode import EncodeObservation, FrozenEncoding, VecEncodeObservation
from sb3_crptpro.sb3.spaces import check_pixel_space

__all__ = ["IntrinsicRewardCallback", "PrototypeIntrinsicReward", "enqueue_probs", "knn_reward"]


def knn_reward(z: torch.Tensor, queue: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``normalize(z) [B, D]`` to its ``k``-th nearest row of ``queue [Q, D]``."""
    z = F.normalize(z, dim=1)
    k = min(k, len(queue))
    if k == 0:
        return torch.zeros(len(z), dtype=z.dtype, device=z.device)
    distances = torch.cdist(z, queue.to(z.dtype))
    return distances.topk(k, dim=1, largest=False).values[:, -1]


def enqueue_probs(z: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Row ``j``: softmax over the batch of prototype ``j``'s cosine scores with ``normalize(z) [B, D]``."""
    scores = F.normalize(prototypes, dim=1) @ F.normalize(z, dim=1).T  # [M, B]
    return F.softmax(scores, dim=1)


def _ring_write(buffer: torch.Tensor, ptr: int, rows: torch.Tensor) -> int:
    """Write ``rows`` into the ring ``buffer`` from ``ptr`` on (as if one by one); return the new pointer."""
    size, n = len(buffer), len(rows)
    kept = rows[-size:]  # rows that a sequential write would leave in place
    slots = (ptr + n - len(kept) + torch.arange(len(kept), device=buffer.device)) % size
    buffer[slots] = kept
    return (ptr + n) % size


def _refuse_reward_dropping_wrappers(venv: VecEnv) -> None:
    """Refuse wrapper stacks that would silently drop the intrinsic reward or embed something else than pixels."""
    inner: VecEnv | None = venv
    while isinstance(inner, VecEnvWrapper):
        if isinstance(inner, VecNormalize):
            raise ValueError(
                "VecNormalize is below PrototypeIntrinsicReward: SB3's off-policy algorithms (SAC, TQC) store "
                "VecNormalize.get_original_reward(), so the intrinsic reward would be lost without a trace (SB3 "
                "issue 693). Put VecNormalize outside, VecNormalize(PrototypeIntrinsicReward(venv, artifact), "
                "norm_obs=False), and give an EvalCallback's env the same layers with coef=0 (see "
                "PrototypeIntrinsicReward); with rl-zoo3, list sb3_crptpro.zoo.IntrinsicRewardSlot in vec_env_wrapper "
                "(as hyperparams/*_embedding.yml do)."
            )
        if inner is not venv and isinstance(inner, VecEncodeObservation):
            raise ValueError(
                "VecEncodeObservation is not directly below PrototypeIntrinsicReward; stack them as "
                "PrototypeIntrinsicReward(VecEncodeObservation(venv, artifact)) so the reward reads its vectors."
            )
        inner = inner.venv


def _short(sha256: str | None) -> str:
    return f"{sha256[:12]}..." if sha256 else "unknown"


def _worker_encoding(venv: VecEnv, artifact: PretrainedArtifact, device: str | torch.device) -> FrozenEncoding:
    """The encoding the envs' :class:`~sb3_crptpro.sb3.encode.EncodeObservation` wrappers apply (in their processes),
    rebuilt here from ``artifact`` so that :meth:`FrozenEncoding.unit_projection` reads their vectors."""
    infos = set(venv.get_attr("encoder_info"))
    if len(infos) != 1:
        raise ValueError(f"the envs encode with different artifacts or outputs: {sorted(map(str, infos))}")
    sha256, output = infos.pop()
    if sha256 != artifact.metadata.get("tensor_sha256"):
        raise ValueError(
            f"artifact (weights sha256 {_short(artifact.metadata.get('tensor_sha256'))}) differs from the one the "
            f"envs' EncodeObservation wrappers encode with ({_short(sha256)}); pass that one"
        )
    return FrozenEncoding(artifact, output, device=device)


class PrototypeIntrinsicReward(VecEnvWrapper):
    """Adds ``coef * intrinsic`` to the rewards of ``venv``; puts both parts in ``infos``.

    Wrap *outside* the per-env ``Monitor`` (as :func:`~sb3_crptpro.envs.make_dmc_vec_env` builds it) so that logged
    episode returns stay extrinsic.

    With ``VecNormalize``, put it outside this wrapper (SAC and TQC store ``VecNormalize``'s original reward, which
    must hold the intrinsic part), and build an ``EvalCallback``'s env with the same layers, this one with
    ``coef=0``: SB3's ``sync_envs_normalization`` walks the training and evaluation stacks level by level and fails
    on stacks of different depths::

        train = VecNormalize(PrototypeIntrinsicReward(VecEncodeObservation(pixels, artifact)), norm_obs=False)
        evaluation = VecNormalize(PrototypeIntrinsicReward(VecEncodeObservation(eval_pixels, artifact), coef=0.0),
                                  training=False, norm_obs=False, norm_reward=False)

    :class:`IntrinsicRewardCallback` finds such a ``coef=0`` wrapper in the training env and puts the reward there.

    :param venv: image VecEnv whose observations match the artifact's ``obs_shape`` (channel-first ``uint8``), or a
        :class:`~sb3_crptpro.sb3.encode.VecEncodeObservation` or envs wrapped in
        :class:`~sb3_crptpro.sb3.encode.EncodeObservation` (:func:`~sb3_crptpro.sb3.encode.make_encoded_vec_env`):
        embedding mode, their vectors are used, nothing is encoded twice
    :param artifact: path or loaded artifact (encoder + projector + prototypes are used, frozen); optional on a
        ``VecEncodeObservation`` (its artifact)
    :param coef: weight of the intrinsic reward (reference ``intr_coef`` 0.2)
    :param queue_size: candidate queue length (reference 2048)
    :param topk: ``k`` of the kNN distance (reference 3)
    :param update_every: refresh the queue every this many vector steps
    :param window: number of recent embeddings the refresh draws from
    :param seed: seed of the refresh sampling
    :param device: where the encoder runs
    :raises PixelSpaceError: pixel observations that are not the artifact's raw ``uint8`` frames
    :raises ValueError: a ``VecNormalize`` below this wrapper (issue 14: SB3's off-policy algorithms would store
        ``VecNormalize.get_original_reward()``, which never contains the intrinsic reward; SB3 issue 693)
    """

    def __init__(
        self,
        venv: VecEnv,
        artifact: str | Path | PretrainedArtifact | None = None,
        coef: float = 0.2,
        queue_size: int = 2048,
        topk: int = 3,
        update_every: int = 16,
        window: int = 256,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(venv)
        if queue_size < 1 or topk < 1 or update_every < 1 or window < 1:
            raise ValueError("queue_size, topk, update_every and window must be >= 1")
        if not math.isfinite(coef) or coef < 0:
            raise ValueError(f"coef must be a finite number >= 0, got {coef}")
        _refuse_reward_dropping_wrappers(venv)
        if not isinstance(venv, VecEncodeObservation):  # which checked it
            check_vec_env_time_limits(venv)
        self.device = torch.device(device)
        self.encoding = venv.encoding if isinstance(venv, VecEncodeObservation) else None
        if artifact is None:
            if self.encoding is None:
                raise ValueError(
                    "artifact is required unless venv is a VecEncodeObservation: pass the artifact the envs are "
                    "encoded with (make_encoded_vec_env / EncodeObservation) or the one matching their pixels"
                )
            art = self.encoding.artifact
        else:
            art = artifact if isinstance(artifact, PretrainedArtifact) else load_artifact(artifact)
        if self.encoding is None and all(venv.env_is_wrapped(EncodeObservation)):
            self.encoding = _worker_encoding(venv, art, device)
        if self.encoding is not None:
            if self.encoding.sha256 != art.metadata.get("tensor_sha256"):
                raise ValueError(
                    f"artifact (weights sha256 {_short(art.metadata.get('tensor_sha256'))}) differs from the one "
                    f"VecEncodeObservation encodes with ({_short(self.encoding.sha256)}); pass artifact=None"
                )
        else:
            check_pixel_space(
                venv.observation_space, type(self).__name__, art.obs_shape, art.metadata.get("frame_stack")
            )
            self.encoder = art.encoder.to(self.device).eval().requires_grad_(False)
            self.projector = art.projector.to(self.device).eval().requires_grad_(False)
        self.prototypes = F.normalize(art.prototypes.weight.detach().to(self.device), dim=1)
        self.coef, self.topk, self.update_every, self.window = coef, topk, update_every, window
        dim = self.prototypes.shape[1]
        self.queue = torch.zeros(queue_size, dim, device=self.device)
        self.queue_ptr = 0
        self.queue_filled = 0
        self.recent = torch.zeros(window, dim, device=self.device)
        self.recent_ptr = 0
        self.recent_filled = 0
        self.steps = 0
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    @torch.no_grad()
    def embed(self, obs: np.ndarray) -> torch.Tensor:
        """Normalised projector embeddings ``[n, D]`` of a batch of observations (pixels, or the vectors of a
        :class:`~sb3_crptpro.sb3.encode.VecEncodeObservation` below: then no encoder pass)."""
        x = torch.as_tensor(np.asarray(obs), device=self.device)
        with frame_threads():  # per-frame work: one torch thread (common.threads)
            if self.encoding is not None:
                return self.encoding.unit_projection(x.float()).to(self.device)
            return F.normalize(self.projector(self.encoder(x)), dim=1)

    def _remember(self, z: torch.Tensor) -> None:
        self.recent_ptr = _ring_write(self.recent, self.recent_ptr, z)
        self.recent_filled = min(self.recent_filled + len(z), self.window)

    def _refresh_queue(self) -> None:
        candidates = self.recent[: self.recent_filled]
        probs = enqueue_probs(candidates, self.prototypes).cpu()
        picks = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)  # one index per prototype
        self.queue_ptr = _ring_write(self.queue, self.queue_ptr, candidates[picks.to(self.device)])  # FIFO push
        self.queue_filled = min(self.queue_filled + len(picks), len(self.queue))

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._remember(self.embed(obs))
        return obs

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        reached = np.array(obs, copy=True)
        for i, done in enumerate(dones):
            if done and infos[i].get("terminal_observation") is not None:
                reached[i] = infos[i]["terminal_observation"]  # the state the step actually led to
        z = self.embed(reached)
        intrinsic = knn_reward(z, self.queue[: self.queue_filled], self.topk).cpu().numpy()
        self._remember(z)
        self.steps += 1
        if self.steps % self.update_every == 0:
            self._refresh_queue()
        total = rewards + self.coef * intrinsic.astype(rewards.dtype)
        for i, info in enumerate(infos):
            info["extrinsic_reward"] = float(rewards[i])
            info["intrinsic_reward"] = float(intrinsic[i])
        return obs, total, dones, infos

    def state_dict(self) -> dict[str, Any]:
        """Queue, recent window and sampling state (save it beside the model to resume a run)."""
        return {
            "queue": self.queue.cpu(),
            "queue_ptr": self.queue_ptr,
            "queue_filled": self.queue_filled,
            "recent": self.recent.cpu(),
            "recent_ptr": self.recent_ptr,
            "recent_filled": self.recent_filled,
            "steps": self.steps,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["queue"].shape) != tuple(self.queue.shape) or tuple(state["recent"].shape) != tuple(
            self.recent.shape
        ):
            raise ValueError("saved queue/window sizes differ from this wrapper's")
        self.queue = state["queue"].to(self.device)
        self.recent = state["recent"].to(self.device)
        for key in ("queue_ptr", "queue_filled", "recent_ptr", "recent_filled", "steps"):
            setattr(self, key, int(state[key]))
        self.generator.set_state(state["generator"])

    def save(self, path: str | Path) -> None:
        """Write :meth:`state_dict` to ``path`` (a torch file holding tensors and ints only)."""
        torch.save(self.state_dict(), path)

    def load(self, path: str | Path) -> None:
        """Restore a state written by :meth:`save` (``weights_only`` loading: no arbitrary unpickling)."""
        self.load_state_dict(torch.load(path, weights_only=True))


def _find_slot(venv: VecEnv) -> tuple[VecEnvWrapper | None, PrototypeIntrinsicReward | None]:
    """The outermost :class:`PrototypeIntrinsicReward` in the wrapper stack ``venv`` and the wrapper directly above
    it (``None`` when it is ``venv`` itself); ``(None, None)`` when there is none."""
    parent: VecEnvWrapper | None = None
    inner: VecEnv = venv
    while isinstance(inner, VecEnvWrapper):
        if isinstance(inner, PrototypeIntrinsicReward):
            return parent, inner
        parent, inner = inner, inner.venv
    return None, None


class IntrinsicRewardCallback(BaseCallback):
    """Adds the intrinsic reward to the *training* env only: when training starts, the model's env is wrapped in
    :class:`PrototypeIntrinsicReward`. Evaluation envs are built separately (SB3's ``EvalCallback`` and
    ``evaluate_policy``, rl-zoo3's ``enjoy`` and ``record_video``), so they see, and report, the extrinsic task
    return; a ``vec_env_wrapper`` would be re-applied by rl-zoo3's ``enjoy``, which then prints returns that include
    the intrinsic part. A ``coef=0`` :class:`PrototypeIntrinsicReward` in the training env (below a
    ``VecNormalize``, e.g. rl-zoo3's ``normalize: True`` with ``sb3_crptpro.zoo.IntrinsicRewardSlot``) is replaced by
    the rewarding one at the same depth, so the evaluation env, built with the same layers, stays in step with it.

    :param artifact: as :class:`PrototypeIntrinsicReward` (``None`` on a
        :class:`~sb3_crptpro.sb3.encode.VecEncodeObservation` env: its artifact)
    :param reward_kwargs: the other arguments of :class:`PrototypeIntrinsicReward` (``coef``, ``queue_size``, ...)
    :raises TypeError: an argument :class:`PrototypeIntrinsicReward` does not take
    :raises ValueError: a negative or non-finite ``coef``; when training starts, as :class:`PrototypeIntrinsicReward`
    """

    def __init__(
        self, artifact: str | Path | PretrainedArtifact | None = None, verbose: int = 0, **reward_kwargs: Any
    ) -> None:
        super().__init__(verbose)
        try:  # the wrapper is built when training starts: check its arguments now
            inspect.signature(PrototypeIntrinsicReward).bind_partial(**reward_kwargs)
        except TypeError as exc:
            raise TypeError(f"IntrinsicRewardCallback: {exc} (PrototypeIntrinsicReward's arguments)") from None
        coef = reward_kwargs.get("coef", 0.2)
        if not math.isfinite(coef) or coef < 0:
            raise ValueError(f"coef must be a finite number >= 0, got {coef}")
        self.artifact = artifact
        self.reward_kwargs = reward_kwargs
        self.wrapper: PrototypeIntrinsicReward | None = None

    def _artifact_for(self, venv: VecEnv) -> str | Path | PretrainedArtifact | None:
        return self.artifact

    def _on_training_start(self) -> None:
        venv = self.model.get_env()
        if venv is None:
            return
        parent, slot = _find_slot(venv)
        if slot is not None and slot is self.wrapper:  # a second learn() call on the same model
            return
        if slot is None:  # the outermost layer (SB3's VecNormalize below it is refused: the reward would be lost)
            self.wrapper = PrototypeIntrinsicReward(venv, self._artifact_for(venv), **self.reward_kwargs)
            self.model.env = self.wrapper
            return
        # a coef=0 PrototypeIntrinsicReward of the stack (below a VecNormalize, mirrored in the evaluation env): the
        # reward takes its place, at the same depth, so that SB3's sync_envs_normalization still pairs the layers
        self.wrapper = PrototypeIntrinsicReward(slot.venv, self._artifact_for(slot.venv), **self.reward_kwargs)
        if parent is None:
            self.model.env = self.wrapper
        else:
            parent.venv = self.wrapper

    def _on_step(self) -> bool:
        return True
