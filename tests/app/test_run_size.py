"""A small `train` run stays small on disk: the replay buffer saved at the size it fills, a shipped encoder named
(with its tensor checksum) instead of copied."""

from pathlib import Path

import pytest
import yaml

from sb3_crptpro.app.evaluation import evaluate_run
from sb3_crptpro.app.training import TrainConfig, resume, train
from sb3_crptpro.envs.tasks import seen_in_pretraining


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_500_step_run_of_the_shipped_encoder_is_under_20_mb(tmp_path: Path) -> None:
    config = TrainConfig(task="walker_walk", encoder="dmc-64px", mode="embedding", steps=500, eval_freq=0,
                         progress=False, log_dir=str(tmp_path))  # fmt: skip
    with pytest.warns(UserWarning, match=r"500 agent steps do not pass learning_starts \(1000\)"):
        run = train(config)
    assert _size(run) < 20 * 2**20, sorted((p.stat().st_size, str(p)) for p in run.rglob("*") if p.is_file())[-3:]
    assert not (run / "encoder.safetensors").exists()
    saved = yaml.safe_load((run / "config.yml").read_text())
    assert saved["encoder"]["name"] == "dmc-64px" and "copy" not in saved["encoder"]
    assert len(saved["encoder"]["tensor_sha256"]) == 64
    assert (run / "checkpoints" / "step_500" / "replay_buffer.pkl").stat().st_size < 2 * 2**20

    result = evaluate_run(run, episodes=1)  # finds the shipped encoder by name
    assert result["seen_in_pretraining"]  # walker: a domain of dmc-64px (walker_run)
    assert not seen_in_pretraining("cartpole_swingup", saved["encoder"]["tasks"])  # one meaning: the domain

    resume(run, steps=600)  # from the cut buffer, padded back to its capacity
    state = yaml.safe_load((run / "checkpoints" / "step_600" / "state.json").read_text())
    assert state["buffer_size"] == 600


def test_a_run_that_names_a_changed_shipped_encoder_refuses_it(tmp_path: Path) -> None:
    config = TrainConfig(task="walker_walk", encoder="dmc-64px", mode="embedding", steps=20, eval_freq=0,
                         progress=False, log_dir=str(tmp_path))  # fmt: skip
    with pytest.warns(UserWarning, match="no gradient update"):
        run = train(config)
    saved = yaml.safe_load((run / "config.yml").read_text())
    saved["encoder"]["tensor_sha256"] = "0" * 64  # as if a later package version shipped other weights
    (run / "config.yml").write_text(yaml.safe_dump(saved))
    with pytest.raises(ValueError, match="is not the encoder the run started with"):
        evaluate_run(run, episodes=1)


def test_cli_warns_in_one_line_when_a_run_cannot_learn(tmp_path: Path) -> None:
    import subprocess
    import sys

    argv = [sys.executable, "-m", "sb3_crptpro", "train", "--task", "walker_walk", "--encoder", "dmc-64px", "--mode",
            "embedding", "--steps", "20", "--eval-freq", "0", "--log-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warned = [line for line in proc.stderr.splitlines() if "learning_starts" in line]
    assert warned == [
        "warning (UserWarning): 20 agent steps do not pass learning_starts (1000): the run makes no gradient update "
        "and its policy stays untrained; give more steps (--steps) or a smaller --learning-starts"
    ]
    assert "warnings.warn" not in proc.stderr and "settotalmass" not in proc.stderr
