"""DrQ-style SAC: one conv trunk shared by actor and critic, trained by the critic loss only (real DMC env)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from sb3_crptpro import make_dmc_vec_env
from sb3_crptpro.sb3.drq import DrQSAC, SharedEncoderSACPolicy, drq_kwargs
from sb3_crptpro.sb3.extractor import EncoderWeights, crptpro_kwargs


@pytest.fixture
def model():
    env = make_dmc_vec_env("cartpole_swingup", 1, image_size=32, render="fast", action_repeat=8, seed=0)
    model = DrQSAC(env=env, policy_kwargs=drq_kwargs(obs_shape=env.observation_space.shape, net_arch=[32, 32]),
                   buffer_size=200, learning_starts=30, batch_size=8, seed=0, device="cpu")  # fmt: skip
    model.learn(30)  # fills the buffer; no update yet
    yield model
    env.close()


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_one_conv_trunk_for_actor_and_critic_and_only_the_critic_optimises_it(model) -> None:
    encoder = model.critic.features_extractor.encoder
    assert model.actor.features_extractor.encoder is encoder
    assert model.critic_target.features_extractor.encoder is not encoder
    shared = {id(p) for p in encoder.parameters()}
    actor_opt = {id(p) for group in model.actor.optimizer.param_groups for p in group["params"]}
    critic_opt = {id(p) for group in model.critic.optimizer.param_groups for p in group["params"]}
    assert not shared & actor_opt and shared <= critic_opt
    assert model.actor.features_extractor.trunk is not model.critic.features_extractor.trunk  # per-head trunks
    assert isinstance(model.actor.features_extractor.trunk[-1], torch.nn.Tanh)


def test_the_actor_loss_leaves_the_encoder_and_the_critic_loss_changes_it(model) -> None:
    encoder, actor_heads = model.critic.features_extractor.encoder, model.actor.latent_pi
    data = model.replay_buffer.sample(8)
    conv = model.critic.features_extractor.conv_features(data.observations).detach()
    before_enc, before_actor = _params(encoder), _params(actor_heads)
    model._update_actor(conv, torch.tensor(0.1), {"actor_loss": [], "ent_coef_loss": []})
    assert _same(before_enc, _params(encoder)) and not _same(before_actor, _params(actor_heads))
    model.actor_update_interval = 10**9  # a critic step only
    before_enc, before_actor = _params(encoder), _params(actor_heads)
    model.train(gradient_steps=1, batch_size=8)
    assert not _same(before_enc, _params(encoder)) and _same(before_actor, _params(actor_heads))


def test_targets_follow_with_their_own_rates(model) -> None:
    model.target_update_interval = 1
    online, target = model.critic, model.critic_target
    old_target = {n: p.detach().clone() for n, p in target.named_parameters()}
    model.train(gradient_steps=1, batch_size=8)
    new_online = dict(online.named_parameters())
    for name, p in target.named_parameters():
        tau = model.encoder_tau if name.startswith("features_extractor.encoder.") else model.tau
        torch.testing.assert_close(p.detach(), old_target[name].lerp(new_online[name].detach(), tau))
    assert model.logger.name_to_value["train/critic_loss"] > 0


def test_save_load_keeps_the_tie_and_the_actions(model, tmp_path) -> None:
    model.learn(10, reset_num_timesteps=False)  # a few updates
    model.save(tmp_path / "drq.zip")
    data = json.loads(zipfile.ZipFile(tmp_path / "drq.zip").read("data"))
    assert "_target_pairs" not in data and data["encoder_tau"] == 0.05 and data["actor_update_interval"] == 2
    loaded = DrQSAC.load(tmp_path / "drq.zip", device="cpu")
    assert loaded.actor.features_extractor.encoder is loaded.critic.features_extractor.encoder
    obs = model.replay_buffer.sample(4).observations.numpy()
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0],
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_fine_tuning_starts_from_the_artifact(tiny_artifact) -> None:
    env = make_dmc_vec_env("cartpole_swingup", 1, image_size=24, render="fast", action_repeat=8, seed=0)
    try:
        model = DrQSAC(env=env, policy_kwargs=drq_kwargs(tiny_artifact, net_arch=[16]), buffer_size=50, device="cpu")
        weights = EncoderWeights.from_artifact(tiny_artifact)
        for key, value in model.critic.features_extractor.encoder.state_dict().items():
            torch.testing.assert_close(value, weights.state_dict[key])
    finally:
        env.close()


def test_errors() -> None:
    env = make_dmc_vec_env("cartpole_swingup", 1, image_size=32, render="fast", action_repeat=8)
    try:
        frozen = crptpro_kwargs(EncoderWeights.random_init(env.observation_space.shape), net_arch=[8])
        with pytest.raises(ValueError, match="trainable CRPTproExtractor"):
            DrQSAC(env=env, policy_kwargs=frozen, buffer_size=10)
        kwargs = drq_kwargs(obs_shape=env.observation_space.shape, net_arch=[8])
        with pytest.raises(ValueError, match="actor_update_interval"):
            DrQSAC(env=env, policy_kwargs=kwargs, buffer_size=10, actor_update_interval=0)
        with pytest.raises(ValueError, match="share_features_extractor"):
            DrQSAC(SharedEncoderSACPolicy, env, policy_kwargs={**kwargs, "share_features_extractor": True})
    finally:
        env.close()
    with pytest.raises(ValueError, match="obs_shape"):
        drq_kwargs()


def test_random_init_is_seeded_and_leaves_the_global_rng() -> None:
    state = torch.get_rng_state()
    a, b = EncoderWeights.random_init((9, 32, 32), seed=1), EncoderWeights.random_init((9, 32, 32), seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert a == b and a != EncoderWeights.random_init((9, 32, 32), seed=2)
