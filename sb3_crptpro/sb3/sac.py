"""RAD-style augmenting SAC (and TQC) for pixel observations.

Augmentation lives in the replay buffer: every sampled batch gets an independent random shift of ``observations``
and ``next_observations`` (PAPER.md: replicate-pad 4, crop back), while the stored data stay untouched. Any
off-policy SB3 algorithm can use it through ``replay_buffer_class=AugmentedReplayBuffer``; :class:`AugmentedSAC` and
:class:`AugmentedTQC` only set that default.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_crptpro.common.threads import batch_threads
from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.pretraining.augment import random_shift
from sb3_crptpro.sb3.buffers import FrameStackReplayBuffer
from sb3_crptpro.sb3.extractor import CRPTproExtractor
from sb3_crptpro.sb3.presets import PAPER_SAC_PRESET

__all__ = [
    "PAPER_SAC_PRESET",
    "AugmentedFrameStackReplayBuffer",
    "AugmentedReplayBuffer",
    "AugmentedSAC",
    "AugmentedTQC",
    "AugmentingBufferMixin",
]


class AugmentingBufferMixin:
    """Mixin for SB3 replay buffers: random-shift the image observations of every sampled batch.

    :param augment_pad: shift padding in pixels (0 disables augmentation)
    :param augment_seed: seed of the augmentation generator
    """

    def __init__(self, *args: Any, augment_pad: int = 4, augment_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.augment_pad = augment_pad
        self.augment_generator = torch.Generator().manual_seed(augment_seed)
        #: optional frozen feature function applied after augmentation (set by AugmentedSAC / AugmentedTQC)
        self.feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["feature_fn"] = None  # a bound method of the policy: re-attached by the algorithm, never pickled
        return state

    def _get_samples(self, batch_inds: Any, env: VecNormalize | None = None) -> ReplayBufferSamples:
        samples = super()._get_samples(batch_inds, env)  # type: ignore[misc]
        obs, next_obs = samples.observations, samples.next_observations
        if self.augment_pad:
            obs = random_shift(obs, self.augment_pad, self.augment_generator)
            next_obs = random_shift(next_obs, self.augment_pad, self.augment_generator)
        if self.feature_fn is not None:
            obs, next_obs = self.feature_fn(obs), self.feature_fn(next_obs)
        return samples._replace(observations=obs, next_observations=next_obs)


class AugmentedReplayBuffer(AugmentingBufferMixin, ReplayBuffer):
    """SB3's ``ReplayBuffer`` with random-shift augmentation of sampled ``obs`` and ``next_obs``."""


class AugmentedFrameStackReplayBuffer(AugmentingBufferMixin, FrameStackReplayBuffer):
    """:class:`~sb3_crptpro.sb3.buffers.FrameStackReplayBuffer` (about one stored frame per transition) with
    random-shift augmentation of sampled ``obs`` and ``next_obs``; the default buffer of :class:`AugmentedSAC` and
    :class:`AugmentedTQC` for image observations."""


