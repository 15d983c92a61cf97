"""rl-baselines3-zoo integration: Gymnasium ids for the pixel DMC tasks, ``policy_kwargs`` and VecEnv wrappers
that read the artifact path from an env variable, and a runner for rl-zoo3 scripts without ``--gym-packages``.

``python -m rl_zoo3.train --algo sac --env CRPTpro/cheetah_run-v0 --gym-packages sb3_crptpro.zoo
--conf-file hyperparams/sac.yml`` with ``CRPTPRO_ENCODER=encoder.safetensors`` set. Importing this module registers
``CRPTpro/<task>-v0`` for every DMC task (env kwargs: those of :func:`~sb3_crptpro.envs.make_dmc_env`,
``render="fast"`` by default). rl-zoo3's ``vec_env_wrapper`` hyperparameter takes :func:`EncodeObservation`
(embedding mode, ``hyperparams/sac_embedding.yml``), re-applied in ``enjoy`` and ``record_video``; its ``callback``
hyperparameter takes :class:`IntrinsicRewardCallback` (the prototype kNN reward, on the training env only, so that
``enjoy`` prints the task return), placed where :func:`IntrinsicRewardSlot` stands when it is listed (below
``VecNormalize`` with ``normalize: True``). ``record_video`` has no ``--gym-packages`` option:
``python -m sb3_crptpro.zoo record_video <its arguments>`` registers the ids and runs it (issue 15).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

from sb3_crptpro.envs import available_tasks
from sb3_crptpro.sb3.reward import IntrinsicRewardCallback as _RewardCallback

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

__all__ = [
    "ENCODER_ENV_VAR",
    "EncodeObservation",
    "IntrinsicReward",
    "IntrinsicRewardCallback",
    "IntrinsicRewardSlot",
    "env_id",
    "policy_kwargs",
    "register_envs",
]

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
        if ident not in gym.registry:  # gym.make applies the check after its TimeLimit (max_episode_steps=...)
            check = WrapperSpec("TimeLimitCheck", "sb3_crptpro.envs.factory:TimeLimitCheck", {})
            gym.register(ident, entry_point="sb3_crptpro.envs:make_dmc_env", kwargs={"task": task, "render": render},
                         additional_wrappers=(check,))  # fmt: skip
        ids.append(ident)
    return ids


def _encoder_path() -> str:
    path = os.environ.get(ENCODER_ENV_VAR)
    if not path:
        raise ValueError(f"set {ENCODER_ENV_VAR} to the pretrained artifact (.safetensors) to use with rl-zoo3, "
                         "or to a shipped encoder's name (dmc-64px-invdyn; `sb3-crptpro inspect --list`)")  # fmt: skip
    return path


def policy_kwargs(**overrides: Any) -> dict[str, Any]:
    """:func:`~sb3_crptpro.sb3.extractor.crptpro_kwargs` of the artifact named by ``$CRPTPRO_ENCODER``."""
    from sb3_crptpro.sb3.extractor import crptpro_kwargs

    return crptpro_kwargs(_encoder_path(), **overrides)


def IntrinsicReward(venv: VecEnv, **kwargs: Any) -> VecEnv:
    """:class:`~sb3_crptpro.sb3.reward.PrototypeIntrinsicReward` with the artifact of ``$CRPTPRO_ENCODER`` (or, on an
    :func:`EncodeObservation` env, its vectors); ``kwargs`` as the class (``coef``, ``queue_size``, ...).

    As a ``vec_env_wrapper``, rl-zoo3 re-applies it in ``enjoy`` and ``record_video``, whose printed returns then
    include the intrinsic part: prefer :class:`IntrinsicRewardCallback` (the ``callback`` hyperparameter), as
    ``hyperparams/*.yml`` do."""
    from sb3_crptpro.sb3.encode import VecEncodeObservation
    from sb3_crptpro.sb3.reward import PrototypeIntrinsicReward

    artifact = None if isinstance(venv, VecEncodeObservation) else _encoder_path()
    return PrototypeIntrinsicReward(venv, artifact, **kwargs)


class IntrinsicRewardCallback(_RewardCallback):
    """rl-zoo3's ``callback`` hyperparameter: :class:`~sb3_crptpro.sb3.reward.IntrinsicRewardCallback` with the
    artifact of ``$CRPTPRO_ENCODER`` (or, on an :func:`EncodeObservation` env, its vectors), so that only the training
    env gets the intrinsic reward and ``enjoy``, ``record_video`` and the evaluations report the task return;
    ``kwargs`` as :class:`~sb3_crptpro.sb3.reward.PrototypeIntrinsicReward` (``coef``, ``queue_size``, ...)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(None, **kwargs)

    def _artifact_for(self, venv: VecEnv) -> str | None:
        from sb3_crptpro.sb3.encode import VecEncodeObservation

        return None if isinstance(venv, VecEncodeObservation) else _encoder_path()


def IntrinsicRewardSlot(venv: VecEnv) -> VecEnv:
    """rl-zoo3's ``vec_env_wrapper``, listed after :func:`EncodeObservation`: an :func:`IntrinsicReward` with
    ``coef=0``, in the training and the evaluation env alike. :class:`IntrinsicRewardCallback` puts the reward in
    its place in the training env, so that with ``normalize: True`` it sits below rl-zoo3's ``VecNormalize`` (SAC
    and TQC store ``VecNormalize``'s original reward) and both envs keep the same layers (SB3's
    ``sync_envs_normalization`` pairs them level by level); ``enjoy`` and the evaluations report the task return."""
    return IntrinsicReward(venv, coef=0.0)


def EncodeObservation(venv: VecEnv, **kwargs: Any) -> VecEnv:
    """:class:`~sb3_crptpro.sb3.encode.VecEncodeObservation` with the artifact of ``$CRPTPRO_ENCODER``."""
    from sb3_crptpro.sb3.encode import VecEncodeObservation

    return VecEncodeObservation(venv, _encoder_path(), **kwargs)


def main(argv: list[str] | None = None) -> None:
    """``python -m sb3_crptpro.zoo <script> [args]``: run ``rl_zoo3.<script>`` with the ``CRPTpro/*`` ids
    registered (for ``record_video``, ``record_training``, which have no ``--gym-packages``).

    Exits with status 2 and a usage line when the script is missing or is not an rl_zoo3 module."""
    import importlib.util
    import runpy

    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: python -m sb3_crptpro.zoo SCRIPT [ARGS...]  (SCRIPT: an rl_zoo3 module, e.g. record_video)"
    if argv and argv[0] in ("-h", "--help"):
        print(usage)
        return
    if not argv or importlib.util.find_spec(f"rl_zoo3.{argv[0]}") is None:
        problem = "no SCRIPT given" if not argv else f"rl_zoo3 has no module {argv[0]!r}"
        print(f"{usage}\nerror: {problem}", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = [f"rl_zoo3.{argv[0]}", *argv[1:]]
    runpy.run_module(f"rl_zoo3.{argv[0]}", run_name="__main__", alter_sys=True)


register_envs()

if __name__ == "__main__":
    main()
