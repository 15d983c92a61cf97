"""Which encoder a training run used, recorded so that the run can find it again after it or its venv moves.

``config.yml`` records under ``encoder``: the tensor checksum (what identifies an encoder), the shipped encoder's
``name`` when the run used one (``dmc-64px``: its file lives inside the installed package, whose path changes with
the venv), the absolute ``path`` and the ``relative_path`` from the run directory (a run folder copied together with
its encoder), and in embedding mode the run's own ``copy``. On resume the first of these that exists is used, and
``--encoder`` names the file instead; whichever it is, its tensor checksum must be the recorded one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sb3_crptpro.common.artifact import PretrainedArtifact

__all__ = ["encoder_record", "load_run_encoder", "run_encoder_path", "shipped_name"]


def shipped_name(path: Path) -> str | None:
    """The name of a shipped encoder whose file ``path`` is (in this install, or in the package folder of another
    install or an older venv: ``.../sb3_crptpro/pretrained/<name>.safetensors``), else ``None``."""
    from sb3_crptpro.common.artifact import PRETRAINED_DIR, pretrained_names

    inside = path.parent.name == PRETRAINED_DIR.name and path.parent.parent.name == PRETRAINED_DIR.parent.name
    return path.stem if inside and path.suffix == ".safetensors" and path.stem in pretrained_names() else None


def encoder_record(artifact: PretrainedArtifact, run_dir: Path, copy: str | None) -> dict[str, Any]:
    """The ``encoder`` section of a new run's ``config.yml``.

    :param artifact: the loaded artifact the run trains with
    :param run_dir: the run directory (``relative_path`` is relative to it)
    :param copy: file name of the run's own copy of the artifact (embedding mode), or ``None``
    """
    path = Path(artifact.path).resolve()  # type: ignore[arg-type]
    name = shipped_name(path)
    return {
        "path": str(path),
        "relative_path": os.path.relpath(path, Path(run_dir).resolve()),
        **({"name": name} if name else {}),
        "tensor_sha256": artifact.metadata.get("tensor_sha256"),
        "tasks": artifact.metadata.get("tasks", []),
        **({"copy": copy} if copy else {}),
    }


def run_encoder_path(run_dir: str | Path, saved: dict[str, Any]) -> Path:
    """The artifact file a run's env must be encoded with: the run's own copy (embedding mode), the shipped encoder
    of the recorded name, the recorded path, or the recorded path relative to the run directory, whichever exists
    first (the recorded path when none does).

    Runs of sb3-crptpro 0.2.0 record no name nor relative path: a recorded path inside another install's
    ``sb3_crptpro/pretrained/`` folder counts as the shipped name.
    """
    from sb3_crptpro.common.artifact import PRETRAINED_DIR

    recorded = saved["encoder"]
    path = Path(recorded["path"])
    candidates = []
    if recorded.get("copy"):
        candidates.append(Path(run_dir) / recorded["copy"])
    name = recorded.get("name") or shipped_name(path)
    if name:
        candidates.append(PRETRAINED_DIR / f"{name}.safetensors")
    candidates.append(path)
    if recorded.get("relative_path"):
        candidates.append(Path(run_dir) / recorded["relative_path"])
    return next((p for p in candidates if p.is_file()), path)


def load_run_encoder(
    run_dir: str | Path, saved: dict[str, Any], encoder: str | Path | None = None
) -> PretrainedArtifact:
    """Load and verify the encoder of a run (:func:`run_encoder_path`, or ``encoder`` when given).

    :param encoder: an artifact file or shipped name to use instead of the recorded one (the run's encoder moved)
    :raises FileNotFoundError: no encoder given and the recorded one is nowhere (one line: pass ``--encoder``)
    :raises ValueError: the encoder's tensor checksum is not the recorded one (another encoder)
    """
    from sb3_crptpro.common.artifact import load_artifact

    recorded = saved["encoder"].get("tensor_sha256")
    short = str(recorded)[:12]
    path = Path(encoder) if encoder is not None else run_encoder_path(run_dir, saved)
    if encoder is None and not path.is_file():
        raise FileNotFoundError(f"the run's encoder {path} is not there any more (moved or deleted): pass its file "
                                f"with --encoder (encoder=...); its tensor sha256 must start with {short}")  # fmt: skip
    artifact = load_artifact(path)
    found = artifact.metadata.get("tensor_sha256")
    if recorded and found != recorded:
        raise ValueError(f"{artifact.path} is not the encoder the run started with (tensor sha256 {str(found)[:12]}, "
                         f"recorded {short}): resume needs the artifact it was trained with")  # fmt: skip
    return artifact
