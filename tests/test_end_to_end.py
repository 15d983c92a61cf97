"""The whole pipeline through the CLI at tiny sizes (collect -> pretrain -> train -> evaluate -> inspect), the demo
report and the plotting/diagnostics helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sb3_crptpro import load_artifact
from sb3_crptpro.app.cli import main

TINY_ENV = ["--action-repeat", "50"]  # 20-step episodes


def _valid_png(path: Path, min_bytes: int = 5_000) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > min_bytes, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, encoder, logs = tmp_path / "data", tmp_path / "encoder.safetensors", tmp_path / "logs"
    collect = ["collect", "--tasks", "cartpole_swingup", "reacher_easy", "--transitions", "60", "--out", str(data),
               "--workers", "1", "--image-size", "24", "--render", "fast", *TINY_ENV, "--no-progress"]  # fmt: skip
    assert main(collect) == 0
    assert main(["pretrain", "--data", str(data), "--out", str(encoder), "--updates", "3", "--batch-size", "8",
                 "--num-protos", "16", "--no-progress"]) == 0  # fmt: skip
    argv = ["train", "--task", "reacher_easy", "--encoder", str(encoder), "--steps", "60", "--batch-size", "8",
            "--learning-starts", "20",
            "--eval-freq", "30", "--eval-episodes", "1", "--log-dir", str(logs), "--no-progress",
            *TINY_ENV]  # fmt: skip
    assert main(argv) == 0
    run = logs / "sac" / "reacher_easy_1"
    config = yaml.safe_load((run / "config.yml").read_text())
    assert config["env"] == {"task": "reacher_easy", "image_size": 24, "frame_stack": 3, "action_repeat": 50,
                             "render": "fast"}  # fmt: skip
    assert config["hyperparameters"]["batch_size"] == 8 and config["train"]["intrinsic_coef"] == 0.2
    assert "train --task reacher_easy" in (run / "command.txt").read_text()
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [30, 60] and evaluations["results"].shape == (2, 1)
    assert (run / "reacher_easy.zip").is_file() and (run / "intrinsic_reward.pt").is_file()
    assert list(run.glob("tb_*/events.out.tfevents.*")) and list(run.glob("*monitor.csv"))
    assert main(argv) == 0  # a second run gets the next id
    assert (logs / "sac" / "reacher_easy_2" / "config.yml").is_file()

    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--episodes", "2", "--video"]) == 0
    out = capsys.readouterr().out
    assert "reacher_easy (domain seen in pretraining; trained on reacher_easy)" in out and "over 2 episodes" in out
    video = run / "reacher_easy.mp4"  # as `evaluate --help` says: <run>/<task>.mp4
    assert video.is_file() and video.stat().st_size > 1000 and not (run / "video.mp4").exists()
    assert main(["evaluate", "--run", str(run), "--task", "point_mass_easy", "--episodes", "1"]) == 0
    assert "point_mass_easy (domain not seen in pretraining" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run), "--task", "cheetah_run", "--episodes", "1"]) == 2
    assert "same action size" in capsys.readouterr().err

    assert main(["inspect", str(encoder)]) == 0
    out = capsys.readouterr().out
    assert "[9, 24, 24]" in out and "cartpole_swingup, reacher_easy" in out and "16 x 128" in out
    assert main(["inspect", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.count("dataset (sb3-crptpro-dataset v1)") == 2 and "60 (3 episodes" in out


def test_embedding_mode_run_evaluates_on_pixels_after_the_artifact_moves(
    tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encoder, logs = tmp_path / "moving.safetensors", tmp_path / "logs"
    encoder.write_bytes(tiny_artifact.read_bytes())
    argv = ["train", "--task", "reacher_easy", "--encoder", str(encoder), "--mode", "embedding", "--algo", "tqc",
            "--steps", "60", "--batch-size", "8", "--learning-starts", "20", "--eval-freq", "30", "--eval-episodes",
            "1", "--log-dir", str(logs), "--no-progress", *TINY_ENV]  # fmt: skip
    assert main(argv) == 0
    run = logs / "tqc" / "reacher_easy_1"
    config = yaml.safe_load((run / "config.yml").read_text())
    assert config["train"]["mode"] == "embedding" and config["encoder"]["copy"] == "encoder.safetensors"
    assert (run / "encoder.safetensors").read_bytes() == tiny_artifact.read_bytes()
    from sb3_contrib import TQC

    model = TQC.load(run / "reacher_easy.zip")
    assert model.observation_space.shape == (128,)  # an MLP policy on the projections
    assert type(model.policy).__name__ == "LayerNormCriticTQCPolicy"  # the embedding preset's learner
    encoder.rename(tmp_path / "elsewhere.safetensors")
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--episodes", "2", "--video", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "reacher_easy (domain seen in pretraining; trained on reacher_easy)" in out and "over 2 episodes" in out
    assert (run / "reacher_easy.mp4").stat().st_size > 1000


def test_demo_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--tasks", "cheetah_run", "walker_run", "--transitions", "60",
            "--unseen-transitions", "40", "--image-size", "24", "--action-repeat", "50", "--pretrain-updates", "3",
            "--pretrain-batch-size", "8", "--seen-task", "walker_walk", "--unseen-task", "finger_spin",
            "--train-steps", "1000", "--eval-episodes", "1", "--workers", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    report = out / "report"
    for name in ("frames", "learning_curves", "pretraining", "coverage", "prototype_gallery"):
        width, height = _valid_png(report / f"{name}.png")
        assert width > 300 and height > 150, name
    summary = (report / "summary.md").read_text()
    assert "| walker_walk | yes |" in summary and "| finger_spin | no |" in summary
    assert "3 updates at batch 8" in summary and "encoder: `dmc-64px-invdyn` (6000 updates" in summary
    assert "64 px, CRPTpro + inverse dynamics (weight 1)), against the same networks" in summary
    assert "seeds 0, 1: 8 runs" in summary
    assert "| pretrained encoder | random-init encoder | random policy |" in summary
    assert "- **walker_walk:** " in summary and "- **finger_spin:** " in summary  # the computed verdicts
    results = json.loads((report / "summary.json").read_text())
    from sb3_crptpro.pretraining.diagnostics import collapse_verdict

    # one verdict and one sign convention in the summary, the pretraining figure's title and inspect
    verdict = collapse_verdict(results["pretrain"]["diagnostics"], results["pretrain"]["num_protos"])
    assert f"{verdict[0].upper()}{verdict[1:]}. On the probe frames (64 per domain" in summary
    assert "nats below log M" in summary and "from log M" not in summary
    inspection = (report / "inspect.txt").read_text()
    assert "effective rank" in inspection and verdict in inspection
    assert [r["task"] for r in results["evaluation"]] == ["walker_walk", "finger_spin"]
    assert set(results["coverage"]) == {"cheetah_run", "walker_run", "finger_spin"}
    assert set(results["seconds"]) >= {"collect", "pretrain", "inspect", "train", "evaluate", "report"}
    runs = {(t, label, seed): yaml.safe_load((Path(d) / "config.yml").read_text())
            for t, by_label in results["run_dirs"].items() for label, dirs in by_label.items()
            for seed, d in zip((0, 1), dirs, strict=True)}  # fmt: skip
    assert len(runs) == 8 and all(r["train"]["mode"] == "embedding" for r in runs.values())
    assert {r["train"]["seed"] for r in runs.values()} == {0, 1}
    assert all(r["train"]["steps"] == 1000 // 50 for r in runs.values())  # env steps -> agent steps
    shas = {label: {r["encoder"]["tensor_sha256"] for (_, lab, _), r in runs.items() if lab == label}
            for label in ("pretrained", "random init")}  # fmt: skip
    assert shas["pretrained"] == {load_artifact("dmc-64px-invdyn").metadata["tensor_sha256"]}  # the default encoder
    assert len(shas["random init"]) == 1 and shas["random init"] != shas["pretrained"]


def test_coverage_diagnostics() -> None:
    from sb3_crptpro.pretraining.diagnostics import pairwise_cosines, per_domain_assignment, usage_histogram

    scores = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.3, 0.1], [0.0, 0.2, 0.7]])
    assert usage_histogram(scores).tolist() == [2, 0, 1]
    shares = per_domain_assignment({"a": scores[:2], "b": scores[2:]}, 3)
    assert shares["a"].tolist() == [1.0, 0.0, 0.0] and shares["b"].tolist() == [0.0, 0.0, 1.0]
    protos = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    cos = sorted(pairwise_cosines(protos).tolist())
    assert len(cos) == 6
    np.testing.assert_allclose(cos, [0.0, 0.0, 2**-0.5, 2**-0.5, 2**-0.5, 2**-0.5], atol=1e-12)


def test_lazy_exports_are_functions_even_after_submodule_import() -> None:
    import sb3_crptpro
    import sb3_crptpro.data.collection
    from sb3_crptpro.data import collect

    assert callable(collect) and callable(sb3_crptpro.collect) and callable(sb3_crptpro.train)
