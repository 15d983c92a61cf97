"""LayerNorm-critic policies, the learner of embedding mode's default preset: every hidden layer of every Q-network
(critic and target) is normalised and trained, the actor is SB3's, saved models reload, and `sb3-crptpro train`
picks them from the preset (or not, with --no-critic-layer-norm). Real DMC envs and real SB3 / sb3-contrib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sb3_contrib import TQC
from stable_baselines3 import SAC

from sb3_crptpro import LayerNormCriticSACPolicy, LayerNormCriticTQCPolicy, TrainConfig, make_dmc_vec_env
from sb3_crptpro.app.cli import main
from sb3_crptpro.sb3.policies import add_critic_layer_norm


def _state_env():  # a real DMC task on its proprioceptive state (5-d), 1-d actions, 125 agent steps per episode
    return make_dmc_vec_env("cartpole_swingup", 1, seed=0, observation="state", action_repeat=8)


def _kinds(q_net: torch.nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in q_net]


def test_sac_policy_normalises_every_hidden_critic_layer_trains_them_and_reloads(tmp_path: Path) -> None:
    venv = _state_env()
    model = SAC(LayerNormCriticSACPolicy, venv, seed=0, learning_starts=10, batch_size=16,
                policy_kwargs={"net_arch": [32, 24]})  # fmt: skip
    for critic in (model.critic, model.critic_target):
        assert len(critic.q_networks) == 2
        for index, q_net in enumerate(critic.q_networks):
            assert getattr(critic, f"qf{index}") is q_net  # registered: saved, moved and optimised with the critic
            assert _kinds(q_net) == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
            assert [m.normalized_shape for m in q_net if isinstance(m, torch.nn.LayerNorm)] == [(32,), (24,)]
    assert _kinds(model.actor.latent_pi) == ["Linear", "ReLU", "Linear", "ReLU"]  # SB3's actor
    norm = model.critic.q_networks[0][1]
    optimised = {id(p) for group in model.critic.optimizer.param_groups for p in group["params"]}
    assert id(norm.weight) in optimised and id(norm.bias) in optimised
    target_norm = model.critic_target.q_networks[0][1]
    assert torch.equal(norm.weight, target_norm.weight) and norm.weight is not target_norm.weight
    before = norm.weight.detach().clone()
    model.learn(40)
    assert not torch.equal(norm.weight, before)  # LayerNorm gains get gradients
    assert not torch.equal(target_norm.weight, norm.weight)  # the target follows by Polyak averaging, not a copy
    model.save(tmp_path / "agent.zip")
    loaded = SAC.load(tmp_path / "agent.zip", env=venv)
    assert isinstance(loaded.policy, LayerNormCriticSACPolicy)
    obs = venv.reset()
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    action = torch.zeros(1, 1)
    q, q_loaded = model.critic(torch.as_tensor(obs), action), loaded.critic(torch.as_tensor(obs), action)
    np.testing.assert_allclose([t.item() for t in q_loaded], [t.item() for t in q], rtol=1e-6)
    venv.close()


def test_layer_norm_draws_no_random_numbers_the_other_weights_are_the_plain_policys() -> None:
    venv = _state_env()
    plain = SAC("MlpPolicy", venv, seed=3, policy_kwargs={"net_arch": [32, 32]})
    normed = SAC(LayerNormCriticSACPolicy, venv, seed=3, policy_kwargs={"net_arch": [32, 32]})
    for a, b in ((plain.actor, normed.actor), (plain.critic.qf0, normed.critic.qf0)):
        linears = [[m.weight for m in net.modules() if isinstance(m, torch.nn.Linear)] for net in (a, b)]
        assert len(linears[0]) == len(linears[1]) > 1
        assert all(torch.equal(x, y) for x, y in zip(*linears, strict=True))
    # a fresh LayerNorm is the identity affine map: on equal inputs the first hidden layers agree up to normalisation
    obs = torch.randn(4, 5)
    hidden = plain.critic.qf0[0](torch.cat([obs, torch.zeros(4, 1)], dim=1))
    torch.testing.assert_close(normed.critic.qf0[1](hidden), torch.nn.functional.layer_norm(hidden, (32,)))
    venv.close()


def test_tqc_policy_normalises_every_quantile_network_and_reloads(tmp_path: Path) -> None:
    venv = _state_env()
    model = TQC(LayerNormCriticTQCPolicy, venv, seed=0, learning_starts=10, batch_size=16,
                policy_kwargs={"net_arch": [16, 16], "n_critics": 3, "n_quantiles": 5})  # fmt: skip
    for critic in (model.critic, model.critic_target):
        assert len(critic.q_networks) == 3
        for index, q_net in enumerate(critic.q_networks):
            assert getattr(critic, f"qf{index}") is q_net
            assert _kinds(q_net) == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
            assert q_net[-1].out_features == 5  # the quantiles: the output layer is not normalised
    model.learn(30)
    model.save(tmp_path / "agent.zip")
    loaded = TQC.load(tmp_path / "agent.zip")
    assert isinstance(loaded.policy, LayerNormCriticTQCPolicy)
    obs = venv.reset()
    torch.testing.assert_close(loaded.critic(torch.as_tensor(obs), torch.zeros(1, 1)),
                               model.critic(torch.as_tensor(obs), torch.zeros(1, 1)))  # fmt: skip
    venv.close()


def test_add_critic_layer_norm_refuses_a_module_without_q_networks() -> None:
    with pytest.raises(ValueError, match=r"q_networks of nn\.Sequential"):
        add_critic_layer_norm(torch.nn.Linear(3, 3))


def test_train_config_refuses_a_critic_layer_norm_that_is_not_a_bool() -> None:
    with pytest.raises(ValueError, match="critic_layer_norm must be True or False, got 'yes'"):
        TrainConfig(task="reacher_easy", encoder="x.safetensors", overrides={"critic_layer_norm": "yes"})


@pytest.mark.parametrize(
    ("mode", "flag", "policy"),
    [
        ("embedding", [], "LayerNormCriticSACPolicy"),  # the embedding preset's default
        ("embedding", ["--no-critic-layer-norm"], "SACPolicy"),  # SB3's MlpPolicy: the learner before the study
        ("reference", ["--critic-layer-norm"], "LayerNormCriticSACPolicy"),  # on the frozen CRPTpro extractor
    ],
)
def test_train_picks_the_policy_from_the_preset_or_the_flag(tiny_artifact: Path, tmp_path: Path, mode: str,
                                                            flag: list[str], policy: str) -> None:  # fmt: skip
    logs = tmp_path / "logs"
    argv = ["train", "--task", "reacher_easy", "--encoder", str(tiny_artifact), "--mode", mode, "--steps", "40",
            "--batch-size", "8", "--learning-starts", "20", "--eval-freq", "0", "--checkpoint-every", "0",
            "--action-repeat", "50", "--log-dir", str(logs), "--no-progress", *flag]  # fmt: skip
    assert main(argv) == 0
    run = logs / "sac" / "reacher_easy_1"
    saved = yaml.safe_load((run / "config.yml").read_text())["hyperparameters"]
    assert saved.get("critic_layer_norm", False) is (policy != "SACPolicy")
    from sb3_crptpro.app.training import algo_class

    model = algo_class("sac", mode).load(run / "reacher_easy.zip")
    assert type(model.policy).__name__ == policy and model.num_timesteps == 40
    norms = [m for m in model.critic.qf0 if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == (2 if policy != "SACPolicy" else 0)
    if mode == "reference":
        assert type(model.actor.features_extractor).__name__ == "CRPTproExtractor"


def test_embedding_preset_kwargs_build_the_presets_learner_with_overrides() -> None:
    from sb3_crptpro import embedding_preset_kwargs
    from sb3_crptpro.sb3.presets import TRAIN_PRESETS

    venv = _state_env()
    kwargs = embedding_preset_kwargs(buffer_size=5_000, policy_kwargs={"net_arch": [64, 64]})
    model = SAC(env=venv, seed=0, **kwargs)
    assert isinstance(model.policy, LayerNormCriticSACPolicy)
    assert model.buffer_size == 5_000 and model.batch_size == TRAIN_PRESETS["embedding"]["batch_size"] == 128
    assert model.target_update_interval == 1 and model.tau == 0.01 and model.learning_starts == 1000
    assert [m.out_features for m in model.critic.qf0 if isinstance(m, torch.nn.Linear)] == [64, 64, 1]
    assert embedding_preset_kwargs()["policy_kwargs"] == {"net_arch": [256, 256]}
    assert embedding_preset_kwargs("tqc")["policy"] is LayerNormCriticTQCPolicy
    assert embedding_preset_kwargs(critic_layer_norm=False)["policy"] == "MlpPolicy"
    assert "critic_layer_norm" not in kwargs and "net_arch" not in kwargs
    with pytest.raises(ValueError, match="algo must be 'sac' or 'tqc', got 'ppo'"):
        embedding_preset_kwargs("ppo")
    venv.close()
