"""SAC / TQC policies with layer normalisation in the critic: the default learner of embedding mode.

SB3's ``MlpPolicy`` of SAC (and sb3-contrib's of TQC) with a ``LayerNorm`` after every hidden ``Linear`` of each
Q-network, before its activation, in the critic and its target; the actor is unchanged. Layer normalisation in the
critic bounds its values and keeps off-policy value learning from diverging (Ball, Smith, Kostrikov, Levine, "Efficient
Online Reinforcement Learning with Offline Data", ICML 2023, RLPD's critic).

Measured here (``benchmarks/six_task.py``, report in ``benchmarks/results/six_task/``): on the frozen 128-d
projections of the shipped encoder, at 100k env steps on the six PlaNet-benchmark DMC tasks, it was ahead of the plain
critic on 16 of 22 runs with the same seeds and on the means of 6 of 6 tasks (+58 return per run on average;
ball_in_cup_catch only +3). That study made it the ``embedding`` train preset's policy
(:data:`~sb3_crptpro.sb3.presets.TRAIN_PRESETS`, ``critic_layer_norm``).

Saved models name these classes, so they reload wherever ``sb3_crptpro`` is installed::

    from stable_baselines3 import SAC
    from sb3_crptpro.sb3.policies import LayerNormCriticSACPolicy

    model = SAC(LayerNormCriticSACPolicy, vec_env, policy_kwargs={"net_arch": [256, 256]})

With the whole ``embedding`` preset (what ``sb3-crptpro train --mode embedding`` uses), on a VecEnv of embedding
mode's vectors: ``SAC(env=vec_env, **embedding_preset_kwargs())`` (:func:`embedding_preset_kwargs`). In rl-zoo3
hyperparameter files: ``policy: 'sb3_crptpro.sb3.policies.LayerNormCriticSACPolicy'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from sb3_contrib.tqc.policies import Critic, TQCPolicy
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

if TYPE_CHECKING:
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

CriticT = TypeVar("CriticT", bound=nn.Module)

__all__ = [
    "LAYER_NORM_CRITIC_POLICIES",
    "LayerNormCriticSACPolicy",
    "LayerNormCriticTQCPolicy",
    "add_critic_layer_norm",
    "embedding_preset_kwargs",
]


def add_critic_layer_norm(critic: CriticT) -> CriticT:
    """Insert ``nn.LayerNorm(width)`` after every hidden ``nn.Linear`` (not the output layer) of each of
    ``critic.q_networks``, in place, and return ``critic``.

    Works on SB3's ``ContinuousCritic`` and sb3-contrib's TQC ``Critic``: both keep their Q-networks as
    ``nn.Sequential`` in ``q_networks`` and register them as ``qf0``, ``qf1``, ... (the new ones replace those
    registrations, so they are saved, moved and optimised with the critic). The new layers start as identity affine
    maps (gain 1, bias 0) and draw no random numbers: the other layers' initialisation is that of the plain critic.

    :raises ValueError: ``critic`` has no ``q_networks`` of ``nn.Sequential``
    """
    q_networks = getattr(critic, "q_networks", None)
    if not q_networks or not all(isinstance(q, nn.Sequential) for q in q_networks):
        raise ValueError(f"expected a critic with q_networks of nn.Sequential (SB3 / sb3-contrib), got {type(critic)}")
    for index, q_net in enumerate(q_networks):
        output = [m for m in q_net if isinstance(m, nn.Linear)][-1]
        layers: list[nn.Module] = []
        for module in q_net:
            layers.append(module)
            if isinstance(module, nn.Linear) and module is not output:
                layers.append(nn.LayerNorm(module.out_features, device=module.weight.device))
        normed = nn.Sequential(*layers)
        critic.add_module(f"qf{index}", normed)
        q_networks[index] = normed
    return critic


class LayerNormCriticSACPolicy(SACPolicy):
    """SB3's SAC policy (``MlpPolicy``) with :func:`add_critic_layer_norm` applied to its critic and critic target.
    Same constructor arguments as ``SACPolicy``."""

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        return add_critic_layer_norm(super().make_critic(features_extractor))


class LayerNormCriticTQCPolicy(TQCPolicy):
    """sb3-contrib's TQC policy (``MlpPolicy``) with :func:`add_critic_layer_norm` applied to its critic and critic
    target (every quantile network). Same constructor arguments as ``TQCPolicy``."""

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> Critic:
        return add_critic_layer_norm(super().make_critic(features_extractor))


#: algorithm name (``sb3-crptpro train --algo``) -> its LayerNorm-critic policy
LAYER_NORM_CRITIC_POLICIES: dict[str, type] = {"sac": LayerNormCriticSACPolicy, "tqc": LayerNormCriticTQCPolicy}


def embedding_preset_kwargs(algo: str = "sac", **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of SB3's ``SAC`` (``algo="sac"``) or sb3-contrib's ``TQC`` (``"tqc"``) for the ``embedding``
    train preset (:data:`~sb3_crptpro.sb3.presets.TRAIN_PRESETS`), the learner of ``sb3-crptpro train --mode
    embedding``: ``policy`` (:class:`LayerNormCriticSACPolicy` / :class:`LayerNormCriticTQCPolicy`, or SB3's
    ``"MlpPolicy"`` with ``critic_layer_norm=False``), ``policy_kwargs`` (``net_arch``) and the algorithm's
    hyperparameters, with ``overrides`` (preset entries or any other keyword of the algorithm) replacing them.
    ``SAC(env=vec_env, **embedding_preset_kwargs(buffer_size=20_000))``.

    :raises ValueError: ``algo`` is not ``"sac"`` or ``"tqc"``
    """
    from sb3_crptpro.sb3.presets import TRAIN_PRESETS

    if algo not in LAYER_NORM_CRITIC_POLICIES:
        raise ValueError(f"algo must be 'sac' or 'tqc', got {algo!r}")
    kwargs = {**TRAIN_PRESETS["embedding"], **overrides}
    policy_kwargs = {"net_arch": kwargs.pop("net_arch"), **kwargs.pop("policy_kwargs", {})}
    policy = LAYER_NORM_CRITIC_POLICIES[algo] if kwargs.pop("critic_layer_norm") else "MlpPolicy"
    return {"policy": policy, "policy_kwargs": policy_kwargs, **kwargs}
