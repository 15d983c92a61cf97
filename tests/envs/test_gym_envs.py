"""Any Gymnasium env that renders as a domain (issue 15), on real MuJoCo envs: HalfCheetah-v5 and Hopper-v5."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from sb3_crptpro import (
    GymPixelEnv,
    make_dmc_env,
    make_pixel_env,
    make_pixel_vec_env,
    resolve_env,
)
from sb3_crptpro.app.cli import main
from sb3_crptpro.data import CrossDomainDataset, DomainDataset, collect, read_manifest

SMALL = {"image_size": 32, "render": "fast"}


def test_names_resolve_unambiguously_with_close_matches_from_both() -> None:
    assert resolve_env("HalfCheetah-v5") == ("gymnasium", "HalfCheetah-v5")
    assert resolve_env("cheetah-run") == ("dmc", "cheetah_run")
    assert resolve_env("dm_control/cheetah-run-v0") == ("dmc", "cheetah_run")  # a Gymnasium id, but DMC's own
    with pytest.raises(ValueError, match=r"Did you mean: .*HalfCheetah-v5") as error:
        resolve_env("halfcheetah")
    assert "neither a DeepMind Control task" in str(error.value)
    with pytest.raises(ValueError, match=r"Did you mean: .*cheetah_run"):
        resolve_env("cheeta_run")
    with pytest.raises(ValueError, match="Hopper-v5"):
        resolve_env("Hoper-v5")
    with pytest.raises(ValueError, match="use make_pixel_env"):
        make_dmc_env("Hopper-v5")


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
def test_same_contract_as_dmc_envs(env_id: str) -> None:
    env = make_pixel_env(env_id, action_repeat=2, seed=0, **SMALL)
    assert isinstance(env, GymPixelEnv)
    assert env.observation_space == gym.spaces.Box(0, 255, (9, 32, 32), np.uint8)
    obs, info = env.reset(seed=3)
    assert obs.dtype == np.uint8 and obs.shape == (9, 32, 32) and np.array_equal(obs[:3], obs[6:])  # stack of copies
    raw = gym.make(env_id)  # the same env without pixels: rewards of two raw steps sum to one pixel step
    raw_obs, _ = raw.reset(seed=3)
    np.testing.assert_allclose(info["state"], raw_obs.astype(np.float32), rtol=1e-6)
    action = np.full(env.action_space.shape, 0.3, np.float32)
    obs2, reward, _, truncated, info = env.step(action)
    expected = sum(float(raw.step(action)[1]) for _ in range(2))
    assert reward == pytest.approx(expected, rel=1e-6) and not truncated
    assert np.array_equal(obs2[:6], obs[3:]) and not np.array_equal(obs2[6:], obs[6:])  # one new frame, newest last
    assert env.render().shape == (32, 32, 3)
    raw.close()
    env.close()
    again = make_pixel_env(env_id, action_repeat=2, seed=0, **SMALL)  # same seed, same frames
    assert np.array_equal(again.reset(seed=3)[0], obs)
    again.close()


def test_hopper_terminates_and_vec_env_runs() -> None:
    venv = make_pixel_vec_env("Hopper-v5", 2, seed=0, action_repeat=4, **SMALL)
    venv.reset()
    done_seen = False
    for _ in range(80):  # a random Hopper falls within a few dozen steps
        _, _, dones, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        for done, info in zip(dones, infos, strict=True):
            if done:
                done_seen = True
                assert info["terminal_observation"].shape == (9, 32, 32) and "episode" in info
    assert done_seen
    venv.close()


def test_collect_mixes_dmc_and_gymnasium_then_pretrain_and_train(tmp_path) -> None:
    tasks = ["reacher_easy", "HalfCheetah-v5", "Hopper-v5"]
    kwargs = {"transitions_per_domain": 60, "chunk_transitions": 30, "n_workers": 1, "progress": False,
              "action_repeat": 4, **SMALL}  # fmt: skip
    dirs = collect(tasks, tmp_path / "a", seed=1, **kwargs)
    again = collect(tasks, tmp_path / "b", seed=1, **kwargs)
    for d, e in zip(dirs, again, strict=True):  # same seed, same dataset (shard checksums)
        assert [s["sha256"] for s in read_manifest(d)["shards"]] == [s["sha256"] for s in read_manifest(e)["shards"]]
    cheetah = DomainDataset(dirs[1])
    assert cheetah.task == "HalfCheetah-v5" and len(cheetah) == 60 and cheetah.state_dim == 17
    assert read_manifest(dirs[2])["shapes"]["action_dim"] == 3 and read_manifest(dirs[0])["shapes"]["action_dim"] == 2
    assert read_manifest(dirs[1])["env"]["camera_id"] == -1
    assert len(CrossDomainDataset(tmp_path / "a").domains) == 3
    collect(tasks, tmp_path / "a", seed=1, resume=True, **kwargs)  # finished: resuming changes nothing

    encoder = tmp_path / "encoder.safetensors"
    assert main(["pretrain", "--data", str(tmp_path / "a"), "--out", str(encoder), "--updates", "2",
                 "--batch-size", "8", "--num-protos", "16", "--no-progress"]) == 0  # fmt: skip
    argv = ["train", "--task", "Hopper-v5", "--encoder", str(encoder), "--mode", "embedding", "--steps", "40",
            "--batch-size", "8", "--learning-starts", "20", "--eval-freq", "0", "--action-repeat", "4",
            "--log-dir", str(tmp_path / "logs"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "logs" / "sac" / "Hopper-v5_1"
    assert main(["evaluate", "--run", str(run), "--episodes", "1", "--no-progress"]) == 0
    assert main(["evaluate", "--run", str(run), "--task", "Walker2d-v5", "--episodes", "1", "--no-progress"]) == 2


def test_missing_render_dependency_is_one_line_and_leaves_nothing(
    tmp_path, tiny_artifact, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    def no_pygame(self: PendulumEnv) -> None:  # what Pendulum-v1 raises where pygame is not installed
        raise gym.error.DependencyNotInstalled(
            'pygame is not installed, run `pip install "gymnasium[classic_control]"`'
        )

    monkeypatch.setattr(PendulumEnv, "render", no_pygame)
    argv = ["collect", "--tasks", "cheetah_run", "Pendulum-v1", "--transitions", "10", "--out", str(tmp_path / "data"),
            "--workers", "1", "--image-size", "24", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Pendulum-v1 cannot render: pygame is not installed" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()  # refused before any folder was made, for cheetah_run too
    argv = ["train", "--task", "Pendulum-v1", "--encoder", str(tiny_artifact), "--steps", "40", "--eval-freq", "0",
            "--log-dir", str(tmp_path / "logs"), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Pendulum-v1 cannot render: pygame is not installed" in err and "Traceback" not in err
    assert not (tmp_path / "logs" / "sac" / "Pendulum-v1_1").exists()  # no run dir, config or model zip left


def test_evaluate_refuses_a_task_with_other_action_bounds(
    tmp_path, tiny_artifact, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--task", "cartpole_swingup", "--encoder", str(tiny_artifact), "--steps", "20", "--eval-freq",
            "0", "--learning-starts", "10", "--batch-size", "8", "--action-repeat", "50", "--log-dir",
            str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    run = str(tmp_path / "sac" / "cartpole_swingup_1")
    capsys.readouterr()
    # same action shape (1,), but bounds [-3, 3]: SB3 would rescale the policy's actions to the model's [-1, 1]
    assert main(["evaluate", "--run", run, "--task", "InvertedPendulum-v5", "--episodes", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "InvertedPendulum-v5 has action bounds [-3, 3]" in err and "with [-1, 1]" in err and "Traceback" not in err
    assert main(["evaluate", "--run", run, "--task", "acrobot_swingup", "--episodes", "2"]) == 0
    err = capsys.readouterr().err  # piped (captured): a line per episode, not carriage-return bar redraws
    assert "[evaluate acrobot_swingup] episode 1/2\n[evaluate acrobot_swingup] episode 2/2\n" in err
    assert "\r" not in err
