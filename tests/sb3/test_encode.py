"""VecEncodeObservation (embedding mode, issue 13) on real DMC envs: one encoder pass per step, terminal observations,
values against the extractor, SB3 SAC/TQC/PPO, intrinsic reward without a second pass, pixel round trip."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sb3_contrib import TQC
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from sb3_crptpro import (
    CRPTproExtractor,
    FrozenEncoding,
    PixelSpaceError,
    PrototypeIntrinsicReward,
    VecEncodeObservation,
    load_artifact,
    make_dmc_vec_env,
)

ENV = {"image_size": 24, "render": "fast", "action_repeat": 50}  # 20-step episodes


class _PixelSpy(VecEnvWrapper):
    """Records the pixel observations (and terminal observations) the wrapper above receives."""

    def __init__(self, venv) -> None:
        super().__init__(venv)
        self.seen: list[np.ndarray] = []

    def reset(self):
        obs = self.venv.reset()
        self.seen.append(obs.copy())
        return obs

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.seen.append(obs.copy())
        self.terminal = {i: info["terminal_observation"].copy() for i, info in enumerate(infos)
                         if "terminal_observation" in info}  # fmt: skip
        return obs, rewards, dones, infos


def _encoded(artifact: Path, n_envs: int = 2, **kwargs) -> tuple[VecEncodeObservation, _PixelSpy]:
    spy = _PixelSpy(make_dmc_vec_env("cartpole_swingup", n_envs, seed=0, **ENV))
    return VecEncodeObservation(spy, artifact, **kwargs), spy


def test_one_encoder_pass_per_step_and_terminal_observations(tiny_artifact: Path) -> None:
    venv, spy = _encoded(tiny_artifact)
    art = load_artifact(tiny_artifact)
    obs = venv.reset()
    assert obs.shape == (2, 128) and obs.dtype == np.float32 and venv.observation_space.shape == (128,)
    ends = 0
    for step in range(1, 46):
        obs, _, dones, infos = venv.step(np.zeros((2, 1), dtype=np.float32))
        assert venv.encoding.calls == step + 1  # one pass per step (plus the reset), ends included
        ends += int(dones.sum())
        for i, done in enumerate(dones):
            if done:
                term = infos[i]["terminal_observation"]
                assert term.shape == (128,) and term.dtype == np.float32
                with torch.no_grad():
                    z = art.projector(art.encoder(torch.as_tensor(spy.terminal[i][None])))
                expected = (F.normalize(z, dim=1) * math.sqrt(128)).numpy()[0]
                np.testing.assert_allclose(term, expected, rtol=1e-4, atol=1e-4)
                assert not np.allclose(term, obs[i])  # the new episode's first observation is elsewhere
    assert ends == 4  # two 20-step episodes per env
    assert venv.encoding.frames == 2 * 46 + ends  # each observation encoded exactly once
    np.testing.assert_allclose(np.linalg.norm(obs, axis=1), math.sqrt(128), rtol=1e-5)
    venv.close()


def test_features_match_the_extractor(tiny_artifact: Path) -> None:
    venv, spy = _encoded(tiny_artifact, output="features")
    obs = venv.reset()
    extractor = CRPTproExtractor(spy.observation_space, tiny_artifact)
    expected = extractor.conv_features(torch.as_tensor(spy.seen[-1]).float()).numpy()
    assert obs.shape == (2, extractor.encoder.repr_dim)
    np.testing.assert_allclose(obs, expected, rtol=1e-4, atol=1e-5)
    raw, _ = _encoded(tiny_artifact, normalize=False)
    art = load_artifact(tiny_artifact)
    with torch.no_grad():
        np.testing.assert_allclose(raw.reset(), art.projector(torch.as_tensor(expected)).numpy(), rtol=1e-4, atol=1e-4)
    venv.close()
    raw.close()


@pytest.mark.parametrize("algo", [SAC, TQC, PPO])
def test_stock_algorithms_train_on_embeddings(tiny_artifact: Path, algo, tmp_path: Path) -> None:
    venv = PrototypeIntrinsicReward(VecEncodeObservation(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV),
                                                         tiny_artifact), coef=0.5)  # fmt: skip
    kwargs = {"n_steps": 16, "batch_size": 16} if algo is PPO else {"learning_starts": 20, "batch_size": 8}
    model = algo("MlpPolicy", venv, seed=0, policy_kwargs={"net_arch": [16]}, **kwargs)
    model.learn(64)
    encoding = venv.venv.encoding
    assert encoding.frames >= 64 and encoding.frames == 64 + 2 + 2 * (64 // 40)  # steps + reset + episode ends
    model.save(tmp_path / "agent.zip")
    loaded = algo.load(tmp_path / "agent.zip", env=venv)
    obs = venv.reset()
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_intrinsic_reward_from_embeddings_equals_pixel_mode(tiny_artifact: Path) -> None:
    """Same trajectory, same queue: the reward computed from the encoded vectors equals the pixel wrapper's, and
    the embedding stack runs the encoder once per step in total."""
    kw = {"coef": 1.0, "queue_size": 32, "update_every": 2, "window": 8}
    pixel = PrototypeIntrinsicReward(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV), tiny_artifact, **kw)
    encoded = VecEncodeObservation(make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV), tiny_artifact)
    embedding = PrototypeIntrinsicReward(encoded, **kw)
    assert not hasattr(embedding, "encoder")
    pixel.reset()
    embedding.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 2, 1)).astype(np.float32)
    for step, action in enumerate(actions, start=1):
        _, r_pix, _, _ = pixel.step(action)
        _, r_emb, _, info_emb = embedding.step(action)
        np.testing.assert_allclose(r_emb, r_pix, rtol=1e-4, atol=1e-5)
        assert encoded.encoding.calls == step + 1
    assert info_emb[0]["intrinsic_reward"] > 0
    pixel.close()
    embedding.close()


def test_refuses_wrong_inputs_and_stacks(tiny_artifact: Path) -> None:
    venv = make_dmc_vec_env("cartpole_swingup", 1, seed=0, **{**ENV, "image_size": 32})
    with pytest.raises(PixelSpaceError, match=r"VecEncodeObservation needs raw channel-first pixels.*24x24"):
        VecEncodeObservation(venv, tiny_artifact)
    with pytest.raises(ValueError, match="output must be one of"):
        FrozenEncoding(tiny_artifact, output="logits")
    pixels = make_dmc_vec_env("cartpole_swingup", 1, seed=0, **ENV)
    normalised = VecNormalize(VecEncodeObservation(pixels, tiny_artifact), norm_reward=False)
    with pytest.raises(ValueError, match="VecNormalize is below PrototypeIntrinsicReward"):
        PrototypeIntrinsicReward(normalised)
    other = shutil.copy(tiny_artifact, Path(tiny_artifact).with_name("other.safetensors"))
    with pytest.raises(ValueError, match="artifact is required"):
        PrototypeIntrinsicReward(pixels)
    encoded = VecEncodeObservation(pixels, tiny_artifact)
    PrototypeIntrinsicReward(encoded, other)  # same weights: accepted
    venv.close()
    pixels.close()


def test_frozen_encoding_takes_one_observation_and_refuses_bad_pixels_in_one_line(tiny_artifact: Path) -> None:
    """What users pass to FrozenEncoding directly: one unbatched stack (SB3's predict takes it), a channel-last
    batch and frames scaled to [0, 1] (which used to give other vectors without an error)."""
    venv = make_dmc_vec_env("cartpole_swingup", 2, seed=0, **ENV)
    batch = venv.reset()  # uint8 [2, 9, 24, 24]
    venv.close()
    encode = FrozenEncoding(tiny_artifact)
    vectors = encode(batch)
    one = encode(batch[1])  # one observation, no batch axis -> one vector
    assert one.shape == vectors.shape[1:] and np.allclose(one, vectors[1], atol=1e-5)
    bad = {
        "it is channel-last; pass np.transpose(pixels, (0, 3, 1, 2))": batch.transpose(0, 2, 3, 1),
        "it is channel-last; pass np.transpose(pixels, (2, 0, 1))": batch[0].transpose(1, 2, 0),
        "(frames * 255).round().astype(np.uint8): these look scaled to [0, 1]": batch.astype(np.float32) / 255,
        "(frames.astype(np.uint8), if they hold whole values 0-255)": batch.astype(np.float32),
        "uint8 (frames.astype(np.uint8)": batch.astype(np.int64),
        "build the frames with the artifact's image_size": batch[:, :, :20],
    }
    for message, pixels in bad.items():
        with pytest.raises(PixelSpaceError, match=re.escape(message)) as error:
            encode(pixels)
        assert "\n" not in str(error.value) and "takes uint8 pixels [B, 9, 24, 24]" in str(error.value)
    assert encode.frames == 3  # the refused inputs never reached the encoder
