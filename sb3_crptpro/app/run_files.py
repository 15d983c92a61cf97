"""The files of a run directory written by :func:`~sb3_crptpro.app.training.train`: its place
(``<log_dir>/<algo>/<task>_<n>``), ``config.yml``, the encoder it was trained with, and whether it is complete."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from sb3_crptpro.common.artifact import PretrainedArtifact

__all__ = [
    "RUN_ENCODER",
    "load_run_config",
    "load_run_encoder",
    "next_run_dir",
    "run_encoder_path",
    "run_is_complete",
    "shipped_name",
]

#: file name of the run's copy of the artifact in embedding mode (the policy alone cannot read pixels)
RUN_ENCODER = "encoder.safetensors"


def next_run_dir(log_dir: str | Path, algo: str, task: str) -> Path:
    """``<log_dir>/<algo>/<task>_<n>`` with ``n`` one more than the largest existing id (rl-zoo3's layout)."""
    root = Path(log_dir) / algo
    ids = [int(m.group(1)) for p in root.glob(f"{task}_*") if (m := re.fullmatch(rf"{re.escape(task)}_(\d+)", p.name))]
    return root / f"{task}_{max(ids, default=0) + 1}"


def shipped_name(path: str | Path) -> str | None:
    """The name of a shipped encoder whose file ``path`` is (:data:`~sb3_crptpro.common.artifact.PRETRAINED_DIR`)."""
    from sb3_crptpro.common.artifact import PRETRAINED_DIR

    path = Path(path).resolve()
    return path.stem if path.parent == PRETRAINED_DIR.resolve() else None


def run_encoder_path(run_dir: str | Path, saved: dict[str, Any]) -> Path:
    """The artifact a run's env must be encoded with: the run's own copy (embedding mode with an encoder file of
    the user's), the installed package's file of a shipped encoder (recorded by name), or the original path."""
    from sb3_crptpro.common.artifact import resolve_artifact_path

    encoder = saved["encoder"]
    if encoder.get("copy"):
        return Path(run_dir) / encoder["copy"]
    if encoder.get("shipped"):
        return resolve_artifact_path(encoder["shipped"])
    return Path(encoder["path"])


def load_run_encoder(run_dir: str | Path, saved: dict[str, Any]) -> PretrainedArtifact:
    """The artifact of a run (:func:`run_encoder_path`), checked against the tensor checksum the run recorded.

    :raises FileNotFoundError: the file is gone (or the shipped name is not in this package version)
    :raises ValueError: another encoder than the run's (its ``tensor_sha256`` differs: e.g. the file was replaced,
        or a later package version ships other weights under that name)
    """
    from sb3_crptpro.common.artifact import load_artifact

    artifact = load_artifact(run_encoder_path(run_dir, saved))
    recorded = saved["encoder"].get("tensor_sha256")
    if recorded and artifact.metadata.get("tensor_sha256") != recorded:
        raise ValueError(f"{artifact.path} is not the encoder the run started with (tensor sha256 "
                         f"{str(artifact.metadata.get('tensor_sha256'))[:12]}, recorded {recorded[:12]}): the run "
                         "needs the artifact it was trained with")  # fmt: skip
    return artifact


def run_is_complete(run_dir: str | Path) -> bool:
    """Whether the run's final model holds all of its ``steps`` (``resume`` then has nothing to do)."""
    saved = load_run_config(run_dir)
    model_file = Path(run_dir) / saved["model"]
    return model_file.is_file() and _saved_timesteps(model_file) >= int(saved["train"]["steps"])


def _saved_timesteps(model_zip: Path) -> int:
    """``num_timesteps`` recorded in an SB3 model zip (its ``data`` JSON), without loading the model."""
    import zipfile

    with zipfile.ZipFile(model_zip) as archive:
        return int(json.loads(archive.read("data")).get("num_timesteps", 0))


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.yml`` of a run directory written by :func:`train`.

    :raises FileNotFoundError: no ``config.yml``
    :raises ValueError: a ``config.yml`` that is not a run's (unreadable YAML, missing sections)
    """
    path = Path(run_dir) / "config.yml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run (no config.yml); runs are made by `train`")
    try:
        saved = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not readable YAML ({str(exc).splitlines()[0]}): was it edited?") from None
    missing = {"train", "env", "encoder", "model"} - set(saved if isinstance(saved, dict) else {})
    if missing:
        raise ValueError(f"{path} lacks {', '.join(sorted(missing))}: not a run written by `sb3-crptpro train`")
    return saved
