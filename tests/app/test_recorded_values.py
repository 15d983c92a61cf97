"""What a run records (config.yml, command.txt, an artifact's provenance, the hint printed on Ctrl-C) is what it
did and the values it really used, not the option defaults."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml

import sb3_crptpro
from sb3_crptpro.app.cli import main


def test_pretrain_provenance_holds_only_the_sessions_that_trained(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sb3_crptpro.common.artifact import load_artifact

    out = tmp_path / "enc.safetensors"
    base = ["pretrain", "--data", str(tiny_data), "--out", str(out), "--batch-size", "8", "--num-protos", "16",
            "--checkpoint-every", "1", "--no-progress"]  # fmt: skip
    first, last = [*base, "--updates", "2"], [*base, "--updates", "3", "--resume"]
    assert main(first) == 0
    work = tmp_path / "enc_pretrain"
    before = {p: p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()}
    assert b"\r\n" in before[work / "metrics.csv"]  # csv's own line endings
    for refused in ([*base, "--updates", "1", "--resume"], [*base, "--updates", "3", "--lr", "0.5", "--resume"]):
        assert main(refused) == 2  # past the checkpoint; another learning rate than the checkpoint's
    # a refused call changes no byte (the past-the-checkpoint refusal rewrote metrics.csv with other line endings)
    assert {p: p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()} == before
    assert main(last) == 0
    assert main(last) == 0  # nothing left to train: rewrites the artifact, trains nothing, joins no record
    provenance = load_artifact(out).metadata["provenance"]
    sessions = [shlex.join(["sb3-crptpro", *argv]) for argv in (first, last)]
    assert provenance["sessions"] == sessions and provenance["command"] == sessions[-1]
    assert (tmp_path / "enc_pretrain" / "sessions.txt").read_text().splitlines() == sessions
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "session 2 of 2" in shown and "session 3" not in shown and "--lr 0.5" not in shown


def test_config_yml_records_what_the_model_was_built_with(tiny_artifact: Path, tmp_path: Path) -> None:
    """Every recorded field against the run itself: the model's hyperparameters, its policy, its envs, the
    encoder it read, and the command."""
    from stable_baselines3 import SAC

    from sb3_crptpro.common.artifact import load_artifact

    argv = ["train", "--task", "cartpole_swingup", "--encoder", str(tiny_artifact), "--mode", "embedding",
            "--steps", "24", "--checkpoint-every", "12", "--eval-freq", "12", "--eval-episodes", "1",
            "--batch-size", "8", "--buffer-size", "500", "--learning-starts", "6", "--no-critic-layer-norm",
            "--seed", "3", "--action-repeat", "50", "--intrinsic-coef", "0.3", "--log-dir", str(tmp_path),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "sac" / "cartpole_swingup_1"
    saved = yaml.safe_load((run / "config.yml").read_text())
    assert (run / "command.txt").read_text() == shlex.join(["sb3-crptpro", *argv]) + "\n"
    train = saved["train"]
    assert {k: train[k] for k in ("task", "mode", "steps", "seed", "action_repeat", "intrinsic_coef", "preset")} == {
        "task": "cartpole_swingup", "mode": "embedding", "steps": 24, "seed": 3, "action_repeat": 50,
        "intrinsic_coef": 0.3, "preset": "embedding"}  # fmt: skip
    assert train["overrides"] == {"batch_size": 8, "buffer_size": 500, "learning_starts": 6, "critic_layer_norm": False}
    model = SAC.load(run / "cartpole_swingup.zip")
    hyper = saved["hyperparameters"]
    assert model.policy.net_arch == hyper["net_arch"] and not hyper["critic_layer_norm"]
    assert type(model.policy).__name__ == "SACPolicy"  # the plain critic the run recorded
    for key in ("batch_size", "buffer_size", "learning_starts", "learning_rate", "tau", "gamma", "gradient_steps",
                "target_update_interval"):  # fmt: skip
        assert getattr(model, key) == hyper[key], key
    assert model.train_freq.frequency == hyper["train_freq"] and model.seed == 3
    meta = load_artifact(tiny_artifact).metadata
    assert saved["env"] == {"task": "cartpole_swingup", "image_size": 24, "frame_stack": 3, "action_repeat": 50,
                            "render": meta["render"]}  # fmt: skip
    assert saved["encoder"]["path"] == str(Path(tiny_artifact).resolve())
    assert (run / saved["encoder"]["relative_path"]).resolve() == Path(tiny_artifact).resolve()
    assert saved["encoder"]["tensor_sha256"] == meta["tensor_sha256"] and "name" not in saved["encoder"]
    episodes = (run / "0.monitor.csv").read_text().splitlines()[2:]
    assert [row.split(",")[1] for row in episodes] == ["20"]  # action repeat 50: 20 agent steps an episode
    assert train["n_envs"] == 1 and sorted(p.name for p in run.glob("*.monitor.csv")) == ["0.monitor.csv"]
    evaluations = np.load(run / "evaluations.npz")  # every eval_freq agent steps, eval_episodes each
    assert train["eval_freq"] == 12 and list(evaluations["timesteps"]) == [12, 24]
    assert train["eval_episodes"] == 1 and evaluations["results"].shape == (2, 1)
    assert train["checkpoint_every"] == 12 and (run / "checkpoints" / "latest").read_text().strip() == "step_24"
    assert (train["algo"], train["overlap"], train["log_dir"], train["device"]) == ("sac", False, str(tmp_path), "auto")
    assert saved["model"] == "cartpole_swingup.zip" and saved["package_version"] == sb3_crptpro.__version__


def test_ctrl_c_hints_state_the_values_the_command_ran_with(
    run_0_2_0: tuple[Path, Path],
    tmp_path: Path,
    tiny_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sb3_crptpro.app import training
    from sb3_crptpro.pretraining.pretrainer import Pretrainer

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    run = run_0_2_0[0]  # checkpoints every 20 agent steps
    monkeypatch.setattr(training, "resume", interrupted)
    assert main(["train", "--resume", str(run), "--steps", "60"]) == 130
    err = capsys.readouterr().err
    assert f"`sb3-crptpro train --resume {run}`" in err and "written every 20 agent steps" in err  # not 10000

    def interrupted_after_saving(config: object, saved: dict, run_dir: Path, *args: object, **kwargs: object) -> None:
        (run_dir / saved["model"]).write_bytes(b"")  # as the real loop saves the model on its way out
        raise KeyboardInterrupt

    fresh = ["train", "--task", "cartpole_swingup", "--encoder", "dmc-64px", "--mode", "embedding", "--steps", "40",
             "--checkpoint-every", "8", "--log-dir", str(tmp_path / "logs")]  # fmt: skip
    monkeypatch.setattr(training, "_run", interrupted_after_saving)
    assert main(fresh) == 130
    out, err = capsys.readouterr()
    new_run = tmp_path / "logs" / "sac" / "cartpole_swingup_1"
    assert f"training in {new_run}" in out  # named before the first step; the hint gave "<run dir>"
    assert f"`sb3-crptpro train --resume {new_run}`" in err and "written every 8 agent steps" in err
    monkeypatch.setattr(training, "_run", interrupted)
    assert main(fresh) == 130
    assert "stopped before the first step: no run was kept" in capsys.readouterr().err
    assert not (tmp_path / "logs" / "sac" / "cartpole_swingup_2").exists()
    monkeypatch.setattr(Pretrainer, "fit", interrupted)
    base = ["pretrain", "--data", str(tiny_data), "--out", str(tmp_path / "e.safetensors")]
    assert main([*base, "--checkpoint-every", "0"]) == 130
    assert "no checkpoint is written before the end" in capsys.readouterr().err  # not "every 1000 updates"
    assert main([*base, "--checkpoint-every", "7"]) == 130
    assert "written every 7 updates" in capsys.readouterr().err
