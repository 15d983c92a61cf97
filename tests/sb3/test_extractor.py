"""CRPTproExtractor and crptpro_kwargs with real SB3 SAC on a real DMC env."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

from sb3_crptpro import make_dmc_env
from sb3_crptpro.sb3.extractor import CRPTproExtractor, EncoderWeights, crptpro_kwargs

SAC_SMALL = {"learning_starts": 50, "batch_size": 16, "buffer_size": 1000, "seed": 0, "verbose": 0}


@pytest.fixture
def artifact(tiny_artifact: Path) -> Path:
    return tiny_artifact


def _env() -> gym.Env:
    return make_dmc_env("cartpole_swingup", image_size=24, render="fast", seed=0)


def test_sac_learns_with_frozen_encoder(artifact: Path) -> None:
    model = SAC("CnnPolicy", _env(), policy_kwargs=crptpro_kwargs(artifact, net_arch=[64, 64]), **SAC_SMALL)
    extractor = model.actor.features_extractor
    assert isinstance(extractor, CRPTproExtractor) and extractor.features_dim == 50
    conv_before = {k: v.clone() for k, v in extractor.encoder.state_dict().items()}
    trunk_before = {k: v.clone() for k, v in extractor.trunk.state_dict().items()}
    model.learn(150)
    for k, v in extractor.encoder.state_dict().items():
        assert torch.equal(v, conv_before[k]), k
    assert any(not torch.equal(v, trunk_before[k]) for k, v in extractor.trunk.state_dict().items())
    critic_conv = model.critic.features_extractor.encoder.state_dict()
    assert all(torch.equal(v, conv_before[k]) for k, v in critic_conv.items())


def test_default_head_sizes_and_fine_tuning(artifact: Path) -> None:
    kwargs = crptpro_kwargs(artifact)
    assert kwargs["net_arch"] == [1024, 1024] and kwargs["normalize_images"] is False
    tuned = crptpro_kwargs(artifact, net_arch=[32], features_extractor_kwargs={"freeze": False})
    model = SAC("CnnPolicy", _env(), policy_kwargs=tuned, **SAC_SMALL)
    before = {k: v.clone() for k, v in model.actor.features_extractor.encoder.state_dict().items()}
    model.learn(120)
    after = model.actor.features_extractor.encoder.state_dict()
    assert any(not torch.equal(v, before[k]) for k, v in after.items())


def test_save_load_after_artifact_deleted(artifact: Path, tmp_path: Path) -> None:
    moved = tmp_path / "enc.safetensors"
    moved.write_bytes(artifact.read_bytes())
    model = SAC("CnnPolicy", _env(), policy_kwargs=crptpro_kwargs(moved, net_arch=[32]), **SAC_SMALL)
    model.learn(60)
    model.save(tmp_path / "model.zip")
    moved.unlink()
    loaded = SAC.load(tmp_path / "model.zip", env=_env())
    obs, _ = _env().reset()
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    for k, v in model.policy.state_dict().items():
        assert torch.equal(v, loaded.policy.state_dict()[k]), k


def test_observation_space_errors(artifact: Path) -> None:
    weights = EncoderWeights.from_artifact(artifact)
    with pytest.raises(ValueError, match="VecTransposeImage"):
        CRPTproExtractor(gym.spaces.Box(0, 255, (24, 24, 9), np.uint8), weights)
    with pytest.raises(ValueError, match="3 stacked RGB frames of 24x24"):
        CRPTproExtractor(gym.spaces.Box(0, 255, (6, 24, 24), np.uint8), weights)
    with pytest.raises(ValueError, match="raw channel-first pixels"):
        CRPTproExtractor(gym.spaces.Box(-1, 1, (5,), np.float32), weights)


def test_bf16_features_close_to_fp32(artifact: Path) -> None:
    space = gym.spaces.Box(0, 255, (9, 24, 24), np.uint8)
    fp32 = CRPTproExtractor(space, artifact)
    bf16 = CRPTproExtractor(space, artifact, encoder_dtype=torch.bfloat16)
    obs = torch.randint(0, 256, (8, 9, 24, 24), dtype=torch.uint8).float()
    a, b = fp32.conv_features(obs), bf16.conv_features(obs)
    assert b.dtype == torch.float32
    rel = (a - b).norm() / a.norm()
    assert rel < 0.02  # stated tolerance: 2% relative L2 error


def test_frozen_fast_path_matches_plain_encoder(artifact: Path) -> None:
    space = gym.spaces.Box(0, 255, (9, 24, 24), np.uint8)
    extractor = CRPTproExtractor(space, artifact)
    obs = torch.randint(0, 256, (2 * extractor.CPU_CHUNK + 5, 9, 24, 24), dtype=torch.uint8)
    plain = EncoderWeights.from_artifact(artifact).build().eval()
    with torch.no_grad():
        expected = plain(obs)
    fast = extractor.conv_features(obs)  # channels_last, three chunks
    assert fast.shape == expected.shape
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-5)


def test_ppo_orthogonal_init_keeps_pretrained_conv_weights(artifact: Path) -> None:
    from stable_baselines3 import PPO

    model = PPO("CnnPolicy", _env(), policy_kwargs=crptpro_kwargs(artifact, net_arch=[16]), n_steps=16, batch_size=16)
    pretrained = EncoderWeights.from_artifact(artifact).build().state_dict()
    extractor = model.policy.features_extractor
    for k, v in extractor.encoder.state_dict().items():
        assert torch.equal(v, pretrained[k]), k  # SB3's ortho_init must not touch the pretrained trunk
    model.learn(32)
    assert all(torch.equal(v, pretrained[k]) for k, v in extractor.encoder.state_dict().items())