class _ComputeOnceMixin:
    """With a frozen :class:`~sb3_crptpro.sb3.extractor.CRPTproExtractor`, the replay buffer turns each sampled (and
    augmented) batch into conv features once; actor, critic and critic target then only run their trainable trunks.
    Stock SAC would run the frozen trunk 5 times per gradient step (3x obs, 2x next_obs)."""

    replay_buffer: Any
    replay_buffer_class: Any
    replay_buffer_kwargs: dict[str, Any]
    observation_space: Any
    gamma: float
    _n_step_buffer: bool
    seed: int | None
    actor: Any

    def _setup_model(self) -> None:
        self._n_step_buffer = False
        self._default_buffer()
        with warnings.catch_warnings():
            if self._n_step_buffer:  # SB3 says n_steps is ignored with a custom buffer: ours was given it above
                warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom")
            super()._setup_model()  # type: ignore[misc]
        self._attach_features()
        self._check_render_preset()

    def _default_buffer(self) -> None:
        """Pick the augmenting buffer (frame-lean for image spaces) unless the user chose one; seed its augmentation
        from the algorithm's ``seed``."""
        if self.replay_buffer_class is None:
            image = isinstance(self.observation_space, spaces.Box) and len(self.observation_space.shape) == 3
            self.replay_buffer_class = AugmentedFrameStackReplayBuffer if image else AugmentedReplayBuffer
        kwargs = dict(self.replay_buffer_kwargs or {})
        given = {"n_steps": getattr(self, "n_steps", 1), 'replay_buffer_kwargs["n_steps"]': kwargs.get("n_steps", 1)}
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if min(given.values()) > 1 and len(set(given.values())) > 1:
            raise ValueError(f"n_steps={given['n_steps']} and replay_buffer_kwargs n_steps="
                             f"{kwargs['n_steps']} disagree: give one of them")  # fmt: skip
        n_steps = max(given.values())
        if n_steps > 1 and issubclass(self.replay_buffer_class, FrameStackReplayBuffer):
            kwargs.update(n_steps=n_steps, gamma=kwargs.get("gamma", self.gamma))  # the frame-lean buffer does n-step
            self._n_step_buffer = True
        elif n_steps > 1 and issubclass(self.replay_buffer_class, AugmentingBufferMixin):
            raise ValueError(
                f"n_steps={n_steps}: {self.replay_buffer_class.__name__} samples 1-step returns only; n-step returns "
                "need the frame-lean AugmentedFrameStackReplayBuffer (the default for image observations) or "
                f"embedding mode (VecEncodeObservation + stock SAC/TQC with n_steps={n_steps})."
            )
        if self.seed is not None and issubclass(self.replay_buffer_class, AugmentingBufferMixin):
            kwargs.setdefault("augment_seed", self.seed)
        self.replay_buffer_kwargs = kwargs

    def _check_render_preset(self) -> None:
        """Warn when the env renders with another preset than the encoder's pretraining data (DESIGN.md)."""
        extractor, env = self.actor.features_extractor, getattr(self, "env", None)
        pretrained = getattr(extractor, "pretrained_metadata", {}).get("render")
        if env is None or not pretrained:
            return
        try:
            presets = set(env.get_attr("render_preset"))
        except AttributeError:
            return
        if presets != {pretrained}:
            warn_user(
                f"the env renders with preset(s) {sorted(presets)} but the encoder was pretrained on "
                f"'{pretrained}' frames; features may shift (use the same `render=` for both)"
            )

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """The base class's gradient steps, on the batched-update thread count
        (:func:`~sb3_crptpro.common.threads.batch_threads`;
        the rollout's per-frame forward passes run on one thread, see the extractor)."""
        with batch_threads():
            super().train(gradient_steps, batch_size)  # type: ignore[misc]

    def load_replay_buffer(self, *args: Any, **kwargs: Any) -> None:
        super().load_replay_buffer(*args, **kwargs)  # type: ignore[misc]
        self._attach_features()

    def _attach_features(self) -> None:
        extractor = self.actor.features_extractor
        if isinstance(self.replay_buffer, AugmentingBufferMixin):
            frozen = isinstance(extractor, CRPTproExtractor) and extractor.freeze
            self.replay_buffer.feature_fn = extractor.conv_features if frozen else None


class AugmentedSAC(_ComputeOnceMixin, SAC):
    """SB3 ``SAC`` whose replay buffer augments sampled pixel batches (RAD / DrQ random shift).

    With a frozen :class:`~sb3_crptpro.sb3.extractor.CRPTproExtractor`, each batch goes through the frozen conv trunk
    once per gradient step. Use ``AugmentedSAC("CnnPolicy", env, policy_kwargs=crptpro_kwargs(path),
    **PAPER_SAC_PRESET)`` for the reference downstream setting.
    """

    def __init__(self, policy: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(policy, env, *args, **kwargs)


class AugmentedTQC(_ComputeOnceMixin, TQC):
    """sb3-contrib ``TQC`` with the same augmenting replay buffer and compute-once features as :class:`AugmentedSAC`."""

    def __init__(self, policy: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(policy, env, *args, **kwargs)
