"""Progress that reaches the user whether or not stdout is a terminal (issue 11).

SB3's ``progress_bar=True`` draws a rich bar, which prints nothing until the end when the output is piped to a file
or a CI log; a long training stage then looks hung. :func:`training_progress` keeps SB3's bar on a terminal and uses
:class:`ProgressLineCallback` (one plain line every ``interval_s`` seconds) elsewhere.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["EpisodeLines", "ProgressLineCallback", "counted", "episode_progress", "training_progress"]


class ProgressLineCallback(BaseCallback):
    """Print ``[<label>] step N/total (p%), S steps/s, ETA`` every ``interval_s`` seconds of wall time and at the end.

    :param total: environment steps of the ``learn`` call
    :param label: prefix of each line
    :param interval_s: seconds between lines
    :param stream: where lines go (default ``sys.stdout``)
    """

    def __init__(self, total: int, label: str = "train", interval_s: float = 30.0, stream: TextIO | None = None):
        super().__init__(verbose=0)
        self.total, self.label, self.interval_s = total, label, interval_s
        self.stream = stream
        self._start = self._last = 0.0
        self._first_step = 0
        self._printed_at = -1

    def _line(self) -> str:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        done = self.num_timesteps - self._first_step
        rate = done / elapsed
        left = max(self.total - done, 0)
        eta = f", ETA {left / rate / 60:.1f} min" if rate > 0 and left else ""
        return (f"[{self.label}] step {done}/{self.total} ({100 * done / max(self.total, 1):.0f}%), "
                f"{rate:.1f} steps/s{eta}")  # fmt: skip

    def _print(self) -> None:
        self._printed_at = self.num_timesteps
        print(self._line(), file=self.stream or sys.stdout, flush=True)

    def _on_training_start(self) -> None:
        self._start = self._last = time.perf_counter()
        self._first_step = self.num_timesteps

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            self._print()
        return True

    def _on_training_end(self) -> None:
        if self._printed_at != self.num_timesteps:  # the last step's line may have just been printed
            self._print()


def training_progress(total: int, enabled: bool, label: str = "train") -> tuple[bool, list[BaseCallback]]:
    """``(progress_bar, callbacks)`` for ``model.learn``: SB3's bar on a terminal, periodic lines otherwise."""
    if not enabled:
        return False, []
    if sys.stdout.isatty():
        return True, []
    return False, [ProgressLineCallback(total, label)]


def counted(n: int, noun: str) -> str:
    """``"1 episode"``, ``"2 episodes"``: a count for progress and summary lines."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class EpisodeLines:
    """The piped form of an episode bar: ``[<desc>] episode k/N`` on its own line as each episode ends (a tqdm bar
    written to a file is one line of carriage-return redraws). Same interface as the tqdm bar it replaces:
    ``update(n)``, ``close()``, context manager.

    :param stream: where lines go (default ``sys.stderr``, where tqdm writes)
    """

    def __init__(self, total: int, desc: str, stream: TextIO | None = None) -> None:
        self.total, self.desc, self.n = total, desc, 0
        self.stream = stream

    def update(self, n: int = 1) -> None:
        for _ in range(n):
            self.n += 1
            print(f"[{self.desc}] episode {self.n}/{self.total}", file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        pass

    def __enter__(self) -> EpisodeLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def episode_progress(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` episodes on a terminal (stderr), :class:`EpisodeLines` when stderr is piped, a
    disabled bar when ``enabled`` is false."""
    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        return EpisodeLines(total, desc)
    return tqdm(total=total, desc=desc, unit="ep", disable=not enabled)
