"""``CRPTproExtractor``: a pretrained (frozen by default) CRPTpro conv trunk as an SB3 features extractor."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_crptpro.common.artifact import PretrainedArtifact, load_artifact
from sb3_crptpro.common.networks import Encoder, orthogonal_init
from sb3_crptpro.common.threads import FRAME_BATCH, batch_threads, frame_threads
from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.sb3.spaces import check_pixel_space

__all__ = ["CRPTproExtractor", "EncoderWeights", "crptpro_kwargs"]


@dataclass(eq=False, repr=False)
class EncoderWeights:
    """The part of an artifact an extractor needs: conv-trunk architecture and weights (~100 KB), plus metadata.

    :func:`crptpro_kwargs` passes this instead of a file path, so SB3 stores it with the model's ``policy_kwargs``
    and ``SAC.load`` works after the artifact file is moved or deleted. Two instances are equal when architecture
    and weights are (compared by a sha256 of the tensors), and the repr is one line: SB3's ``load(...,
    policy_kwargs=...)`` compares and prints policy kwargs (issue 14: a tensor ``==`` raised, a full repr was 43 KB).
    """

    obs_shape: tuple[int, int, int]
    n_filters: int
    n_layers: int
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_artifact(cls, artifact: str | Path | PretrainedArtifact | EncoderWeights) -> EncoderWeights:
        """Accept a path, a loaded artifact, or an ``EncoderWeights`` (returned as is)."""
        if isinstance(artifact, EncoderWeights):
            return artifact
        if isinstance(artifact, (str, Path)):
            artifact = load_artifact(artifact)
        meta = artifact.metadata
        state = {k: v.detach().cpu().clone() for k, v in artifact.encoder.state_dict().items()}
        keep = ("obs_shape", "frame_stack", "image_size", "render", "tasks", "tensor_sha256", "package_version")
        return cls(
            obs_shape=tuple(meta["obs_shape"]),  # type: ignore[arg-type]
            n_filters=int(meta["n_filters"]),
            n_layers=int(meta["n_layers"]),
            state_dict=state,
            metadata={k: meta.get(k) for k in keep},
        )

    @classmethod
    def random_init(
        cls, obs_shape: tuple[int, int, int], seed: int = 0, n_filters: int = 32, n_layers: int = 4
    ) -> EncoderWeights:
        """A conv trunk before any training (the reference's orthogonal init, drawn after ``torch.manual_seed(seed)``
        in a forked RNG: the global torch RNG is left as it was), e.g. for DrQ from scratch
        (:func:`~sb3_crptpro.sb3.drq.drq_kwargs`). ``metadata`` records ``random_init_seed``.

        :param obs_shape: channel-first ``(3 * frame_stack, H, W)``
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = Encoder(tuple(obs_shape), n_filters=n_filters, n_layers=n_layers)
        state = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
        return cls(tuple(encoder.obs_shape), n_filters, n_layers, state, {"random_init_seed": seed})  # type: ignore[arg-type]

    def build(self) -> Encoder:
        encoder = Encoder(self.obs_shape, n_filters=self.n_filters, n_layers=self.n_layers)
        encoder.load_state_dict(self.state_dict)
        return encoder

    def digest(self) -> str:
        """sha256 (hex) of the architecture and the weights' bytes, in ``state_dict`` key order."""
        h = hashlib.sha256(repr((tuple(self.obs_shape), self.n_filters, self.n_layers)).encode())
        for key in sorted(self.state_dict):
            tensor = self.state_dict[key].detach().cpu().contiguous()
            h.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            h.update(tensor.numpy().tobytes())
        return h.hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncoderWeights):
            return NotImplemented
        return self.digest() == other.digest()

    def __hash__(self) -> int:
        return hash(self.digest())

    def __repr__(self) -> str:
        tasks = self.metadata.get("tasks")
        return (f"EncoderWeights(obs_shape={tuple(self.obs_shape)}, n_filters={self.n_filters}, "
                f"n_layers={self.n_layers}, sha256={self.digest()[:12]}..., tasks={tasks})")  # fmt: skip


