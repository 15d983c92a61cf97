"""Torch thread counts for an SB3 off-policy ``learn``: one thread while the rollout steps, the batched-update count
(the free cores when the run or process started, kept since) while the gradient steps run
(:mod:`sb3_crptpro.common.threads`)."""

from __future__ import annotations

import contextlib

from stable_baselines3.common.callbacks import BaseCallback

from sb3_crptpro.common.threads import batch_threads, frame_threads

__all__ = ["UpdateThreadsCallback"]


class UpdateThreadsCallback(BaseCallback):
    """Switch torch's thread count between the phases of an off-policy ``learn`` loop: SB3 calls ``train`` (the
    gradient steps) between ``on_rollout_end`` and the next ``on_rollout_start``, so the callback enters
    :func:`~sb3_crptpro.common.threads.batch_threads` at the end of each rollout and
    :func:`~sb3_crptpro.common.threads.frame_threads` at its start (policy forward on one observation, evaluation
    episodes of ``EvalCallback``). A user's ``OMP_NUM_THREADS`` or ``torch.set_num_threads`` is left alone; the
    thread count before ``learn`` is restored when it ends. SB3 ends a ``learn`` that raised (Ctrl-C included)
    without telling its callbacks: call :meth:`close` then (``with contextlib.closing(callback): model.learn(...)``),
    or torch keeps the phase's count until the callback is garbage-collected.
    """

    def __init__(self) -> None:
        super().__init__()
        self._phase = contextlib.ExitStack()

    def _switch(self, phase: contextlib.AbstractContextManager[int]) -> None:
        self._phase.close()
        self._phase.enter_context(phase)

    def _on_training_start(self) -> None:
        self._switch(frame_threads())

    def _on_rollout_start(self) -> None:
        self._switch(frame_threads())

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self._switch(batch_threads())

    def _on_training_end(self) -> None:
        self.close()

    def close(self) -> None:
        """Leave the current phase: torch's thread count is again the one from before ``learn``."""
        self._phase.close()
