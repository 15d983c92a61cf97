"""DrQ-style SAC: one trainable conv trunk shared by actor and critic, trained by the critic loss only.

What DrQ (Kostrikov, Yarats, Fergus, ICLR 2021, ``denisyarats/drq``) and DrQ-v2 (``facebookresearch/drqv2``) do, and
what SB3 does not: SB3's ``SACPolicy`` gives actor and critic separate extractors (two conv trunks, both trained), or,
with ``share_features_extractor=True``, one trunk trained by the *actor* loss with the critic's gradient blocked. DrQ
ties the conv trunk of actor and critic, updates it with the critic's TD loss, and feeds the actor the detached conv
features; each head keeps its own ``Linear -> LayerNorm (-> tanh)`` trunk, and the critic target's conv trunk is an EMA
of the online one (``encoder_tau`` 0.05, the critic heads' ``tau`` 0.01).

:class:`SharedEncoderSACPolicy` builds that structure from any :class:`~sb3_crptpro.sb3.extractor.CRPTproExtractor`
with ``freeze=False`` (pretrained weights: fine-tuning; :meth:`EncoderWeights.random_init
<sb3_crptpro.sb3.extractor.EncoderWeights.random_init>`: DrQ from scratch). :class:`DrQSAC` trains it with one conv
pass with gradient per update (the sampled, randomly shifted ``obs``) and two without (``next_obs`` through the online
and the target trunk); the actor update every ``actor_update_interval`` updates reuses the detached features.
Stock SAC with separate extractors runs five conv passes per update, two of them with gradient.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import SACPolicy

from sb3_crptpro.sb3.extractor import CRPTproExtractor, EncoderWeights, crptpro_kwargs
from sb3_crptpro.sb3.sac import _ComputeOnceMixin

__all__ = ["DrQSAC", "SharedEncoderSACPolicy", "drq_kwargs"]


class SharedEncoderSACPolicy(SACPolicy):
    """SB3 ``SACPolicy`` with DrQ's sharing: the actor's conv trunk *is* the critic's (one module), the actor's
    optimiser leaves it out, the critic's includes it; the critic target has its own copy.

    Needs a trainable :class:`~sb3_crptpro.sb3.extractor.CRPTproExtractor` (``freeze=False``; see :func:`drq_kwargs`).

    :raises ValueError: another features extractor, a frozen one, or ``share_features_extractor=True`` (SB3's
        sharing trains the trunk with the actor loss, the opposite of DrQ)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("share_features_extractor"):
            raise ValueError("SharedEncoderSACPolicy shares the conv trunk itself; leave share_features_extractor off")
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = self.make_actor()
        self.critic = self.make_critic(features_extractor=None)
        for head in (self.actor, self.critic):
            extractor = head.features_extractor
            if not isinstance(extractor, CRPTproExtractor) or extractor.freeze:
                raise ValueError(
                    "SharedEncoderSACPolicy needs a trainable CRPTproExtractor (features_extractor_kwargs "
                    f"freeze=False), got {type(extractor).__name__}; use drq_kwargs(...)"
                )
        self.actor.features_extractor.encoder = self.critic.features_extractor.encoder  # one module, DrQ's tie
        shared = {id(p) for p in self.critic.features_extractor.encoder.parameters()}
        actor_params = [p for p in self.actor.parameters() if id(p) not in shared]
        self.actor.optimizer = self.optimizer_class(actor_params, lr=lr_schedule(1), **self.optimizer_kwargs)
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.critic_target = self.make_critic(features_extractor=None)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)

    @property
    def encoder(self) -> torch.nn.Module:
        """The shared conv trunk (``Encoder``)."""
        return self.critic.features_extractor.encoder


def drq_kwargs(
    artifact: Any | None = None,
    obs_shape: tuple[int, int, int] | None = None,
    seed: int = 0,
    features_dim: int = 50,
    net_arch: list[int] | None = None,
) -> dict[str, Any]:
    """``policy_kwargs`` for :class:`SharedEncoderSACPolicy`: a trainable conv trunk, per-head ``Linear(-> 50) ->
    LayerNorm -> tanh`` (DrQ's trunk), heads of 1024 x 1024 (DrQ, PAPER.md).

    :param artifact: start from this artifact's conv weights (path, shipped name, loaded artifact or
        ``EncoderWeights``): fine-tuning; ``None``: a random init of the same architecture for ``obs_shape``
    :param obs_shape: channel-first observation shape, needed without ``artifact``
    :param seed: seed of the random init (ignored with ``artifact``)
    :raises ValueError: neither ``artifact`` nor ``obs_shape``
    """
    if artifact is None:
        if obs_shape is None:
            raise ValueError("drq_kwargs needs an artifact to fine-tune or the obs_shape of a random init")
        artifact = EncoderWeights.random_init(obs_shape, seed=seed)
    return crptpro_kwargs(
        artifact,
        net_arch=net_arch or [1024, 1024],
        features_extractor_kwargs={"freeze": False, "features_dim": features_dim, "tanh": True},
    )


