"""On-disk dataset format: one directory per domain, frames stored once, crash-safe shards, a JSON manifest.

Layout of a domain directory::

    manifest.json        format version, env config, seeds, counts, one entry (with sha256) per shard
    shard_00000.bin      raw little-endian arrays, 64-byte aligned (see :func:`shard_layout`)
    shard_00001.bin      ...

Each shard holds whole episodes (an episode never spans two shards). Per *frame* it stores the rendered RGB frame
(``uint8 [3, H, W]``), the proprioceptive state after the step that produced it, the action and reward of that step,
and flags (first frame of an episode, terminated, truncated). The first frame of an episode comes from ``reset`` and
has a zero action and reward. A transition is any non-first frame ``j``: ``(stack ending at j-1) -> (stack ending
at j)``, so a dataset of ``N`` transitions in ``E`` episodes holds ``N + E`` frames (stacks are rebuilt on read).

Shards are written to a temporary name, fsynced and renamed; the manifest is replaced the same way after each
shard, so a crash loses at most the shards being written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sb3_crptpro._compat import check_format, give_default_permissions

FORMAT_NAME = "sb3-crptpro-dataset"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
_ALIGN = 64

FLAG_FIRST = 1
FLAG_TERMINATED = 2
FLAG_TRUNCATED = 4


class DatasetError(ValueError):
    """A dataset on disk is missing, corrupted, of an unknown format, or does not match the requested config."""


@dataclass(frozen=True)
class ShardField:
    """One array inside a shard file."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


def shard_layout(
    n_frames: int, frame_shape: tuple[int, ...], state_dim: int, action_dim: int
) -> tuple[list[ShardField], int]:
    """Fields of a shard with ``n_frames`` frames and the file size they need (each field 64-byte aligned)."""
    specs = [
        ("frames", np.dtype(np.uint8), (n_frames, *frame_shape)),
        ("states", np.dtype("<f4"), (n_frames, state_dim)),
        ("actions", np.dtype("<f4"), (n_frames, action_dim)),
        ("rewards", np.dtype("<f4"), (n_frames,)),
        ("flags", np.dtype(np.uint8), (n_frames,)),
    ]
    fields, offset = [], 0
    for name, dtype, shape in specs:
        offset = -(-offset // _ALIGN) * _ALIGN
        field = ShardField(name, dtype, shape, offset)
        fields.append(field)
        offset += field.nbytes
    return fields, offset


@dataclass
class ShardData:
    """In-memory content of one shard (what a collection worker produces)."""

    frames: np.ndarray  # uint8 [F, 3, H, W]
    states: np.ndarray  # float32 [F, S]
    actions: np.ndarray  # float32 [F, A]
    rewards: np.ndarray  # float32 [F]
    flags: np.ndarray  # uint8 [F]

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def n_episodes(self) -> int:
        return int(np.count_nonzero(self.flags & FLAG_FIRST))

    @property
    def n_transitions(self) -> int:
        return self.n_frames - self.n_episodes


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, chunks: list[bytes] | bytes) -> None:
    """Write to ``path`` through a temporary file that is fsynced and renamed (readers never see half a file).

    :raises IsADirectoryError: ``path`` is a folder (checked before anything is written)
    """
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give a file path")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    give_default_permissions(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_shard(path: Path, data: ShardData) -> dict[str, Any]:
    """Write ``data`` atomically to ``path``; return its manifest entry (counts, size, sha256)."""
    frame_shape = tuple(data.frames.shape[1:])
    fields, size = shard_layout(data.n_frames, frame_shape, data.states.shape[1], data.actions.shape[1])
    chunks: list[bytes] = []
    position = 0
    digest = hashlib.sha256()
    for field in fields:
        array = np.ascontiguousarray(getattr(data, field.name), dtype=field.dtype)
        if array.shape != field.shape:
            raise ValueError(f"shard field {field.name}: shape {array.shape} != {field.shape}")
        for chunk in (b"\0" * (field.offset - position), array.tobytes()):
            digest.update(chunk)
            chunks.append(chunk)
        position = field.offset + field.nbytes
    assert position == size
    atomic_write_bytes(path, chunks)
    return {
        "file": path.name,
        "frames": data.n_frames,
        "transitions": data.n_transitions,
        "episodes": data.n_episodes,
        "bytes": size,
        "sha256": digest.hexdigest(),
    }


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Load and check a domain directory's manifest.

    :raises DatasetError: when it is missing, not ours, or from a newer format version.
    """
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{path} not found: not a sb3-crptpro dataset directory (run `sb3-crptpro collect`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc})") from exc
    check_format(manifest, source=str(path), name=FORMAT_NAME, max_version=FORMAT_VERSION, error=DatasetError)
    return manifest


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically."""
    atomic_write_bytes(directory / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode())


def manifest_sha256(directory: str | Path) -> str:
    """Hash identifying a dataset's content (the manifest records every shard's sha256)."""
    return sha256_file(Path(directory) / MANIFEST_NAME)


class ShardReader:
    """Memory-mapped read access to one shard, checked against its manifest entry."""

    def __init__(self, directory: Path, entry: dict[str, Any], manifest: dict[str, Any], verify: bool = True) -> None:
        self.path = directory / entry["file"]
        shapes = manifest["shapes"]
        fields, size = shard_layout(
            int(entry["frames"]), tuple(shapes["frame"]), int(shapes["state_dim"]), int(shapes["action_dim"])
        )
        if not self.path.is_file():
            raise DatasetError(f"shard {self.path} listed in the manifest is missing")
        actual = self.path.stat().st_size
        if actual != size or size != entry["bytes"]:
            raise DatasetError(f"shard {self.path} is truncated or corrupted: {actual} bytes, expected {size}")
        if verify and sha256_file(self.path) != entry["sha256"]:
            raise DatasetError(f"shard {self.path} is corrupted: sha256 does not match the manifest")
        self.arrays: dict[str, np.ndarray] = {
            f.name: np.memmap(self.path, dtype=f.dtype, mode="r", offset=f.offset, shape=f.shape) for f in fields
        }

    @property
    def frames(self) -> np.ndarray:
        return self.arrays["frames"]

    @property
    def flags(self) -> np.ndarray:
        return self.arrays["flags"]

    @property
    def states(self) -> np.ndarray:
        return self.arrays["states"]
