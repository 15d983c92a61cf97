"""Crash-safe `sb3-crptpro train` (issue 14): a real ``kill -9`` of a training subprocess, then ``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sb3_crptpro.app.cli import main

STEPS, EVERY = 400, 100


def _monitor_rows(run: Path) -> list[str]:
    lines = (run / "0.monitor.csv").read_text().splitlines()
    assert lines[0].startswith("#") and lines[1] == "r,l,t"
    assert sum(line.startswith("#") for line in lines) == 1  # one header: the file was appended to, not rewritten
    return lines[2:]


@pytest.mark.parametrize("mode", ["reference", "embedding", "overlap"])
def test_kill_9_then_resume_continues_counters_buffer_and_logs(tiny_artifact: Path, tmp_path: Path, mode: str) -> None:
    logs = tmp_path / "logs"
    overlap = ["--overlap"] if mode == "overlap" else []  # embedding mode, env workers encode (OverlappedSAC)
    mode = "embedding" if overlap else mode
    argv = ["train", "--task", "reacher_easy", "--encoder", str(tiny_artifact), "--mode", mode, *overlap, "--steps",
            str(STEPS), "--checkpoint-every", str(EVERY), "--eval-freq", str(EVERY), "--eval-episodes", "1",
            "--batch-size", "8", "--buffer-size", "1000", "--learning-starts", "20", "--action-repeat", "50",
            "--log-dir", str(logs), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "sb3_crptpro.app.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    run = logs / "sac" / "reacher_easy_1"
    latest = run / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    while not (latest.is_file() and latest.read_text().strip() >= f"step_{2 * EVERY}"):
        assert proc.poll() is None, f"training ended before the kill: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    checkpoint = run / "checkpoints" / latest.read_text().strip()
    saved_step = json.loads((checkpoint / "state.json").read_text())["num_timesteps"]
    assert saved_step % EVERY == 0 and saved_step >= 2 * EVERY
    rows_before = len(_monitor_rows(run))

    assert main(["train", "--resume", str(run), "--no-progress"]) == 0

    from sb3_crptpro.app.training import algo_class

    model = algo_class("sac", mode, overlap=bool(overlap)).load(run / "reacher_easy.zip")
    assert type(model).__name__ == ("OverlappedSAC" if overlap else "AugmentedSAC" if mode == "reference" else "SAC")
    assert model.num_timesteps == STEPS  # counted on from the checkpoint, not restarted
    final = json.loads((run / "checkpoints" / "step_400" / "state.json").read_text())
    assert final == {"num_timesteps": STEPS, "buffer_size": STEPS}  # the buffer kept the pre-crash transitions
    assert [p.name for p in (run / "checkpoints").glob("step_*")] == ["step_400"]
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["timesteps"]) == list(range(EVERY, STEPS + 1, EVERY))  # no gap, no duplicate
    rows = _monitor_rows(run)
    assert len(rows) > rows_before and len(rows) >= STEPS // 20 - 1  # 20-step episodes, logged before and after
    assert [p.name for p in run.glob("tb_*")] == ["tb_1"]  # the TensorBoard run continues
    reward = torch.load(run / "intrinsic_reward.pt", weights_only=True)
    assert reward["steps"] == STEPS  # the intrinsic reward's queue state continued too
    assert "--resume" in (run / "command.txt").read_text().splitlines()[-1]


def test_resume_refuses_without_a_checkpoint(tiny_artifact: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv = ["train", "--task", "reacher_easy", "--encoder", str(tiny_artifact), "--steps", "40", "--checkpoint-every",
            "0", "--eval-freq", "0", "--batch-size", "8", "--learning-starts", "20", "--action-repeat", "50",
            "--log-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert main(["train", "--resume", str(tmp_path / "sac" / "reacher_easy_1"), "--steps", "80"]) == 2
    err = capsys.readouterr().err
    assert "was trained without checkpoints" in err and "Traceback" not in err
    assert main(["train", "--resume", str(tmp_path), "--task", "reacher_easy"]) == 2
    assert "drop --task" in capsys.readouterr().err


def test_resume_honours_a_longer_steps_and_refuses_other_flags(tiny_artifact: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv = ["train", "--task", "reacher_easy", "--encoder", str(tiny_artifact), "--mode", "embedding", "--steps", "60",
            "--checkpoint-every", "30", "--eval-freq", "0", "--batch-size", "8", "--learning-starts", "20",
            "--action-repeat", "50", "--log-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "sac" / "reacher_easy_1"
    for flags in (["--n-envs", "2"], ["--mode", "reference"], ["--seed", "3"], ["--intrinsic-coef", "0"],
                  ["--steps", "90", "--seed=3"]):  # fmt: skip
        capsys.readouterr()
        assert main(["train", "--resume", str(run), *flags]) == 2
        err = capsys.readouterr().err
        assert f"drop {flags[-1].split('=')[0] if '=' in flags[-1] else flags[0]}" in err and "Traceback" not in err
    assert main(["train", "--resume", str(run), "--steps", "30"]) == 2  # not beyond the checkpoint at 60
    assert "is not beyond the latest checkpoint (agent step 60)" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "120", "--no-progress"]) == 0
    from stable_baselines3 import SAC

    assert SAC.load(run / "reacher_easy.zip").num_timesteps == 120  # the longer run was honoured
    assert "steps: 120" in (run / "config.yml").read_text()  # and recorded for the next resume
    capsys.readouterr()
    before = (run / "reacher_easy.zip").stat().st_mtime_ns
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # finished: nothing left to do
    assert "is complete: nothing to resume" in capsys.readouterr().out
    assert (run / "reacher_easy.zip").stat().st_mtime_ns == before  # not rewritten
    import shutil

    shutil.rmtree(run / "checkpoints" / "step_120")  # `latest` now names a folder that is gone
    assert main(["train", "--resume", str(run), "--steps", "150", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "latest names" in err and "step_120, which is missing or incomplete" in err and "Traceback" not in err
    (run / "config.yml").write_text("train: [unclosed")
    assert main(["evaluate", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert "config.yml is not readable YAML" in err and "Traceback" not in err


def test_resume_refuses_an_encoder_that_changed(tiny_artifact: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import shutil

    from sb3_crptpro.pretraining.pretrainer import save_random_init

    encoder = tmp_path / "encoder.safetensors"
    shutil.copyfile(tiny_artifact, encoder)
    argv = ["train", "--task", "reacher_easy", "--encoder", str(encoder), "--steps", "40", "--checkpoint-every", "20",
            "--eval-freq", "0", "--batch-size", "8", "--learning-starts", "10", "--action-repeat", "50", "--log-dir",
            str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0  # reference mode: the run reads the encoder from its original path
    save_random_init(tiny_artifact, encoder)  # the file is overwritten by another encoder of the same shape
    run = tmp_path / "sac" / "reacher_easy_1"
    config_before = (run / "config.yml").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "80"]) == 2
    err = capsys.readouterr().err
    assert "is not the encoder the run started with" in err and "Traceback" not in err
    assert (run / "config.yml").read_text() == config_before  # nothing written on a refusal
