"""Run the gradient step while the env workers step, render and encode (issue 13).

SB3's off-policy loop is serial: choose an action, ``env.step`` (``step_async`` + ``step_wait``), store the
transition, then ``train``. With the frozen encoder of embedding mode an env step costs ~3 ms on the CPU (physics,
rendering, one conv pass) and a round of SAC updates ~6-9 ms, one after the other. :class:`OverlapTrainingMixin`
defers each ``train`` call to just after the next ``step_async``, so that the updates run in this process while
``SubprocVecEnv`` workers compute the next transition (pair it with ``make_pixel_vec_env(..., encoder=...)`` so
that the workers also encode).

What changes in what is learned: the round of updates SB3 runs after storing transition ``t`` runs after action
``t + 1`` was chosen, so that action comes from a policy one round of updates older. The updates, their number and
the replay buffer they sample from are the same (transition ``t + 1`` is stored after them). With a
``DummyVecEnv`` nothing overlaps and only this reordering remains.

Once the workers' stepping, rendering and encoding are hidden, the updates are the critical path, so the overlapped
algorithms default to PyTorch's fused Adam (:func:`with_fused_adam`): one kernel per optimizer step instead of a
loop over parameters, the same Adam update up to float rounding; +8% to +22% agent steps/s within each repeat of
``benchmarks/embedding_throughput.py`` at 64 and 84 px (docs/embedding.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sb3_contrib import TQC
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

__all__ = ["OverlapTrainingMixin", "OverlappedSAC", "OverlappedTQC", "with_fused_adam"]

_FUSABLE = (torch.optim.Adam, torch.optim.AdamW)


def _fused_devices() -> list[str]:
    try:  # private, but the list PyTorch itself checks ``fused=True`` against (absent in old releases)
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return []
    return list(_get_fused_kernels_supported_devices())


def with_fused_adam(policy_kwargs: dict[str, Any] | None, device: str | torch.device) -> dict[str, Any]:
    """``policy_kwargs`` with ``optimizer_kwargs["fused"] = True`` added, for SB3 policies (issue 13).

    Added only when the policy's optimizer is Adam or AdamW (SB3's default is Adam), PyTorch has fused kernels for
    ``device`` (CPU since PyTorch 2.4, CUDA) and the caller set neither ``fused`` nor ``foreach``; otherwise a copy
    of ``policy_kwargs`` unchanged. The input is not modified.

    :param policy_kwargs: SB3 ``policy_kwargs`` (``None``: empty)
    :param device: the device the policy will live on
    :return: a new dict
    """
    kwargs = dict(policy_kwargs or {})
    optimizer_kwargs = dict(kwargs.get("optimizer_kwargs") or {})
    optimizer_class = kwargs.get("optimizer_class", torch.optim.Adam)
    fusable = isinstance(optimizer_class, type) and issubclass(optimizer_class, _FUSABLE)
    if fusable and torch.device(device).type in _fused_devices() and not {"fused", "foreach"} & optimizer_kwargs.keys():
        kwargs["optimizer_kwargs"] = {**optimizer_kwargs, "fused": True}
    return kwargs


class _TrainAfterStepAsync(VecEnvWrapper):
    """Runs the algorithm's pending updates right after handing the actions to the workers."""

    def __init__(self, venv: VecEnv, run_pending: Any) -> None:
        super().__init__(venv)
        self.run_pending = run_pending

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(actions)
        self.run_pending()

    def step_wait(self) -> Any:
        return self.venv.step_wait()


class OverlapTrainingMixin:
    """Mixin for SB3 off-policy algorithms (``class MySAC(OverlapTrainingMixin, SAC)``): each round of gradient
    steps runs while the VecEnv computes the next transition (see the module docstring for what changes).

    Same gradient steps and batch size as the base class; the last round of a ``learn`` call runs before it
    returns, so a model is never saved with updates owed. Speed-up needs env work outside this process
    (``SubprocVecEnv``); measured by ``benchmarks/embedding_throughput.py``. The policy's Adam is fused where the
    device allows (:func:`with_fused_adam`); ``policy_kwargs={"optimizer_kwargs": {"fused": False}}`` keeps SB3's.
    """

    _overlap_pending: tuple[int, int] | None = None
    _overlap_env: _TrainAfterStepAsync | None = None

    def _setup_model(self) -> None:
        # also runs in ``load``, after the saved policy_kwargs (which then already say ``fused``) are restored
        self.policy_kwargs = with_fused_adam(self.policy_kwargs, self.device)  # type: ignore[attr-defined]
        super()._setup_model()  # type: ignore[misc]

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Queue a round of updates (run after the next ``step_async``, or at the end of ``learn``)."""
        self._run_pending_updates()
        self._overlap_pending = (gradient_steps, batch_size)

    def _run_pending_updates(self) -> None:
        pending, self._overlap_pending = self._overlap_pending, None
        if pending is not None:
            super().train(gradient_steps=pending[0], batch_size=pending[1])  # type: ignore[misc]

    def collect_rollouts(self, env: VecEnv, *args: Any, **kwargs: Any) -> Any:
        if self._overlap_env is None or self._overlap_env.venv is not env:
            self._overlap_env = _TrainAfterStepAsync(env, self._run_pending_updates)
        return super().collect_rollouts(self._overlap_env, *args, **kwargs)  # type: ignore[misc]

    def learn(self, *args: Any, **kwargs: Any) -> Any:
        model = super().learn(*args, **kwargs)  # type: ignore[misc]
        self._run_pending_updates()
        return model

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_overlap_pending", "_overlap_env"]  # type: ignore[misc]


class OverlappedSAC(OverlapTrainingMixin, SAC):
    """SB3's ``SAC`` with updates overlapped with env stepping (:class:`OverlapTrainingMixin`). A saved model
    loads with ``SAC.load`` too."""


class OverlappedTQC(OverlapTrainingMixin, TQC):
    """sb3-contrib's ``TQC`` with updates overlapped with env stepping (:class:`OverlapTrainingMixin`)."""
