"""The files of a run directory written by :func:`~sb3_crptpro.app.training.train`: its place
(``<log_dir>/<algo>/<task>_<n>``), ``config.yml`` and whether it is complete. Which encoder it was trained with:
:mod:`~sb3_crptpro.app.run_encoder`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RUN_ENCODER", "load_run_config", "next_run_dir", "run_is_complete"]

#: file name of the run's copy of the artifact in embedding mode (the policy alone cannot read pixels)
RUN_ENCODER = "encoder.safetensors"


def next_run_dir(log_dir: str | Path, algo: str, task: str) -> Path:
    """``<log_dir>/<algo>/<task>_<n>`` with ``n`` one more than the largest existing id (rl-zoo3's layout)."""
    root = Path(log_dir) / algo
    ids = [int(m.group(1)) for p in root.glob(f"{task}_*") if (m := re.fullmatch(rf"{re.escape(task)}_(\d+)", p.name))]
    return root / f"{task}_{max(ids, default=0) + 1}"


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
