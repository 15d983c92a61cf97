"""The rl-zoo3 entry point, at a path that stays put: ``--gym-packages sb3_crptpro.zoo``,
``callback: sb3_crptpro.zoo.IntrinsicRewardCallback`` in hyperparameter files, and
``python -m sb3_crptpro.zoo record_video ...``. The code lives in :mod:`sb3_crptpro.sb3.zoo` (importing either
registers ``CRPTpro/<task>-v0``)."""

from sb3_crptpro.sb3.zoo import (
    ENCODER_ENV_VAR,
    EncodeObservation,
    IntrinsicReward,
    IntrinsicRewardCallback,
    IntrinsicRewardSlot,
    env_id,
    main,
    policy_kwargs,
    register_envs,
)

__all__ = [
    "ENCODER_ENV_VAR",
    "EncodeObservation",
    "IntrinsicReward",
    "IntrinsicRewardCallback",
    "IntrinsicRewardSlot",
    "env_id",
    "main",
    "policy_kwargs",
    "register_envs",
]

if __name__ == "__main__":
    main()
