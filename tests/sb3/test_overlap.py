"""Overlapped updates (issue 13): OverlappedSAC/TQC run each round of updates right after the next step_async,
the same number of them as SB3; make_encoded_vec_env encodes inside SubprocVecEnv workers with the same vectors
as VecEncodeObservation. Real DMC envs and a real pretrained artifact."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import VecEnvWrapper

from sb3_crptpro import (
    EncodeObservation,
    OverlappedSAC,
    OverlappedTQC,
    PixelSpaceError,
    PrototypeIntrinsicReward,
    VecEncodeObservation,
    make_dmc_env,
    make_dmc_vec_env,
    make_encoded_vec_env,
    with_fused_adam,
)

ENV = {"image_size": 24, "render": "fast", "action_repeat": 50}  # 20-step episodes


class _CallLog(VecEnvWrapper):
    """Records step_async / step_wait calls and the model's update count at each."""

    def __init__(self, venv, log: list) -> None:
        super().__init__(venv)
        self.log = log
        self.model = None

    def reset(self):
        return self.venv.reset()

    def step_async(self, actions) -> None:
        self.log.append(("step_async", self.model._n_updates))
        self.venv.step_async(actions)

    def step_wait(self):
        self.log.append(("step_wait", self.model._n_updates))
        return self.venv.step_wait()


def _state_env(log: list) -> _CallLog:
    return _CallLog(make_dmc_vec_env("cartpole_swingup", 1, seed=0, observation="state", action_repeat=8), log)


def test_updates_run_between_step_async_and_step_wait_and_match_sb3_count() -> None:
    kwargs = {"learning_starts": 5, "batch_size": 8, "gradient_steps": 2, "seed": 0, "device": "cpu",
              "policy_kwargs": {"net_arch": [16]}}  # fmt: skip
    counts = {}
    for algo in (SAC, OverlappedSAC):
        log: list = []
        venv = _state_env(log)
        model = algo("MlpPolicy", venv, **kwargs)
        venv.model = model
        model.learn(20)
        counts[algo] = model._n_updates
        if algo is OverlappedSAC:
            # the round owed after step t runs inside step t + 1: n_updates grows between step_async and step_wait
            grew = [i for i in range(0, len(log), 2) if log[i + 1][1] > log[i][1]]
            assert len(grew) == 20 - 5 - 1 and all(log[i + 1][1] - log[i][1] == 2 for i in grew)
        else:
            assert all(log[i + 1][1] == log[i][1] for i in range(0, len(log), 2))
        venv.close()
    assert counts[SAC] == counts[OverlappedSAC] == 2 * (20 - 5)  # the last round runs before learn returns


def test_overlapped_is_deterministic_and_reloads_as_sac(tmp_path: Path) -> None:
    params = []
    for _ in range(2):
        model = OverlappedSAC("MlpPolicy", _state_env([]), learning_starts=5, batch_size=8, seed=3, device="cpu",
                              policy_kwargs={"net_arch": [16]})  # fmt: skip
        model.env.model = model
        model.learn(15)
        params.append(np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()]))
    np.testing.assert_array_equal(params[0], params[1])
    model.save(tmp_path / "m.zip")
    loaded = SAC.load(tmp_path / "m.zip", device="cpu")
    assert not hasattr(loaded, "_overlap_env") or loaded._overlap_env is None
    np.testing.assert_array_equal(
        np.concatenate([p.detach().numpy().ravel() for p in loaded.policy.parameters()]), params[1]
    )


def _fused(model) -> list:
    return [model.actor.optimizer.defaults["fused"], model.critic.optimizer.defaults["fused"]]


def test_overlapped_adam_is_fused_unless_told_and_stays_so_after_reload(tmp_path: Path) -> None:
    kwargs = {"learning_starts": 5, "batch_size": 8, "seed": 0, "device": "cpu"}
    model = OverlappedSAC("MlpPolicy", _state_env([]), policy_kwargs={"net_arch": [16]}, **kwargs)
    model.env.model = model
    model.learn(12)
    assert _fused(model) == [True, True]
    assert model.policy_kwargs["optimizer_kwargs"] == {"fused": True} and model.policy_kwargs["net_arch"] == [16]
    model.save(tmp_path / "m.zip")
    for algo in (SAC, OverlappedSAC):  # the saved policy_kwargs carry it; resumed training keeps the Adam state
        loaded = algo.load(tmp_path / "m.zip", env=_state_env([]), device="cpu")
        loaded.env.model = loaded
        assert _fused(loaded) == [True, True]
        assert loaded.actor.optimizer.state_dict()["state"][0]["step"].item() == model._n_updates
        loaded.learn(4, reset_num_timesteps=False)
        assert loaded.actor.optimizer.state_dict()["state"][0]["step"].item() == model._n_updates + 4
    stock = OverlappedSAC("MlpPolicy", _state_env([]), policy_kwargs={"optimizer_kwargs": {"fused": False}}, **kwargs)
    assert _fused(stock) == [False, False]
    tqc = OverlappedTQC("MlpPolicy", _state_env([]), policy_kwargs={"net_arch": [16]}, **kwargs)
    assert _fused(tqc) == [True, True]


