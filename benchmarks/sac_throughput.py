"""Gradient steps/s of SAC variants on a 9x84x84 DMC env, all measured in this process at the same batch size.

(a) AugmentedSAC + frozen CRPTproExtractor (features computed once per batch), also with a bf16 frozen trunk;
(b) stock SB3 SAC with the same ``crptpro_kwargs`` (frozen trunk run by actor, critic and target separately);
(c) stock SB3 ``SAC("CnnPolicy")`` (NatureCNN trained end to end);
(d) AugmentedSAC with the CRPTpro trunk trainable (SB3's separate actor and critic extractors: two trunks, both
    trained);
(e) :class:`~sb3_crptpro.sb3.drq.DrQSAC` (DrQ's one trunk, trained by the critic; actor every 2nd update as in DrQ).
Encoder weights are random (speed does not depend on them). Also prints replay-buffer bytes per transition of
SB3's ReplayBuffer and our FrameStackReplayBuffer on the same transitions.

Usage: ``python benchmarks/sac_throughput.py [--batch-size 128] [--steps 5] [--image-size 84]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_crptpro import (
    AugmentedSAC,
    DrQSAC,
    FrameStackReplayBuffer,
    SharedEncoderSACPolicy,
    crptpro_kwargs,
    drq_kwargs,
    make_dmc_env,
    save_artifact,
)
from sb3_crptpro.common.networks import Encoder, Projector, Prototypes


def steps_per_second(model, batch_size: int, steps: int) -> float:
    model.learn(batch_size + 10)  # fill the buffer (learning_starts = batch_size + 10: no update yet)
    model.train(gradient_steps=1, batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    model.train(gradient_steps=steps, batch_size=batch_size)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=84)
    args = parser.parse_args()
    size = args.image_size
    common = {"learning_starts": args.batch_size + 10, "batch_size": args.batch_size, "buffer_size": 2000, "seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = Encoder((9, size, size))
        path = save_artifact(Path(tmp) / "random.safetensors", encoder, Projector(encoder.repr_dim), Prototypes(),
                             config={}, stats={}, render="fast")  # fmt: skip
        trainable = {"freeze": False}
        runs = {
            "(a) AugmentedSAC + frozen CRPTpro": (AugmentedSAC, "CnnPolicy", crptpro_kwargs(path)),
            "(a') same, bf16 frozen trunk": (
                AugmentedSAC,
                "CnnPolicy",
                crptpro_kwargs(path, features_extractor_kwargs={"encoder_dtype": torch.bfloat16}),
            ),
            "(b) SAC + crptpro_kwargs": (SAC, "CnnPolicy", crptpro_kwargs(path)),
            "(c) SAC CnnPolicy (NatureCNN)": (SAC, "CnnPolicy", None),
            "(d) AugmentedSAC, trainable trunks": (
                AugmentedSAC,
                "CnnPolicy",
                crptpro_kwargs(path, features_extractor_kwargs=trainable),
            ),
            "(e) DrQSAC, one critic-trained trunk": (DrQSAC, SharedEncoderSACPolicy, drq_kwargs(path)),
        }
        results = {}
        print(f"batch {args.batch_size}, {size} px, torch threads {torch.get_num_threads()}")
        for name, (algo, policy, policy_kwargs) in runs.items():
            env = make_dmc_env("cheetah_run", render="fast", seed=0, image_size=size)
            model = algo(policy, env, policy_kwargs=policy_kwargs, **common)
            results[name] = steps_per_second(model, args.batch_size, args.steps)
            print(f"{name:<36} {results[name]:6.2f} steps/s")
        a, a16, b, c, d, e = results.values()
        print(f"(a)/(b) = {a / b:.2f}   (a)/(c) = {a / c:.2f}   (a')/(c) = {a16 / c:.2f}   (e)/(d) = {e / d:.2f}")
        print_buffer_bytes()


def print_buffer_bytes(transitions: int = 2000) -> None:
    """Bytes per stored transition of SB3's ReplayBuffer and ours, filled by the same random-policy episodes."""
    env = make_dmc_env("cheetah_run", render="fast", seed=0, action_repeat=8)  # 125-step episodes
    ours = FrameStackReplayBuffer(transitions, env.observation_space, env.action_space)
    sb3 = ReplayBuffer(transitions, env.observation_space, env.action_space)
    obs, _ = env.reset(seed=0)
    for _ in range(transitions):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        for buffer in (ours, sb3):
            buffer.add(obs[None], next_obs[None], action[None], [reward], [done], [{"TimeLimit.truncated": truncated}])
        obs = env.reset()[0] if done else next_obs
    frame = int(np.prod(env.observation_space.shape)) // 3
    sb3_bytes = sb3.observations.nbytes + sb3.next_observations.nbytes
    ours_bytes = ours.frames.nbytes + ours.obs_frames.nbytes + ours.next_frames.nbytes
    print(f"replay bytes per transition (pixels + frame indices), {transitions} transitions, 125-step episodes:")
    print(f"  SB3 ReplayBuffer          {sb3_bytes / transitions:9.0f} ({2 * 3} frames)")
    allocated, written = ours.frames.shape[0] / transitions, ours.frames_per_transition
    print(f"  FrameStackReplayBuffer    {ours_bytes / transitions:9.0f} (frames per transition: allocated "
          f"{allocated:.3f}, written {written:.3f}; one frame = {frame} B)")  # fmt: skip
    print(f"  ratio                     {sb3_bytes / ours_bytes:9.2f}x less")


if __name__ == "__main__":
    main()
