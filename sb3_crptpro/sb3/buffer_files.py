"""A replay buffer on disk sized to what it holds, not to its capacity.

SB3's ``save_replay_buffer`` pickles the buffer as allocated: a 500-step embedding run with the ``embedding``
preset (capacity 100,000, two 128-float observations per transition) wrote a 106 MB file for 500 transitions
(measured). :func:`save_filled_replay_buffer` pickles the buffer with every array cut to the rows written so far;
:func:`load_filled_replay_buffer` loads it into a model and pads the arrays back to their capacity with zeros (the
values the unwritten rows held), so a resumed run continues from the very buffer it saved.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_crptpro.sb3.buffers import FrameStackReplayBuffer

__all__ = ["load_filled_replay_buffer", "save_filled_replay_buffer"]

#: attribute of a saved (cut) buffer: ``{attribute: rows at capacity}``, removed on load
_CUT = "_sb3_crptpro_capacity_rows"


def _rows_in_use(buffer: ReplayBuffer) -> dict[str, int]:
    """Rows of each per-transition array that hold data: the written transitions plus one (SB3 with
    ``optimize_memory_usage`` keeps the newest ``next_obs`` in the row after ``pos``) and, for
    :class:`~sb3_crptpro.sb3.buffers.FrameStackReplayBuffer`, the frames written to its ring so far."""
    if buffer.full:
        return {}
    rows = min(buffer.pos + 1, buffer.buffer_size)
    used = {name: rows for name, value in vars(buffer).items() if _is_rowwise(value, buffer.buffer_size)}
    if isinstance(buffer, FrameStackReplayBuffer):
        written = int(buffer.frame_count.max(initial=0))
        if written < len(buffer.frames):
            used["frames"] = written
    return used


def _is_rowwise(value: Any, capacity: int) -> bool:
    if isinstance(value, dict):  # DictReplayBuffer: one array per observation key
        return bool(value) and all(_is_rowwise(v, capacity) for v in value.values())
    return isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == capacity


def _resize(value: Any, rows: int) -> Any:
    if isinstance(value, dict):
        return {k: _resize(v, rows) for k, v in value.items()}
    if len(value) >= rows:
        return value[:rows]
    padded = np.zeros((rows, *value.shape[1:]), dtype=value.dtype)  # pages of zeros are allocated when written
    padded[: len(value)] = value
    return padded


def save_filled_replay_buffer(buffer: ReplayBuffer, path: str | Path) -> None:
    """Pickle ``buffer`` to ``path`` with its arrays cut to the rows in use (the buffer itself is not changed).

    :param buffer: an SB3 ``ReplayBuffer`` (or subclass: ``DictReplayBuffer``, the frame-lean buffers)
    :param path: file to write (SB3's ``save_replay_buffer`` format, plain pickle, no compression)
    """
    used = _rows_in_use(buffer)
    saved = copy.copy(buffer)  # shallow: the cut arrays are views, nothing is copied in memory
    for name, rows in used.items():
        setattr(saved, name, _resize(getattr(buffer, name), rows))
    setattr(saved, _CUT, {name: len(_first(getattr(buffer, name))) for name in used})
    Path(path).write_bytes(pickle.dumps(saved, protocol=pickle.HIGHEST_PROTOCOL))


def _first(value: Any) -> np.ndarray:
    return next(iter(value.values())) if isinstance(value, dict) else value


def load_filled_replay_buffer(model: Any, path: str | Path) -> None:
    """``model.load_replay_buffer(path)``, then the arrays of a buffer saved by :func:`save_filled_replay_buffer`
    padded back to their capacity (a file written by SB3's ``save_replay_buffer`` loads unchanged).

    :param model: an SB3 off-policy algorithm
    :param path: the pickled buffer
    """
    model.load_replay_buffer(path)
    buffer = model.replay_buffer
    for name, rows in vars(buffer).pop(_CUT, {}).items():
        setattr(buffer, name, _resize(getattr(buffer, name), rows))