class DrQSAC(_ComputeOnceMixin, SAC):
    """SAC on randomly shifted pixels with DrQ's shared, critic-trained conv trunk (:class:`SharedEncoderSACPolicy`).

    The replay buffer is the augmenting frame-lean one of :class:`~sb3_crptpro.sb3.sac.AugmentedSAC` (about one
    stored frame per transition, replicate-pad 4 shift of ``obs`` and ``next_obs``). Defaults follow DrQ's DMC setting
    except the batch (DrQ 512; 128 here, sized for CPUs): lr 1e-3, initial temperature 0.1, critic tau 0.01 and
    conv-trunk tau 0.05 every 2 updates, actor every 2 updates.

    :param policy: :class:`SharedEncoderSACPolicy` (default) or its name ``"SharedEncoderSACPolicy"``
    :param encoder_tau: EMA rate of the critic target's conv trunk (DrQ 0.05)
    :param actor_update_interval: update actor and temperature every this many critic updates (DrQ 2)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        **SAC.policy_aliases,
        "SharedEncoderSACPolicy": SharedEncoderSACPolicy,
    }

    def __init__(
        self,
        policy: Any = SharedEncoderSACPolicy,
        env: Any = None,
        learning_rate: float | Schedule = 1e-3,
        batch_size: int = 128,
        tau: float = 0.01,
        ent_coef: str | float = "auto_0.1",
        target_update_interval: int = 2,
        encoder_tau: float = 0.05,
        actor_update_interval: int = 2,
        **kwargs: Any,
    ) -> None:
        for name, value in (("target_update_interval", target_update_interval),
                            ("actor_update_interval", actor_update_interval)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 < encoder_tau <= 1.0:
            raise ValueError(f"encoder_tau must be in (0, 1], got {encoder_tau!r}")
        self.encoder_tau = encoder_tau
        self.actor_update_interval = actor_update_interval
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            batch_size=batch_size,
            tau=tau,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            **kwargs,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        if not isinstance(self.policy, SharedEncoderSACPolicy):
            raise ValueError(f"DrQSAC needs SharedEncoderSACPolicy, got {type(self.policy).__name__}")
        for head in (self.critic, self.critic_target):  # the layout the trunk's passes run in (conv_features)
            head.features_extractor.encoder.to(memory_format=torch.channels_last)
        self._target_pairs = self._split_target_parameters()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_target_pairs"]  # parameters: the policy's state dict holds them

    def _split_target_parameters(self) -> list[tuple[list[torch.Tensor], list[torch.Tensor], float]]:
        """(online, target, tau) groups: the conv trunk at ``encoder_tau``, everything else of the critic at ``tau``."""
        online = dict(self.critic.named_parameters())
        target = dict(self.critic_target.named_parameters())
        conv = sorted(name for name in online if name.startswith("features_extractor.encoder."))
        heads = sorted(name for name in online if name not in set(conv))
        return [([online[n] for n in names], [target[n] for n in names], tau)
                for names, tau in ((conv, self.encoder_tau), (heads, self.tau))]  # fmt: skip

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Critic (and shared conv trunk) update per step; actor and temperature every ``actor_update_interval``;
        targets every ``target_update_interval`` (counted in updates over the whole run)."""
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        trunk, target_trunk = self.critic.features_extractor, self.critic_target.features_extractor
        logs: dict[str, list[float]] = {"critic_loss": [], "actor_loss": [], "ent_coef": [], "ent_coef_loss": []}
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = data.discounts if data.discounts is not None else self.gamma
            ent_coef = torch.exp(self.log_ent_coef.detach()) if self.log_ent_coef is not None else self.ent_coef_tensor
            conv = trunk.conv_features(data.observations)  # the one pass with gradient: the critic trains the trunk
            with torch.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(trunk.conv_features(data.next_observations))
                next_q = torch.cat(self.critic_target(target_trunk.conv_features(data.next_observations),
                                                      next_actions), dim=1)  # fmt: skip
                next_q = next_q.min(dim=1, keepdim=True).values - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in self.critic(conv, data.actions))
            assert isinstance(critic_loss, torch.Tensor)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            logs["critic_loss"].append(critic_loss.item())
            logs["ent_coef"].append(float(ent_coef))
            self._n_updates += 1
            if self._n_updates % self.actor_update_interval == 0:
                self._update_actor(conv.detach(), ent_coef, logs)
            if self._n_updates % self.target_update_interval == 0:
                for online, target, tau in self._target_pairs:
                    polyak_update(online, target, tau)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            if values:
                self.logger.record(f"train/{key}", float(np.mean(values)))

    def _update_actor(self, conv: torch.Tensor, ent_coef: torch.Tensor, logs: dict[str, list[float]]) -> None:
        """Actor (and temperature) step on detached conv features: the actor loss never reaches the conv trunk."""
        actions_pi, log_prob = self.actor.action_log_prob(conv)
        log_prob = log_prob.reshape(-1, 1)
        q_pi = torch.cat(self.critic(conv, actions_pi), dim=1).min(dim=1, keepdim=True).values
        actor_loss = (ent_coef * log_prob - q_pi).mean()
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()
        logs["actor_loss"].append(actor_loss.item())
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            assert isinstance(self.target_entropy, float)
            ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            self.ent_coef_optimizer.zero_grad()
            ent_coef_loss.backward()
            self.ent_coef_optimizer.step()
            logs["ent_coef_loss"].append(ent_coef_loss.item())
