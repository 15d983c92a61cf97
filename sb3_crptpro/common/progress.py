"""tqdm bars that stay readable when the output is piped (a log file, CI, ``| tee``).

On a terminal a tqdm bar redraws one line with carriage returns (and, with ``position``, moves the cursor up with
escape codes). Written to a file, that becomes one line of tens of thousands of characters (a 300-update pretrain:
30,456 characters, measured) and stray ``ESC[A`` codes. :func:`progress_bar` keeps tqdm's bar on a terminal and,
when the stream is not one, prints the same status as a plain line at most every ``interval_s`` seconds and at the
end.
"""

from __future__ import annotations

import io
import sys
from typing import Any, TextIO

__all__ = ["LineStream", "progress_bar"]

#: seconds between two status lines of a piped bar
PIPED_INTERVAL_S = 30.0


class LineStream(io.TextIOBase):
    """A text stream for tqdm that turns each redraw into one plain line (carriage returns and cursor movements
    dropped).

    :param stream: where the lines go
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").replace("\x1b[A", "").strip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True, *, initial: int = 0,
                 position: int | None = None, stream: TextIO | None = None) -> Any:  # fmt: skip
    """A tqdm bar on a terminal; on a piped stream, one status line every :data:`PIPED_INTERVAL_S` seconds and at
    the end (``position`` ignored there: lines need no cursor movement).

    :param total: units in all
    :param desc: the bar's label
    :param unit: what is counted (``"upd"``, ``"frame"``)
    :param enabled: ``False`` gives a disabled bar (same interface, prints nothing)
    :param initial: units already done (a resumed stage)
    :param position: line of the bar among several on a terminal
    :param stream: where the bar goes (default ``sys.stderr``, as tqdm)
    """
    from tqdm.auto import tqdm

    out = stream or sys.stderr
    common = {"total": total, "initial": initial, "desc": desc, "unit": unit, "disable": not enabled}
    if enabled and not out.isatty():
        return tqdm(**common, file=LineStream(out), mininterval=PIPED_INTERVAL_S, maxinterval=PIPED_INTERVAL_S,
                    ncols=100)  # fmt: skip
    return tqdm(**common, file=out, position=position, leave=True)
