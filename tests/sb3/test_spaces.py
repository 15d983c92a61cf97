"""Issue 14: pixel-space checks shared by every entry that takes pixels, wrapper stacks that would drop the
intrinsic reward, and n-step returns refused clearly (real DMC envs, real SB3)."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from sb3_crptpro import (
    AugmentedFrameStackReplayBuffer,
    AugmentedReplayBuffer,
    AugmentedSAC,
    CRPTproExtractor,
    FrameStackReplayBuffer,
    PixelSpaceError,
    PrototypeIntrinsicReward,
    VecEncodeObservation,
    crptpro_kwargs,
    make_dmc_vec_env,
)

ENV = {"image_size": 24, "render": "fast", "action_repeat": 50}  # 20-step episodes


class _FloatPixels(VecEnvWrapper):
    """A wrapper that rescales pixels to [0, 1] floats (what many image pipelines do)."""

    def __init__(self, venv) -> None:
        space = gym.spaces.Box(0.0, 1.0, venv.observation_space.shape, np.float32)
        super().__init__(venv, observation_space=space)

    def reset(self):
        return self.venv.reset().astype(np.float32) / 255

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs.astype(np.float32) / 255, rewards, dones, infos


def _venv():
    return make_dmc_vec_env("cartpole_swingup", 1, seed=0, **ENV)


def test_same_mistake_same_words_everywhere(tiny_artifact: Path) -> None:
    floats = _FloatPixels(_venv())
    entries = {
        "CRPTproExtractor": lambda: CRPTproExtractor(floats.observation_space, tiny_artifact),
        "PrototypeIntrinsicReward": lambda: PrototypeIntrinsicReward(floats, tiny_artifact),
        "VecEncodeObservation": lambda: VecEncodeObservation(floats, tiny_artifact),
        "FrameStackReplayBuffer": lambda: FrameStackReplayBuffer(10, floats.observation_space, floats.action_space),
    }
    messages = {}
    for who, build in entries.items():
        with pytest.raises(PixelSpaceError) as error:
            build()
        message = str(error.value)
        assert message.startswith(f"{who} needs raw channel-first pixels")
        assert "got Box(0, 1, (9, 24, 24), float32)" in message and "VecNormalize with norm_obs=True" in message
        messages[who] = message.split(", got ", 1)[1]
    assert len(set(messages.values())) == 1  # everything after "who needs ..." is identical
    floats.close()


def test_vecnormalize_below_the_reward_is_refused_with_the_order_that_works(tiny_artifact: Path) -> None:
    for norm_obs in (False, True):  # failures 1 (reward silently lost) and 2 (normalised floats embedded)
        below = VecNormalize(_venv(), norm_obs=norm_obs, norm_reward=True)
        with pytest.raises(ValueError, match=r"VecNormalize\(PrototypeIntrinsicReward\(venv, artifact\), norm_obs"):
            PrototypeIntrinsicReward(below, tiny_artifact)
        below.close()
    # the order that works: the replay buffer stores extrinsic + coef * intrinsic
    recorder = _Rewards(PrototypeIntrinsicReward(_venv(), tiny_artifact, coef=10.0))
    venv = VecNormalize(recorder, norm_obs=False)
    model = AugmentedSAC("CnnPolicy", venv, seed=0, learning_starts=100, batch_size=8, buffer_size=200,
                         policy_kwargs=crptpro_kwargs(tiny_artifact, net_arch=[16]))  # fmt: skip
    model.learn(60)
    stored = model.replay_buffer.rewards[: model.replay_buffer.size(), 0]
    np.testing.assert_allclose(stored, np.array(recorder.totals), rtol=1e-6)
    assert np.any(np.abs(np.array(recorder.totals) - np.array(recorder.extrinsic)) > 1e-3)  # intrinsic part kept
    venv.close()


class _Rewards(VecEnvWrapper):
    """Records the rewards (and the extrinsic part) the wrapper below returns."""

    def __init__(self, venv) -> None:
        super().__init__(venv)
        self.totals: list[float] = []
        self.extrinsic: list[float] = []

    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.totals.append(float(rewards[0]))
        self.extrinsic.append(infos[0]["extrinsic_reward"])
        return obs, rewards, dones, infos


def test_n_step_returns_on_pixels_and_in_embedding_mode(tiny_artifact: Path) -> None:
    venv = _venv()
    kwargs = {"buffer_size": 200, "learning_starts": 30, "batch_size": 8, "seed": 0,
              "policy_kwargs": crptpro_kwargs(tiny_artifact, net_arch=[16])}  # fmt: skip
    for extra in ({"n_steps": 5}, {"replay_buffer_kwargs": {"n_steps": 5, "gamma": 0.9}}):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "n_steps is ignored" warning from SB3: the frame-lean buffer has it
            model = AugmentedSAC("CnnPolicy", venv, gamma=0.9, **kwargs, **extra)
        buffer = model.replay_buffer
        assert isinstance(buffer, AugmentedFrameStackReplayBuffer) and (buffer.n_steps, buffer.gamma) == (5, 0.9)
    model.learn(50)
    assert model.replay_buffer.sample(4).discounts is not None
    with pytest.raises(ValueError, match="AugmentedReplayBuffer samples 1-step returns only"):
        AugmentedSAC("CnnPolicy", venv, n_steps=3, replay_buffer_class=AugmentedReplayBuffer, **kwargs)
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
            AugmentedSAC("CnnPolicy", venv, n_steps=bad, **kwargs)
    with pytest.raises(ValueError, match="disagree"):
        AugmentedSAC("CnnPolicy", venv, n_steps=5, replay_buffer_kwargs={"n_steps": 2}, **kwargs)
    encoded = VecEncodeObservation(venv, tiny_artifact)
    model = SAC("MlpPolicy", encoded, n_steps=3, buffer_size=200, learning_starts=30, batch_size=8, seed=0)
    assert isinstance(model.replay_buffer, NStepReplayBuffer)
    model.learn(50)
    encoded.close()
