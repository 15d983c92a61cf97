"""Replay buffers saved at the size they fill (sb3_crptpro.sb3.buffer_files), loaded back at their capacity."""

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import SAC

from sb3_crptpro import (
    AugmentedSAC,
    VecEncodeObservation,
    crptpro_kwargs,
    env_settings,
    load_artifact,
    make_dmc_vec_env,
)
from sb3_crptpro.sb3.buffer_files import load_filled_replay_buffer, save_filled_replay_buffer


def _arrays(buffer) -> dict[str, np.ndarray]:
    return {k: v for k, v in vars(buffer).items() if isinstance(v, np.ndarray)}


@pytest.fixture(scope="module")
def encoded_env():
    meta = load_artifact("dmc-64px").metadata
    return lambda: VecEncodeObservation(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **env_settings(meta, 50)),
                                        "dmc-64px")  # fmt: skip


def test_sb3_buffer_round_trip_is_exact_and_small(encoded_env, tmp_path: Path) -> None:
    model = SAC("MlpPolicy", encoded_env(), buffer_size=20_000, learning_starts=1000, seed=0)
    model.learn(60)  # 2 envs: 30 rows of 10,000
    full, cut = tmp_path / "full.pkl", tmp_path / "cut.pkl"
    model.save_replay_buffer(full)
    save_filled_replay_buffer(model.replay_buffer, cut)
    assert cut.stat().st_size < full.stat().st_size / 100  # 31 of 10,000 rows
    assert _arrays(model.replay_buffer)["observations"].shape[0] == 10_000  # the model's buffer is not cut

    other = SAC("MlpPolicy", encoded_env(), buffer_size=20_000, seed=0)
    load_filled_replay_buffer(other, cut)
    mine, theirs = _arrays(model.replay_buffer), _arrays(other.replay_buffer)
    assert mine.keys() == theirs.keys()
    for name, value in mine.items():
        assert theirs[name].shape == value.shape and np.array_equal(theirs[name], value), name
    assert (other.replay_buffer.pos, other.replay_buffer.full) == (30, False)
    other.learn(40, reset_num_timesteps=False)  # keeps adding past the cut rows
    assert other.replay_buffer.pos == 50
    load_filled_replay_buffer(other, full)  # SB3's own file loads unchanged
    assert other.replay_buffer.pos == 30


def test_frame_lean_buffer_round_trip_is_exact(tmp_path: Path) -> None:
    meta = load_artifact("dmc-64px").metadata
    env = make_dmc_vec_env("cartpole_swingup", 1, seed=0, **env_settings(meta, 50))
    kwargs = {"buffer_size": 2000, "seed": 0, "policy_kwargs": crptpro_kwargs("dmc-64px", net_arch=[32, 32])}
    model = AugmentedSAC("CnnPolicy", env, learning_starts=1000, **kwargs)
    model.learn(45)  # 2 episodes of 20 steps and part of a third
    path = tmp_path / "cut.pkl"
    save_filled_replay_buffer(model.replay_buffer, path)
    other = AugmentedSAC("CnnPolicy", env, **kwargs)
    load_filled_replay_buffer(other, path)
    mine, theirs = _arrays(model.replay_buffer), _arrays(other.replay_buffer)
    assert len(mine["frames"]) > 2000 and path.stat().st_size < mine["frames"].nbytes / 10
    for name, value in mine.items():
        assert theirs[name].shape == value.shape and np.array_equal(theirs[name], value), name
    batch = other.replay_buffer.sample(8)
    assert batch.observations.shape == (8, other.actor.features_extractor.encoder.repr_dim)  # features, one pass
    env.close()
