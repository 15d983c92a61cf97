"""AugmentedSAC / AugmentedTQC: augmentation of sampled batches only, on real DMC envs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_crptpro import make_dmc_env
from sb3_crptpro.sb3.extractor import crptpro_kwargs
from sb3_crptpro.sb3.sac import (
    PAPER_SAC_PRESET,
    AugmentedFrameStackReplayBuffer,
    AugmentedReplayBuffer,
    AugmentedSAC,
    AugmentedTQC,
)

SMALL = {"learning_starts": 30, "batch_size": 8, "buffer_size": 500, "seed": 0}


def _is_shift_of(out: torch.Tensor, src: torch.Tensor, pad: int = 4) -> bool:
    padded = F.pad(src.float()[None], (pad, pad, pad, pad), mode="replicate")[0]
    h, w = src.shape[-2:]
    return any(
        torch.equal(out.float(), padded[:, dy : dy + h, dx : dx + w])
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
    )


def test_buffer_augments_samples_not_storage() -> None:
    env = make_dmc_env("cartpole_swingup", image_size=24, render="fast", seed=0)
    plain = ReplayBuffer(50, env.observation_space, env.action_space)
    aug = AugmentedReplayBuffer(50, env.observation_space, env.action_space, augment_seed=0)
    obs, _ = env.reset()
    for _ in range(20):
        action = env.action_space.sample()
        nxt, reward, terminated, _, _ = env.step(action)
        for buffer in (plain, aug):
            buffer.add(obs[None], nxt[None], action[None], np.array([reward]), np.array([terminated]), [{}])
        obs = nxt
    stored = aug.observations.copy()
    inds = np.arange(16)
    a, p = aug._get_samples(inds), plain._get_samples(inds)
    assert np.array_equal(aug.observations, stored)  # storage untouched
    assert a.observations.dtype == torch.uint8
    shifted = [not torch.equal(a.observations[i], p.observations[i]) for i in range(16)]
    assert any(shifted)
    for i in range(16):
        assert _is_shift_of(a.observations[i], p.observations[i])
        assert _is_shift_of(a.next_observations[i], p.next_observations[i])
    torch.testing.assert_close(a.rewards, p.rewards)


@pytest.mark.parametrize("algo", [AugmentedSAC, AugmentedTQC])
def test_augmented_algorithms_learn(algo, tiny_artifact: Path, tmp_path: Path) -> None:
    env = make_dmc_env("cartpole_swingup", image_size=24, render="fast", seed=0)
    model = algo("CnnPolicy", env, policy_kwargs=crptpro_kwargs(tiny_artifact, net_arch=[32]), **SMALL)
    assert isinstance(model.replay_buffer, AugmentedFrameStackReplayBuffer)  # frame-lean default for images
    model.learn(60)
    assert model.replay_buffer.frames_per_transition <= 1.1
    model.save(tmp_path / "m.zip")
    loaded = algo.load(tmp_path / "m.zip", env=env)
    assert isinstance(loaded.replay_buffer, AugmentedFrameStackReplayBuffer)
    assert PAPER_SAC_PRESET["batch_size"] == 512 and PAPER_SAC_PRESET["tau"] == 0.01
    # issue 14: loading with the same policy_kwargs works (weights compared by content), as with stock SAC
    again = algo.load(tmp_path / "m.zip", env=env, policy_kwargs=model.policy_kwargs)
    assert again.policy_kwargs["features_extractor_kwargs"] == model.policy_kwargs["features_extractor_kwargs"]
    other = crptpro_kwargs(tiny_artifact, net_arch=[64])  # different kwargs: SB3's error stays short
    with pytest.raises(ValueError, match="policy kwargs do not equal") as error:
        algo.load(tmp_path / "m.zip", env=env, policy_kwargs=other)
    assert len(str(error.value)) < 2000 and "sha256=" in str(error.value)


def _conv_passes_per_step(model, steps: int = 2) -> float:
    calls = []
    extractors = [model.actor.features_extractor, model.critic.features_extractor]
    extractors.append(model.critic_target.features_extractor)
    hooks = [e.encoder.register_forward_hook(lambda *_: calls.append(1)) for e in extractors]
    model.train(gradient_steps=steps, batch_size=8)
    for h in hooks:
        h.remove()
    return len(calls) / steps


def test_frozen_trunk_runs_once_per_batch(tiny_artifact: Path) -> None:
    from stable_baselines3 import SAC

    passes = {}
    for algo in (AugmentedSAC, SAC):
        env = make_dmc_env("cartpole_swingup", image_size=24, render="fast", seed=0)
        model = algo("CnnPolicy", env, policy_kwargs=crptpro_kwargs(tiny_artifact, net_arch=[16]), **SMALL)
        model.learn(40)  # fills the buffer past learning_starts
        passes[algo.__name__] = _conv_passes_per_step(model)
    assert passes == {"AugmentedSAC": 2.0, "SAC": 5.0}  # obs + next_obs once, instead of 3x obs + 2x next_obs
    extractor = model.actor.features_extractor
    obs = torch.randint(0, 256, (4, 9, 24, 24), dtype=torch.uint8).float()
    torch.testing.assert_close(extractor(extractor.conv_features(obs)), extractor(obs))


def test_render_preset_mismatch_warns(tiny_artifact: Path) -> None:
    import warnings

    kwargs = crptpro_kwargs(tiny_artifact, net_arch=[16])  # pretrained on "fast" frames
    with pytest.warns(UserWarning, match="preset"):
        AugmentedSAC("CnnPolicy", make_dmc_env("cartpole_swingup", image_size=24, render="paper"), policy_kwargs=kwargs,
                     **SMALL)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        AugmentedSAC("CnnPolicy", make_dmc_env("cartpole_swingup", image_size=24, render="fast"), policy_kwargs=kwargs,
                     **SMALL)  # fmt: skip
