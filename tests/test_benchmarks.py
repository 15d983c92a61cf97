"""The prepared GPU reproduction script runs end to end on CPU at tiny sizes (so it cannot rot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def test_gpu_reproduce_dry_run_on_cpu_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "repro"
    argv = [sys.executable, str(BENCHMARKS / "gpu_reproduce.py"), "--device", "cpu", "--fraction", "0.0001",
            "--out", str(out), "--tasks", "cartpole_swingup", "reacher_easy", "--unseen-tasks", "point_mass_easy",
            "--image-size", "24", "--action-repeat", "50", "--batch-size", "8", "--num-protos", "16", "--seeds", "0",
            "1", "--eval-episodes", "1", "--workers", "1", "--render", "fast", "--preset", "quick",
            "--downstream-task", "reacher_easy", "--downstream-action-repeat", "50"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["probe"]) == {"alpha=0.005", "alpha=0", "random init"}
    for encoder in results["probe"].values():
        assert set(encoder["tasks"]) == {"cartpole_swingup", "reacher_easy", "point_mass_easy"}
        assert not encoder["tasks"]["point_mass_easy"]["seen"]
    assert [r["seed"] for r in results["downstream"]["alpha=0.005"]["runs"]] == [0, 1]
    report = (out / "report.md").read_text()
    assert "| point_mass_easy | no |" in report and "seed 0:" in report and "seed 1:" in report
    for png in ("probe_r2.png", "downstream.png", "pretraining_alpha_0.005.png"):
        assert (out / png).stat().st_size > 5000
    # every seed's line is printed
    assert proc.stdout.count("downstream alpha=0.005") == 2

    again = subprocess.run(argv, capture_output=True, text=True, timeout=900)  # resumes: everything cached
    assert again.returncode == 0, again.stderr[-3000:]
    assert (
        "pretrained" not in again.stdout
        and json.loads((out / "results.json").read_text())["downstream"] == (results["downstream"])
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without CUDA")
def test_gpu_reproduce_refuses_without_cuda() -> None:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_reproduce.py"), "--out", "unused"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode != 0 and "no CUDA device" in proc.stderr
