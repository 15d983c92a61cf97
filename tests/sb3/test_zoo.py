"""rl-zoo3 2.9.2 run for real (issue 15): train, enjoy and record_video with our hyperparameter files and env ids."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("rl_zoo3")

HYPERPARAMS = Path(__file__).parents[2] / "hyperparams"
ENV = "CRPTpro/reacher_easy-v0"
ENV_KWARGS = ["--env-kwargs", "image_size:24", "action_repeat:50"]  # the tiny artifact's frames; 20-step episodes
TINY = ["-n", "100", "--hyperparams", "buffer_size:500", "batch_size:8", "learning_starts:50", "--eval-freq", "-1"]


def _run(module: str, args: list[str], cwd: Path, artifact: Path) -> str:
    env = {**os.environ, "CRPTPRO_ENCODER": str(artifact)}
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout + proc.stderr


def test_train_enjoy_record_video_with_intrinsic_reward(tiny_artifact: Path, tmp_path: Path) -> None:
    _run("rl_zoo3.train", ["--algo", "sac", "--env", ENV, "--gym-packages", "sb3_crptpro.zoo", "--conf-file",
                           str(HYPERPARAMS / "sac.yml"), *ENV_KWARGS, *TINY, "-f", "logs"],
         tmp_path, tiny_artifact)  # fmt: skip
    run = tmp_path / "logs" / "sac" / "CRPTpro-reacher_easy-v0_1"
    saved = dict(yaml.unsafe_load((run / "CRPTpro-reacher_easy-v0" / "config.yml").read_text()))  # rl-zoo3's file
    # the intrinsic reward is a callback (training env only), not a wrapper that enjoy would re-apply
    assert saved["callback"] == [{"sb3_crptpro.zoo.IntrinsicRewardCallback": {"coef": 0.2}}]
    assert "vec_env_wrapper" not in saved
    from stable_baselines3 import SAC

    model = SAC.load(run / "CRPTpro-reacher_easy-v0.zip")
    assert model.num_timesteps == 100 and model.observation_space.shape == (9, 24, 24)
    extractor = model.actor.features_extractor
    assert extractor.pretrained_metadata["tasks"] == ["cartpole_swingup", "reacher_easy"]
    out = _run("rl_zoo3.enjoy", ["--algo", "sac", "--env", ENV, "--gym-packages", "sb3_crptpro.zoo", "-f", "logs",
                                 "-n", "40", "--no-render", "--reward-log", "enjoy", *ENV_KWARGS], tmp_path,
               tiny_artifact)  # fmt: skip
    assert "Mean reward" in out and "2 Episodes" in out
    _assert_task_returns(out, tmp_path / "enjoy")
    _run("sb3_crptpro.zoo", ["record_video", "--algo", "sac", "--env", ENV, "-f", "logs", "-n", "40", *ENV_KWARGS,
                             "-o", "videos"], tmp_path, tiny_artifact)  # fmt: skip
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def _assert_task_returns(enjoy_output: str, reward_log: Path) -> None:
    """enjoy's printed episode rewards are the Monitor's (extrinsic) returns, not task + intrinsic reward."""
    printed = [float(x) for x in re.findall(r"Episode Reward: (-?[0-9.]+)", enjoy_output)]
    with open(next(reward_log.glob("*monitor.csv")), newline="") as fh:
        fh.readline()  # Monitor's JSON header line
        monitor = [float(row["r"]) for row in csv.DictReader(fh)]
    assert len(printed) == 2 and printed == pytest.approx(monitor, abs=0.006)  # enjoy prints 2 decimals


def test_tqc_in_embedding_mode(tiny_artifact: Path, tmp_path: Path) -> None:
    _run("rl_zoo3.train", ["--algo", "tqc", "--env", ENV, "--gym-packages", "sb3_crptpro.zoo", "--conf-file",
                           str(HYPERPARAMS / "tqc_embedding.yml"), *ENV_KWARGS, *TINY, "-f", "logs"], tmp_path,
         tiny_artifact)  # fmt: skip
    from sb3_contrib import TQC

    from sb3_crptpro.sb3.policies import LayerNormCriticTQCPolicy

    model = TQC.load(tmp_path / "logs" / "tqc" / "CRPTpro-reacher_easy-v0_1" / "CRPTpro-reacher_easy-v0.zip")
    assert model.observation_space.shape == (128,) and model.num_timesteps == 100
    assert isinstance(model.policy, LayerNormCriticTQCPolicy)  # the dotted policy path of the file
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.critic.q_networks[0])
    out = _run("rl_zoo3.enjoy", ["--algo", "tqc", "--env", ENV, "--gym-packages", "sb3_crptpro.zoo", "-f", "logs",
                                 "-n", "40", "--no-render", "--reward-log", "enjoy", *ENV_KWARGS], tmp_path,
               tiny_artifact)  # fmt: skip
    assert "Mean reward" in out
    _assert_task_returns(out, tmp_path / "enjoy")


def test_wrappers_need_the_encoder_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from sb3_crptpro.zoo import ENCODER_ENV_VAR, EncodeObservation, policy_kwargs

    monkeypatch.delenv(ENCODER_ENV_VAR, raising=False)
    for call in (policy_kwargs, lambda: EncodeObservation(None)):
        with pytest.raises(ValueError, match=ENCODER_ENV_VAR):
            call()


def test_runner_refuses_a_missing_or_unknown_script(capsys: pytest.CaptureFixture[str]) -> None:
    from sb3_crptpro.zoo import main

    for argv, problem in (([], "no SCRIPT given"), (["nosuchscript"], "rl_zoo3 has no module 'nosuchscript'")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: python -m sb3_crptpro.zoo SCRIPT") and f"error: {problem}" in err
    main(["--help"])
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_embedding_hyperparams_are_the_embedding_train_preset(algo: str) -> None:
    from rl_zoo3.utils import get_class_by_name

    from sb3_crptpro.app.training import policy_class
    from sb3_crptpro.sb3.presets import TRAIN_PRESETS

    zoo = yaml.safe_load((HYPERPARAMS / f"{algo}_embedding.yml").read_text())["default"]
    preset = TRAIN_PRESETS["embedding"]
    shared = {k: v for k, v in zoo.items() if k in preset}
    assert shared == {k: preset[k] for k in shared}
    # net_arch sits in policy_kwargs, critic_layer_norm is the policy; n_steps 1 = SB3's
    assert set(preset) - set(zoo) <= {"net_arch", "critic_layer_norm", "n_steps"}
    assert zoo["policy_kwargs"] == f"dict(net_arch={preset['net_arch']})"
    assert get_class_by_name(zoo["policy"]) is policy_class(algo, "embedding", preset["critic_layer_norm"])
    other = yaml.safe_load((HYPERPARAMS / f"{'tqc' if algo == 'sac' else 'sac'}_embedding.yml").read_text())
    assert {**other["default"], "policy": None} == {**zoo, "policy": None}  # the two files differ in the policy only


def test_normalize_true_with_the_intrinsic_reward_and_evaluations(tiny_artifact: Path, tmp_path: Path) -> None:
    """rl-zoo3's `-params normalize:True` on the shipped embedding file, evaluating during training: the reward goes
    below VecNormalize (IntrinsicRewardSlot), SAC stores it with its intrinsic part, and the evaluations run."""
    import pickle

    params = [*TINY[:-2], "normalize:True", "--eval-freq", "40", "--eval-episodes", "1", "--save-replay-buffer"]
    _run("rl_zoo3.train", ["--algo", "sac", "--env", ENV, "--gym-packages", "sb3_crptpro.zoo", "--conf-file",
                           str(HYPERPARAMS / "sac_embedding.yml"), *ENV_KWARGS, *params, "-f", "logs"], tmp_path,
         tiny_artifact)  # fmt: skip
    run = tmp_path / "logs" / "sac" / "CRPTpro-reacher_easy-v0_1"
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [40, 80]
    with open(run / "CRPTpro-reacher_easy-v0" / "vecnormalize.pkl", "rb") as fh:
        assert pickle.load(fh).ret_rms.count > 1  # the training env normalised its rewards
    buffer = pickle.loads((run / "replay_buffer.pkl").read_bytes())
    stored = float(buffer.rewards[:100, 0].sum())  # VecNormalize's original reward: task + 0.2 x intrinsic
    with open(run / "0.monitor.csv", newline="") as fh:
        fh.readline()
        task = sum(float(row["r"]) for row in csv.DictReader(fh))  # five 20-step episodes of task reward
    assert stored > task


def test_the_default_shipped_encoder_by_name(tmp_path: Path) -> None:
    """``CRPTPRO_ENCODER`` may name a shipped encoder (the default, at its 64 px frames) instead of a file."""
    from stable_baselines3 import SAC

    kwargs = ["--env-kwargs", "image_size:64", "action_repeat:50"]
    _run("rl_zoo3.train", ["--algo", "sac", "--env", ENV, "--gym-packages", "sb3_crptpro.zoo", "--conf-file",
                           str(HYPERPARAMS / "sac_embedding.yml"), *kwargs, *TINY, "-f", "logs"], tmp_path,
         Path("dmc-64px-invdyn"))  # fmt: skip
    model = SAC.load(tmp_path / "logs" / "sac" / "CRPTpro-reacher_easy-v0_1" / "CRPTpro-reacher_easy-v0.zip")
    assert model.observation_space.shape == (128,) and model.num_timesteps == 100
