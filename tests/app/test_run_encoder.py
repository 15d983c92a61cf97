"""A run finds its encoder after it or its venv moved: a shipped encoder by its name, an artifact moved with the run
by its path relative to the run, any other by ``--encoder`` with the recorded tensor checksum."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sb3_crptpro.app.cli import main
from sb3_crptpro.app.run_encoder import encoder_record, run_encoder_path
from sb3_crptpro.common.artifact import PRETRAINED_DIR, load_artifact


def test_a_shipped_encoder_is_recorded_and_found_by_its_name(tmp_path: Path) -> None:
    shipped = load_artifact("dmc-64px")
    record = encoder_record(shipped, tmp_path, None)
    assert record["name"] == "dmc-64px" and record["tensor_sha256"] == shipped.metadata["tensor_sha256"]
    # the venv moved: the recorded path is gone, the name finds the file of this install
    moved = {**record, "path": "/old/venv/lib/python3.11/site-packages/sb3_crptpro/pretrained/dmc-64px.safetensors"}
    assert run_encoder_path(tmp_path, {"encoder": moved}) == PRETRAINED_DIR / "dmc-64px.safetensors"
    # a run of 0.2.0 records the path only: a path inside another install's pretrained/ folder is the shipped one
    old = {"path": moved["path"], "tensor_sha256": record["tensor_sha256"]}
    assert run_encoder_path(tmp_path, {"encoder": old}) == PRETRAINED_DIR / "dmc-64px.safetensors"
    # another file of that name elsewhere is not a shipped encoder
    other = {"path": str(tmp_path / "elsewhere" / "dmc-64px.safetensors")}
    assert run_encoder_path(tmp_path, {"encoder": other}) == Path(other["path"])


def test_resume_takes_the_runs_encoder_at_a_new_place_and_refuses_another(
    tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sb3_crptpro.pretraining.pretrainer import save_random_init

    encoder = tmp_path / "a" / "encoder.safetensors"
    encoder.parent.mkdir()
    shutil.copyfile(tiny_artifact, encoder)
    argv = ["train", "--task", "cartpole_swingup", "--encoder", str(encoder), "--steps", "20", "--checkpoint-every",
            "10", "--eval-freq", "0", "--batch-size", "8", "--learning-starts", "5", "--action-repeat", "50",
            "--log-dir", str(tmp_path / "logs"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "logs" / "sac" / "cartpole_swingup_1"
    copy = shutil.move(encoder, tmp_path / "b.safetensors")
    other = save_random_init(tiny_artifact, tmp_path / "other.safetensors")  # same shapes, other weights
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "30", "--encoder", str(other)]) == 2
    assert "is not the encoder the run started with" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "30", "--encoder", str(copy), "--no-progress"]) == 0
    assert yaml.safe_load((run / "config.yml").read_text())["encoder"]["path"] == str(Path(copy).resolve())


def test_a_reference_run_moved_with_its_encoder_resumes(tiny_artifact: Path, tmp_path: Path) -> None:
    """A reference-mode run folder copied elsewhere together with its encoder resumes without --encoder (the
    recorded path relative to the run), while the original place is gone."""
    import shutil

    from sb3_crptpro.sb3.sac import AugmentedSAC

    here = tmp_path / "here"
    here.mkdir()
    shutil.copyfile(tiny_artifact, here / "encoder.safetensors")
    argv = ["train", "--task", "cartpole_swingup", "--encoder", str(here / "encoder.safetensors"), "--steps", "20",
            "--checkpoint-every", "10", "--eval-freq", "0", "--batch-size", "8", "--learning-starts", "5",
            "--action-repeat", "50", "--log-dir", str(here), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    shutil.move(here, tmp_path / "there")
    run = tmp_path / "there" / "sac" / "cartpole_swingup_1"
    proc = subprocess.run([sys.executable, "-m", "sb3_crptpro.app.cli", "train", "--resume", str(run), "--steps",
                           "40", "--no-progress"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert AugmentedSAC.load(run / "cartpole_swingup.zip").num_timesteps == 40


def test_a_reference_run_with_the_shipped_encoder_resumes_after_its_venv_moved(tmp_path: Path) -> None:
    """`--encoder dmc-64px` from an install whose path is gone: found by its recorded name, and for a 0.2.0-style
    record (a path only) by the path's place inside a `pretrained/` folder."""
    from sb3_crptpro.sb3.sac import AugmentedSAC

    argv = ["train", "--task", "cartpole_swingup", "--encoder", "dmc-64px", "--steps", "4", "--checkpoint-every", "2",
            "--eval-freq", "0", "--batch-size", "4", "--buffer-size", "100", "--learning-starts", "2",
            "--action-repeat", "250", "--intrinsic-coef", "0", "--log-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "sac" / "cartpole_swingup_1"
    saved = yaml.safe_load((run / "config.yml").read_text())
    assert saved["encoder"]["name"] == "dmc-64px"
    gone = "/venv-that-moved/lib/python3.11/site-packages/sb3_crptpro/pretrained/dmc-64px.safetensors"
    for record in (
        {**saved["encoder"], "path": gone},
        {"path": gone, "tensor_sha256": saved["encoder"]["tensor_sha256"]},
    ):
        (run / "config.yml").write_text(yaml.safe_dump({**saved, "encoder": record}, sort_keys=False))
        steps = AugmentedSAC.load(run / "cartpole_swingup.zip").num_timesteps + 2
        assert main(["train", "--resume", str(run), "--steps", str(steps), "--no-progress"]) == 0
        assert AugmentedSAC.load(run / "cartpole_swingup.zip").num_timesteps == steps
        saved = yaml.safe_load((run / "config.yml").read_text())
