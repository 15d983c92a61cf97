"""The whole pipeline through the CLI at tiny sizes (collect -> pretrain -> train -> evaluate -> inspect), the demo
report, the rl-zoo3 hyperparameter file and the plotting/diagnostics helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sb3_crptpro.cli import main

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
    assert "reacher_easy (seen in pretraining; trained on reacher_easy)" in out and "over 2 episodes" in out
    video = run / "reacher_easy.mp4"  # as `evaluate --help` says: <run>/<task>.mp4
    assert video.is_file() and video.stat().st_size > 1000 and not (run / "video.mp4").exists()
    assert main(["evaluate", "--run", str(run), "--task", "point_mass_easy", "--episodes", "1"]) == 0
    assert "point_mass_easy (not seen in pretraining" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run), "--task", "cheetah_run", "--episodes", "1"]) == 2
    assert "same action size" in capsys.readouterr().err

    assert main(["inspect", str(encoder)]) == 0
    out = capsys.readouterr().out
    assert "[9, 24, 24]" in out and "cartpole_swingup, reacher_easy" in out and "16 x 128" in out
    assert main(["inspect", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.count("dataset (sb3-crptpro-dataset v1)") == 2 and "60 (3 episodes" in out


def test_demo_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--tasks", "cartpole_swingup", "walker_run", "--transitions", "60",
            "--unseen-transitions", "40", "--image-size", "24", "--action-repeat", "50", "--pretrain-updates", "3",
            "--pretrain-batch-size", "8", "--train-task", "walker_run", "--unseen-task", "cheetah_run",
            "--train-steps", "50", "--eval-episodes", "1", "--workers", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    report = out / "report"
    for name in ("frames", "learning_curve", "pretraining", "coverage", "prototype_gallery"):
        width, height = _valid_png(report / f"{name}.png")
        assert width > 300 and height > 150, name
    summary = (report / "summary.md").read_text()
    assert "| cheetah_run | no | no (zero-shot) |" in summary and "| walker_run | yes | yes |" in summary
    assert "3 updates at batch 8" in summary
    results = json.loads((report / "summary.json").read_text())
    assert [r["task"] for r in results["evaluation"]] == ["walker_run", "cheetah_run"]
    assert set(results["coverage"]) == {"cartpole_swingup", "walker_run", "cheetah_run"}
    assert set(results["seconds"]) >= {"collect", "pretrain", "train", "evaluate", "report"}


def test_rl_zoo_hyperparameters_build_a_working_sac(tiny_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gymnasium as gym
    from stable_baselines3 import SAC

    from sb3_crptpro.sac import AugmentedFrameStackReplayBuffer
    from sb3_crptpro.zoo import ENCODER_ENV_VAR, env_id

    hyperparams = yaml.safe_load((Path(__file__).parents[1] / "hyperparams" / "sac.yml").read_text())
    entry = dict(hyperparams[env_id("cheetah_run")])
    for key in ("policy_kwargs", "replay_buffer_class", "replay_buffer_kwargs"):  # what rl-zoo3 does with strings
        with pytest.raises(ValueError, match=ENCODER_ENV_VAR) if key == "policy_kwargs" else _no_error():
            eval(entry[key])
    monkeypatch.setenv(ENCODER_ENV_VAR, str(tiny_artifact))
    for key in ("policy_kwargs", "replay_buffer_class", "replay_buffer_kwargs"):
        entry[key] = eval(entry[key])
    assert entry["replay_buffer_class"] is AugmentedFrameStackReplayBuffer
    env = gym.make(env_id("cartpole_swingup"), image_size=24, action_repeat=50)
    assert env.observation_space.shape == (9, 24, 24)
    entry.update(batch_size=8, learning_starts=20, buffer_size=200)
    policy = entry.pop("policy")
    entry.pop("n_timesteps")
    model = SAC(policy, env, seed=0, **entry)
    model.learn(40)
    extractor = model.actor.features_extractor
    assert extractor.pretrained_metadata["tasks"] == ["cartpole_swingup", "reacher_easy"]


class _no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_coverage_diagnostics() -> None:
    from sb3_crptpro.diagnostics import pairwise_cosines, per_domain_assignment, usage_histogram

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
