"""Warnings that point at the user's line: the first caller outside the package.

``warnings.warn(..., stacklevel=n)`` names a fixed frame, so a warning raised deep in the package (a collapsed
pretraining found at the end of ``Pretrainer.fit``, reached through ``pretrain_encoder``) showed one of the package's
own lines, e.g. ``stats = trainer.fit(...)``, instead of the user's call. Python 3.12's ``skip_file_prefixes`` does
this; the package supports 3.10, so the frames are walked here.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

__all__ = ["warn_user"]

_PACKAGE = str(Path(__file__).resolve().parents[1])


def _outside_package_level() -> int:
    """``stacklevel`` of the first frame (from :func:`warn_user`'s caller up) whose file is not in the package."""
    frame, level = sys._getframe(2), 2  # the caller of warn_user
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 2


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first caller outside ``sb3_crptpro`` (the user's
    script, or the interpreter's entry point under the CLI), so the source line shown is the user's."""
    warnings.warn(message, category, stacklevel=_outside_package_level())
