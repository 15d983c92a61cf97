"""rl-baselines3-zoo integration: Gymnasium ids for the pixel DMC tasks and ``policy_kwargs`` from an env variable.

``python -m rl_zoo3.train --algo sac --env CRPTpro/cheetah_run-v0 --gym-packages sb3_crptpro.zoo
--conf-file hyperparams/sac.yml`` with ``CRPTPRO_ENCODER=encoder.safetensors`` set. Importing this module registers
``CRPTpro/<task>-v0`` for every DMC task (env kwargs: those of :func:`~sb3_crptpro.envs.make_dmc_env`,
``render="fast"`` by default).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

from sb3_crptpro.envs import available_tasks

__all__ = ["ENCODER_ENV_VAR", "env_id", "policy_kwargs", "register_envs"]

#: environment variable holding the artifact path used by :func:`policy_kwargs`
ENCODER_ENV_VAR = "CRPTPRO_ENCODER"


def env_id(task: str) -> str:
    """The registered id of a task, e.g. ``CRPTpro/cheetah_run-v0``."""
    return f"CRPTpro/{task}-v0"


def register_envs(render: str = "fast") -> list[str]:
    """Register ``CRPTpro/<task>-v0`` for all DMC tasks (idempotent); return the ids."""
    ids = []
    for task in available_tasks():
        ident = env_id(task)
        if ident not in gym.registry:
            gym.register(ident, entry_point="sb3_crptpro.envs:make_dmc_env", kwargs={"task": task, "render": render})
        ids.append(ident)
    return ids


def policy_kwargs(**overrides: Any) -> dict[str, Any]:
    """:func:`~sb3_crptpro.extractor.crptpro_kwargs` of the artifact named by ``$CRPTPRO_ENCODER``."""
    from sb3_crptpro.extractor import crptpro_kwargs

    path = os.environ.get(ENCODER_ENV_VAR)
    if not path:
        raise ValueError(f"set {ENCODER_ENV_VAR} to the pretrained artifact (.safetensors) to use with rl-zoo3")
    return crptpro_kwargs(path, **overrides)


register_envs()
