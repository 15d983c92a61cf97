"""A training run written by sb3-crptpro 0.2.0 (``fixtures/run_0.2.0_reference.tar.xz``, see fixtures/README.md)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
import yaml

FIXTURE = Path(__file__).parent / "fixtures" / "run_0.2.0_reference.tar.xz"


@pytest.fixture
def run_0_2_0(tmp_path: Path) -> tuple[Path, Path]:
    """The 0.2.0 reference-mode run (stopped at its checkpoint of agent step 40, checkpoints every 20) unpacked in
    ``tmp_path``, and its encoder beside it, which moved: the run records it at a path of the machine that made the
    fixture."""
    with tarfile.open(FIXTURE) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python < 3.10.12 has no filters
        archive.extractall(tmp_path, **safe)
    run = tmp_path / "sac" / "cartpole_swingup_1"
    saved = yaml.safe_load((run / "config.yml").read_text())
    assert saved["package_version"] == "0.2.0" and saved["train"]["mode"] == "reference"
    assert not Path(saved["encoder"]["path"]).exists()
    return run, tmp_path / "encoder.safetensors"
