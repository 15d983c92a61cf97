"""One writer per folder: ``collect``, ``pretrain`` and ``train`` (also ``--resume``) hold an exclusive lock on the
folder they write for as long as they write it.

Two processes writing one run interleave their files: two ``train --resume`` of one run both "succeeded" and left a
``monitor.csv`` with the episodes of both (measured: 120 agent steps logged for an 80-step run). The lock is an OS
file lock (``flock`` on POSIX, ``LockFileEx`` on Windows, through the ``filelock`` package that torch already
depends on) on ``<folder>/.lock``: the OS releases it when its process exits, however it exits, so a crashed or
``kill -9``-ed run never leaves its folder locked. The empty ``.lock`` file stays; it means nothing on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["LOCK_NAME", "FolderInUseError", "exclusive_folder", "folder_in_use"]

#: name of the lock file inside a locked folder (readers of a folder skip it)
LOCK_NAME = ".lock"


class FolderInUseError(BlockingIOError):
    """Another process holds the folder's lock (an ``OSError``: the command line prints it as one line)."""


@contextmanager
def exclusive_folder(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing) for the ``with`` block; refuse at once if another process
    holds it.

    :param folder: the folder to be written
    :param what: what the folder is, for the message (e.g. ``"run"``, ``"dataset"``, ``"pretraining work dir"``)
    :return: (as the ``with`` target) the folder
    :raises FolderInUseError: another process (or another ``with`` block of this one) holds the lock
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise FolderInUseError(
            f"{what} {folder} is being written by another process (it holds {folder / LOCK_NAME}): wait for that "
            "one to finish or stop it, then run this command again"
        ) from None
    try:
        yield folder
    finally:
        lock.release()


def folder_in_use(folder: str | Path) -> bool:
    """Whether a writer holds the lock of ``folder`` now (a reader's check: e.g. ``pretrain`` on a dataset that
    ``collect`` is still writing): another process, or an :func:`exclusive_folder` block of this one (the OS lock
    belongs to an open file, measured).

    Writes nothing: a folder without a ``.lock`` file, or whose lock file this process may not open (a read-only
    copy), counts as not in use.
    """
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return False
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:  # no write permission on the lock file: nobody can be writing this copy through it
        return False
    lock.release()
    return False