class CRPTproExtractor(BaseFeaturesExtractor):
    """Pretrained CRPTpro conv trunk + a trainable ``Linear(repr_dim -> features_dim) + LayerNorm`` (the reference
    ``pre_fc``).

    With ``freeze=True`` (default) the conv trunk gets no gradient, stays in eval mode and runs under
    ``torch.no_grad``. Inputs are raw pixels in ``[0, 255]``: use ``normalize_images=False`` in ``policy_kwargs``
    (:func:`crptpro_kwargs` does).

    :param observation_space: channel-first image space matching the artifact's ``obs_shape``
    :param artifact: artifact path, loaded :class:`~sb3_crptpro.common.artifact.PretrainedArtifact` or
        :class:`EncoderWeights`
    :param features_dim: output size of the trainable trunk (reference 50)
    :param freeze: keep the pretrained conv weights fixed
    :param encoder_dtype: e.g. ``torch.bfloat16`` to run the frozen trunk under autocast (CPU/GPU)
    :param tanh: end the trainable trunk with ``tanh`` (DrQ's and DrQ-v2's trunk; the reference ``pre_fc`` has none)
    """

    #: frames per frozen-trunk pass on CPU
    CPU_CHUNK = 64

    def __init__(
        self,
        observation_space: gym.Space,
        artifact: str | Path | PretrainedArtifact | EncoderWeights,
        features_dim: int = 50,
        freeze: bool = True,
        encoder_dtype: torch.dtype | None = None,
        tanh: bool = False,
    ) -> None:
        weights = EncoderWeights.from_artifact(artifact)
        check_pixel_space(observation_space, "CRPTproExtractor", weights.obs_shape, weights.metadata.get("frame_stack"))
        super().__init__(observation_space, features_dim)
        self.freeze = freeze
        self.encoder_dtype = encoder_dtype
        self.pretrained_metadata = weights.metadata
        self.encoder = weights.build()
        if freeze:
            self.encoder.requires_grad_(False).eval().to(memory_format=torch.channels_last)
        self.trunk = nn.Sequential(nn.Linear(self.encoder.repr_dim, features_dim), nn.LayerNorm(features_dim))
        if tanh:
            self.trunk.append(nn.Tanh())
        self.trunk.apply(orthogonal_init)

    def apply(self, fn: Callable[[nn.Module], None]) -> CRPTproExtractor:
        """Apply ``fn`` to the trainable trunk and this module only, never to the pretrained conv trunk.

        SB3's ``ActorCriticPolicy`` (PPO, A2C with ``ortho_init=True``) re-initialises every layer of the features
        extractor through ``apply``; that would silently replace the pretrained weights with random ones."""
        self.trunk.apply(fn)
        fn(self)
        return self

    def train(self, mode: bool = True) -> CRPTproExtractor:
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def conv_features(self, observations: torch.Tensor) -> torch.Tensor:
        """Conv-trunk features ``[B, repr_dim]`` (no gradient when frozen).

        Without gradient the trunk runs in ``channels_last`` layout and, on CPU, in chunks of
        ``CPU_CHUNK`` frames (measured on 2 cores at batch 128: ~1.4x faster than one NCHW pass, same values)."""
        autocast = self.encoder_dtype is not None
        grad = not self.freeze and torch.is_grad_enabled()
        device = observations.device.type
        with torch.set_grad_enabled(grad), torch.autocast(device, dtype=self.encoder_dtype, enabled=autocast):
            if grad:  # channels_last here too: fwd+bwd at batch 128, 64 px, 2 cores 0.127 s vs 0.181 s NCHW
                return self.encoder(observations.contiguous(memory_format=torch.channels_last)).float()
            chunks = observations.split(self.CPU_CHUNK) if device == "cpu" else [observations]
            h = [self.encoder(chunk.contiguous(memory_format=torch.channels_last)) for chunk in chunks]
        return torch.cat(h).float()

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, C, H, W]``, or conv features ``[B, repr_dim]`` computed beforehand (see
        :class:`~sb3_crptpro.sb3.sac.AugmentedSAC`: one frozen-trunk pass per batch serves actor, critic and target)."""
        if observations.dim() == 2 and observations.shape[1] == self.encoder.repr_dim:
            return self.trunk(observations)
        # a rollout or evaluation step on one thread, a sampled batch on the batched-update count (common.threads); SB3
        # runs the rest of its update (trainable trunk, heads, backward) at torch's thread count
        threads = frame_threads() if len(observations) <= FRAME_BATCH else batch_threads()
        with threads:
            return self.trunk(self.conv_features(observations))


def crptpro_kwargs(artifact: str | Path | PretrainedArtifact | EncoderWeights, **overrides: Any) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for a CRPTpro encoder with the reference head sizes (``net_arch`` 1024 x 1024).

    The artifact is read once; its encoder weights travel inside the returned kwargs (and so inside a saved
    model). Keys of ``overrides`` replace the defaults; ``features_extractor_kwargs`` entries are merged.

    Example: ``SAC("CnnPolicy", env, policy_kwargs=crptpro_kwargs("encoder.safetensors"))``. On a CPU, pass
    ``callback=UpdateThreadsCallback()`` (``from sb3_crptpro import UpdateThreadsCallback``) to ``learn``: SB3
    runs the rest of each update at torch's default thread count, which beside another busy process is the slow
    choice (see the docs, "Benchmarks": "A busy machine").
    """
    weights = EncoderWeights.from_artifact(artifact)
    extractor_kwargs = {"artifact": weights, "features_dim": 50, "freeze": True}
    extractor_kwargs.update(overrides.pop("features_extractor_kwargs", {}))
    kwargs: dict[str, Any] = {
        "features_extractor_class": CRPTproExtractor,
        "features_extractor_kwargs": extractor_kwargs,
        "net_arch": [1024, 1024],
        "normalize_images": False,
    }
    kwargs.update(overrides)
    if kwargs["normalize_images"]:
        warn_user("normalize_images=True divides pixels by 255 before the encoder, which does it again")
    return kwargs