def test_with_fused_adam_adds_fused_only_where_it_applies() -> None:
    import torch

    given = {"net_arch": [8], "optimizer_kwargs": {"eps": 1e-5}}
    assert with_fused_adam(given, "cpu") == {"net_arch": [8], "optimizer_kwargs": {"eps": 1e-5, "fused": True}}
    assert given == {"net_arch": [8], "optimizer_kwargs": {"eps": 1e-5}}  # not modified in place
    assert with_fused_adam(None, torch.device("cpu")) == {"optimizer_kwargs": {"fused": True}}
    assert with_fused_adam({"optimizer_class": torch.optim.AdamW}, "cpu")["optimizer_kwargs"] == {"fused": True}
    for kept in ({"optimizer_kwargs": {"foreach": True}}, {"optimizer_kwargs": {"fused": False}},
                 {"optimizer_class": torch.optim.RMSprop}):  # fmt: skip
        assert with_fused_adam(kept, "cpu") == kept
    assert with_fused_adam({}, "meta") == {}  # a device without fused kernels


def test_encoded_in_workers_equals_vec_encode_observation(tiny_artifact: Path) -> None:
    workers = make_encoded_vec_env("cartpole_swingup", 2, tiny_artifact, seed=0, **ENV)
    here = VecEncodeObservation(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV), tiny_artifact)
    assert workers.observation_space == here.observation_space
    np.testing.assert_allclose(workers.reset(), here.reset(), rtol=1e-4, atol=1e-4)
    actions = np.random.default_rng(0).uniform(-1, 1, (25, 2, 1)).astype(np.float32)
    ends = 0
    for a in actions:  # crosses an episode end (20 steps): terminal observations are vectors in both
        (obs_w, rew_w, done_w, info_w), (obs_h, rew_h, done_h, info_h) = workers.step(a), here.step(a)
        np.testing.assert_allclose(obs_w, obs_h, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(rew_w, rew_h, rtol=1e-6)  # SubprocVecEnv returns float64, DummyVecEnv float32
        np.testing.assert_array_equal(done_w, done_h)
        for iw, ih in zip(info_w, info_h, strict=True):
            if "terminal_observation" in ih:
                ends += 1
                assert iw["terminal_observation"].shape == (128,)
                np.testing.assert_allclose(iw["terminal_observation"], ih["terminal_observation"], rtol=1e-4,
                                           atol=1e-4)  # fmt: skip
    assert ends == 2
    workers.close()
    here.close()


def test_overlapped_tqc_trains_on_worker_encoded_real_env(tiny_artifact: Path) -> None:
    venv = make_encoded_vec_env("cartpole_swingup", 1, tiny_artifact, seed=0, **ENV)
    model = OverlappedTQC("MlpPolicy", venv, learning_starts=10, batch_size=8, seed=0, device="cpu",
                          policy_kwargs={"net_arch": [16]})  # fmt: skip
    model.learn(30)
    assert model.num_timesteps == 30 and model._n_updates == 30 - 10
    assert model.replay_buffer.observations.shape[-1] == 128
    venv.close()


def test_encode_observation_refuses_wrong_pixels_and_bad_arguments(tiny_artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(PixelSpaceError):
        EncodeObservation(make_dmc_env("cartpole_swingup", image_size=32, render="fast"), tiny_artifact)
    with pytest.raises(ValueError, match="vec_env_cls"):
        make_encoded_vec_env("cartpole_swingup", 1, tiny_artifact, vec_env_cls=None)
    # checked in the caller before any worker starts (a worker's error would surface as a broken pipe)
    with pytest.raises(PixelSpaceError, match="make_encoded_vec_env needs raw channel-first pixels"):
        make_encoded_vec_env("cartpole_swingup", 1, tiny_artifact, image_size=32)
    with pytest.raises(FileNotFoundError, match="not found"):
        make_encoded_vec_env("cartpole_swingup", 1, tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="output must be one of"):
        make_encoded_vec_env("cartpole_swingup", 1, tiny_artifact, output="logits")


def test_env_settings_default_to_the_artifact(tiny_artifact: Path) -> None:
    venv = make_encoded_vec_env("cartpole_swingup", 1, tiny_artifact, subprocess=False, action_repeat=50)
    assert venv.reset().shape == (1, 128)
    env = venv.envs[0]
    art = env.encoding.artifact
    assert env.unwrapped.config.image_size == art.image_size and env.unwrapped.config.render == art.render_preset
    venv.close()


def test_intrinsic_reward_reads_worker_vectors_like_vec_encode_observation(tiny_artifact: Path) -> None:
    rewards = []
    for venv in (
        make_encoded_vec_env("cartpole_swingup", 2, tiny_artifact, seed=0, subprocess=False, **ENV),
        VecEncodeObservation(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV), tiny_artifact),
    ):
        wrapped = PrototypeIntrinsicReward(venv, tiny_artifact, update_every=2, window=8)
        assert not hasattr(wrapped, "encoder")  # no conv pass in the reward wrapper
        wrapped.reset()
        got = [wrapped.step(np.full((2, 1), 0.5, np.float32))[3] for _ in range(12)]
        rewards.append(np.array([[i["intrinsic_reward"] for i in infos] for infos in got]))
        wrapped.close()
    assert rewards[0].std() > 0
    # one encoder pass per env (batch 1) vs one for both (batch 2) round differently; a kNN distance to a near-copy
    # of the frame is the norm of that rounding (0.0 vs 4e-4 measured), so the absolute tolerance is 1e-3
    np.testing.assert_allclose(rewards[0], rewards[1], rtol=1e-4, atol=1e-3)


def test_train_overlap_with_intrinsic_reward_then_evaluate(
    tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from sb3_crptpro.app.cli import main

    logs, threads = tmp_path / "logs", torch.get_num_threads()
    argv = ["train", "--task", "cartpole_swingup", "--encoder", str(tiny_artifact), "--mode", "embedding",
            "--overlap", "--n-envs", "2", "--steps", "40", "--batch-size", "8", "--learning-starts", "10",
            "--eval-freq", "20", "--eval-episodes", "1", "--log-dir", str(logs), "--no-progress",
            "--action-repeat", "50"]  # fmt: skip
    assert main(argv) == 0
    assert torch.get_num_threads() == threads  # the updates' thread count is set for the run only
    run = logs / "sac" / "cartpole_swingup_1"
    model = SAC.load(run / "cartpole_swingup.zip", device="cpu")
    per_round = 2 * model.train_freq.frequency  # env steps per rollout (2 envs x the preset's train_freq)
    rounds = len([t for t in range(per_round, 41, per_round) if t > 10])  # the last round included
    assert model.num_timesteps == 40 and model._n_updates == rounds * model.gradient_steps
    assert model.observation_space.shape == (128,)
    assert main(["evaluate", "--run", str(run), "--episodes", "1", "--no-progress"]) == 0
    assert "over 1 episode" in capsys.readouterr().out
    assert main([*argv[:6], "reference", *argv[7:]]) == 2
    assert "overlap (--overlap) needs mode='embedding' (--mode embedding)" in capsys.readouterr().err


def test_docs_overlap_example_runs_as_a_script(tiny_artifact: Path, tmp_path: Path) -> None:
    """The OverlappedSAC block of docs/embedding.md, saved as a script (forkserver workers need its main guard)."""
    text = (Path(__file__).parents[2] / "docs" / "embedding.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    (block,) = [b for b in blocks if "OverlappedSAC(" in b]
    script = block.replace('"encoder.safetensors"', repr(str(tiny_artifact))).replace("learn(20_000)", "learn(120)")
    script = script.replace("finger_spin", "cartpole_swingup").replace("action_repeat=4", "action_repeat=50")
    assert script.count(str(tiny_artifact)) == 1 and "learn(120)" in script
    (tmp_path / "example.py").write_text(script)
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_intrinsic_reward_refuses_another_artifact_than_the_workers(tiny_artifact: Path) -> None:
    from sb3_crptpro import load_artifact

    other = load_artifact(tiny_artifact)
    other.metadata["tensor_sha256"] = "f" * 64  # stands for different weights
    venv = make_encoded_vec_env("cartpole_swingup", 1, tiny_artifact, subprocess=False, **ENV)
    wanted = r"\(weights sha256 f{12}\.\.\.\) differs from the one the envs' .* encode with \([0-9a-f]{12}\.\.\.\)"
    with pytest.raises(ValueError, match=wanted):
        PrototypeIntrinsicReward(venv, other)
    with pytest.raises(ValueError, match="pass the artifact the envs are encoded with"):
        PrototypeIntrinsicReward(venv)
    venv.close()
