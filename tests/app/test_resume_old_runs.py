"""Resuming a run that sb3-crptpro 0.2.0 wrote (a real one: ``fixtures/run_0.2.0_reference.tar.xz``), and a resume
that cannot continue leaving the run as it found it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import folder_bytes

from sb3_crptpro.app.cli import main
from sb3_crptpro.sb3.buffers import FrameStackReplayBuffer


def test_a_run_of_0_2_0_resumes_to_the_new_steps(
    run_0_2_0: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from sb3_crptpro.sb3.sac import AugmentedSAC

    run, encoder = run_0_2_0
    before = folder_bytes(run)
    # its encoder moved: one line says to pass it, and nothing is written
    assert main(["train", "--resume", str(run), "--steps", "60", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is not there any more" in err and "pass its file with --encoder" in err and len(err.splitlines()) == 1
    assert folder_bytes(run) == before
    # with the encoder named, the 0.2.0 checkpoint (buffer pickled without n_steps) trains on to agent step 60
    assert main(["train", "--resume", str(run), "--steps", "60", "--encoder", str(encoder), "--no-progress"]) == 0
    model = AugmentedSAC.load(run / "cartpole_swingup.zip")
    assert model.num_timesteps == 60 and model._n_updates > 0
    model.load_replay_buffer(run / "checkpoints" / "step_60" / "replay_buffer.pkl")
    assert model.replay_buffer.size() == 60 and model.replay_buffer.n_steps == 1
    saved = yaml.safe_load((run / "config.yml").read_text())
    assert saved["train"]["steps"] == 60 and saved["encoder"]["path"] == str(encoder.resolve())
    assert saved["encoder"]["relative_path"] == "../../encoder.safetensors"
    # the next resume finds the encoder where the last one was told it is
    assert main(["train", "--resume", str(run), "--steps", "80", "--no-progress"]) == 0
    assert AugmentedSAC.load(run / "cartpole_swingup.zip").num_timesteps == 80


def test_a_0_2_0_buffer_gets_the_defaults_of_newer_attributes(run_0_2_0: tuple[Path, Path]) -> None:
    import pickle

    run, _ = run_0_2_0
    raw = (run / "checkpoints" / "step_40" / "replay_buffer.pkl").read_bytes()
    buffer = pickle.loads(raw)
    assert isinstance(buffer, FrameStackReplayBuffer) and (buffer.n_steps, buffer.gamma) == (1, 0.99)
    samples = buffer.sample(8)  # the call that failed at the first gradient step
    assert samples.observations.shape == (8, 9, 24, 24) and samples.rewards.shape == (8, 1)


def test_a_resume_that_cannot_continue_leaves_every_file_as_it_was(
    run_0_2_0: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, encoder = run_0_2_0
    before = folder_bytes(run)
    tensorboard = sorted(run.glob("tb_*/*"))

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the first gradient step failed")

    monkeypatch.setattr(FrameStackReplayBuffer, "sample", fail)
    with pytest.raises(RuntimeError, match="the first gradient step failed"):
        main(["train", "--resume", str(run), "--steps", "60", "--encoder", str(encoder), "--no-progress"])
    # model, config.yml (steps, encoder), command.txt, monitor.csv, reward queue, evaluations: all as they were
    assert folder_bytes(run) == before and sorted(run.glob("tb_*/*")) == tensorboard
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--steps", "60", "--encoder", str(encoder), "--no-progress"]) == 0
