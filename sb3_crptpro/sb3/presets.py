"""Downstream SAC hyperparameter presets (plain data; importing this module is free)."""

from __future__ import annotations

from typing import Any

__all__ = ["PAPER_SAC_PRESET", "TRAIN_PRESETS"]

#: Reference downstream SAC values (PAPER.md). SB3's SAC updates the actor every step (no ``policy_delay``);
#: the reference updates it every 2 steps, which SB3 does not offer.
PAPER_SAC_PRESET: dict[str, Any] = {
    "batch_size": 512,
    "learning_rate": 1e-4,
    "ent_coef": "auto_0.1",
    "tau": 0.01,
    "target_update_interval": 2,
    "learning_starts": 1000,
    "buffer_size": 40_000,
    "gamma": 0.99,
}

#: Presets of ``sb3-crptpro train``: ``paper`` is :data:`PAPER_SAC_PRESET` with the reference 1024x1024 heads;
#: ``quick`` is sized for a CPU laptop (pixel modes); ``embedding`` is the learner on frozen vectors (embedding mode):
#: one gradient step per agent step, as DrQ and CURL do, and ``LayerNorm`` in the critic (the six-task study's choice,
#: :mod:`~sb3_crptpro.sb3.policies`). ``net_arch`` and ``critic_layer_norm`` (embedding mode only: the policy is
#: :class:`~sb3_crptpro.sb3.policies.LayerNormCriticSACPolicy` / ``...TQCPolicy`` instead of ``MlpPolicy``) go to
#: the policy, the rest to the algorithm.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {**PAPER_SAC_PRESET, "net_arch": [1024, 1024]},
    "quick": {
        **PAPER_SAC_PRESET,
        "batch_size": 64,
        "learning_rate": 3e-4,
        "learning_starts": 250,
        "buffer_size": 20_000,
        "train_freq": 2,
        "net_arch": [256, 256],
    },
    "embedding": {
        "batch_size": 128,
        "learning_rate": 3e-4,
        "ent_coef": "auto_0.1",
        "tau": 0.01,
        "target_update_interval": 1,
        "learning_starts": 1000,
        "buffer_size": 100_000,
        "gamma": 0.99,
        "train_freq": 1,
        "gradient_steps": 1,
        "n_steps": 1,
        "net_arch": [256, 256],
        "critic_layer_norm": True,
    },
}
