"""PrototypeIntrinsicReward: oracle vectors, SB3 SAC/PPO on real DMC envs, episode ends, state round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC

from sb3_crptpro import make_dmc_vec_env
from sb3_crptpro.sb3.extractor import crptpro_kwargs
from sb3_crptpro.sb3.reward import PrototypeIntrinsicReward, enqueue_probs, knn_reward

ORACLE = json.loads((Path(__file__).parents[1] / "oracles" / "crptpro_cases.json").read_text())
ENV = {"image_size": 24, "render": "fast", "action_repeat": 50}  # 20-step episodes


@pytest.fixture
def artifact(tiny_artifact: Path) -> Path:
    return tiny_artifact


def test_knn_reward_matches_oracle() -> None:
    case = ORACLE["knn_reward"]
    reward = knn_reward(torch.tensor(case["z"], dtype=torch.float64), torch.tensor(case["queue_normalised"]), case["k"])
    torch.testing.assert_close(reward, torch.tensor(case["expected"], dtype=torch.float64), rtol=1e-6, atol=1e-7)


def test_enqueue_probs_match_oracle() -> None:
    case = ORACLE["enqueue_probs"]
    probs = enqueue_probs(
        torch.tensor(case["z"], dtype=torch.float64), torch.tensor(case["prototypes"], dtype=torch.float64)
    )
    torch.testing.assert_close(probs, torch.tensor(case["expected"], dtype=torch.float64), rtol=1e-6, atol=1e-12)


def test_rewards_infos_and_episode_ends(artifact: Path) -> None:
    venv = PrototypeIntrinsicReward(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV), artifact, coef=0.5,
                                    queue_size=32, update_every=2, window=8)  # fmt: skip
    venv.reset()
    saw_done = False
    rng = np.random.default_rng(0)
    for step in range(25):
        _, rewards, dones, infos = venv.step(rng.uniform(-1, 1, (2, 1)).astype(np.float32))
        for i, info in enumerate(infos):
            assert rewards[i] == pytest.approx(info["extrinsic_reward"] + 0.5 * info["intrinsic_reward"], rel=1e-5)
            if step == 0:
                assert info["intrinsic_reward"] == 0.0  # empty queue
            if dones[i]:
                saw_done = True
                assert "terminal_observation" in info and "episode" in info
        if step >= 4:
            assert all(info["intrinsic_reward"] > 0 for info in infos)
    assert saw_done and venv.queue_filled == 32  # 12 refreshes x 16 prototypes, capped at the queue size
    # Monitor sits inside: the episode return it logs is the extrinsic one
    state = venv.state_dict()
    other = PrototypeIntrinsicReward(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV), artifact, queue_size=32,
                                     update_every=2, window=8)  # fmt: skip
    other.load_state_dict(state)
    assert torch.equal(other.queue, venv.queue) and other.queue_ptr == venv.queue_ptr


def test_monitor_returns_stay_extrinsic(artifact: Path) -> None:
    venv = PrototypeIntrinsicReward(make_dmc_vec_env("cartpole_swingup", 1, seed=0, **ENV), artifact, coef=10.0,
                                    update_every=1)  # fmt: skip
    venv.reset()
    extrinsic = total = 0.0
    for _ in range(20):
        _, rewards, dones, infos = venv.step(np.zeros((1, 1), dtype=np.float32))
        extrinsic += infos[0]["extrinsic_reward"]
        total += float(rewards[0])
    assert dones[0]
    assert infos[0]["episode"]["r"] == pytest.approx(extrinsic, abs=1e-4)
    assert total > extrinsic


@pytest.mark.parametrize("algo", [SAC, PPO])
def test_works_with_sb3_algorithms(artifact: Path, algo, tmp_path: Path) -> None:
    venv = PrototypeIntrinsicReward(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV), artifact)
    kwargs = (
        {"learning_starts": 20, "batch_size": 8, "buffer_size": 200}
        if algo is SAC
        else {"n_steps": 16, "batch_size": 16}
    )
    model = algo("CnnPolicy", venv, seed=0, policy_kwargs=crptpro_kwargs(artifact, net_arch=[16]), **kwargs)
    model.learn(64)
    assert venv.steps >= 32
    venv.save(tmp_path / "queue.pt")
    venv.load(tmp_path / "queue.pt")


def test_ring_write_matches_sequential_fifo() -> None:
    from sb3_crptpro.sb3.reward import _ring_write

    for size, n, ptr in [(8, 3, 6), (4, 10, 1), (5, 5, 0)]:
        buffer, expected = torch.zeros(size, 1), torch.zeros(size, 1)
        rows = torch.arange(1, n + 1, dtype=torch.float32)[:, None]
        p = ptr
        for row in rows:
            expected[p] = row
            p = (p + 1) % size
        assert _ring_write(buffer, ptr, rows) == p
        assert torch.equal(buffer, expected)


def test_callback_adds_the_reward_to_the_training_env_only(artifact: Path) -> None:
    from sb3_crptpro.sb3.reward import IntrinsicRewardCallback

    def stored_rewards(callback: IntrinsicRewardCallback | None) -> tuple[np.ndarray, SAC]:
        venv = make_dmc_vec_env("reacher_easy", seed=3, **ENV)
        model = SAC("CnnPolicy", venv, policy_kwargs=crptpro_kwargs(artifact), learning_starts=1000, buffer_size=200,
                    seed=3, device="cpu")  # fmt: skip
        # learning_starts > steps: random actions only, so both runs see the same transitions
        model.learn(60, callback=callback)
        return model.replay_buffer.rewards[:60, 0].copy(), model

    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        IntrinsicRewardCallback(artifact, bogus=3)
    with pytest.raises(ValueError, match="finite number >= 0"):
        IntrinsicRewardCallback(artifact, coef=-1.0)
    plain, _ = stored_rewards(None)
    callback = IntrinsicRewardCallback(artifact, coef=0.2)
    with_reward, model = stored_rewards(callback)
    bonus = with_reward - plain
    assert (bonus >= 0).all() and (bonus > 0).mean() > 0.5  # coef x kNN distance, zero only while the queue is empty
    assert model.get_env() is callback.wrapper and callback.wrapper.steps == 60
    model.learn(20, callback=callback, reset_num_timesteps=False)  # a second learn() does not wrap twice
    assert model.get_env() is callback.wrapper and not isinstance(callback.wrapper.venv, PrototypeIntrinsicReward)


def _normalized_embedding_envs(artifact: Path, coef: float) -> tuple:
    """The documented VecNormalize route: VecNormalize outside, the reward inside, and an evaluation env with the
    same layers (its reward at coef 0)."""
    from stable_baselines3.common.vec_env import VecNormalize

    from sb3_crptpro import VecEncodeObservation

    def layers(seed: int, reward_coef: float) -> PrototypeIntrinsicReward:
        encoded = VecEncodeObservation(make_dmc_vec_env("reacher_easy", seed=seed, **ENV), artifact)
        return PrototypeIntrinsicReward(encoded, coef=reward_coef)

    train = VecNormalize(layers(3, coef), norm_obs=False)
    evaluation = VecNormalize(layers(100, 0.0), training=False, norm_obs=False, norm_reward=False)
    return train, evaluation


@pytest.mark.parametrize("route", ["wrapper", "callback"])
def test_vec_normalize_with_the_intrinsic_reward_and_an_eval_callback(artifact: Path, route: str,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """SB3's EvalCallback syncs VecNormalize level by level (sync_envs_normalization); with the layers mirrored it
    evaluates, SAC stores the reward with its intrinsic part, and the evaluation reports the task return."""
    from stable_baselines3.common.callbacks import EvalCallback

    from sb3_crptpro.sb3.reward import IntrinsicRewardCallback

    train, evaluation = _normalized_embedding_envs(artifact, 0.2 if route == "wrapper" else 0.0)
    evaluate = EvalCallback(evaluation, eval_freq=20, n_eval_episodes=1, log_path=str(tmp_path), verbose=0)
    callbacks = [evaluate] if route == "wrapper" else [IntrinsicRewardCallback(coef=0.2), evaluate]
    model = SAC("MlpPolicy", train, learning_starts=1000, buffer_size=200, seed=3, device="cpu")
    model.learn(60, callback=callbacks)
    assert evaluate.evaluations_timesteps == [20, 40, 60]
    assert evaluation.ret_rms.count == train.ret_rms.count > 1  # synced from the training env at each evaluation
    reward = train.venv
    assert isinstance(reward, PrototypeIntrinsicReward) and reward.coef == 0.2 and reward.steps == 60
    assert evaluation.venv.coef == 0.0  # the evaluation env stays extrinsic
    stored = model.replay_buffer.rewards[:60, 0]  # what SAC stores: VecNormalize's original reward
    plain = SAC("MlpPolicy", _normalized_embedding_envs(artifact, 0.0)[0], learning_starts=1000, buffer_size=200,
                seed=3, device="cpu")  # fmt: skip
    plain.learn(60)
    bonus = stored - plain.replay_buffer.rewards[:60, 0]
    assert (bonus >= 0).all() and (bonus > 0).mean() > 0.5  # the intrinsic part reached the replay buffer
