"""sb3-contrib's TQC with a frozen CRPTpro encoder, random-shift augmentation and the frame-lean replay buffer.

Run: ``python examples/tqc_with_encoder.py [--encoder encoder.safetensors]`` (without ``--encoder`` a tiny encoder is
pretrained first).
"""

import argparse

from stable_baselines3.common.evaluation import evaluate_policy

from sb3_crptpro import AugmentedTQC, crptpro_kwargs, load_artifact, make_dmc_env, pretrain_encoder

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--task", default="walker_walk")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    encoder = args.encoder or pretrain_encoder(["walker_run", "cheetah_run"], "outputs/tiny_encoder",
                                               transitions=200, updates=20, batch_size=32, image_size=32)  # fmt: skip
    size = load_artifact(encoder).image_size  # the env must render at the encoder's image size
    env = make_dmc_env(args.task, image_size=size, render="fast", seed=0)
    model = AugmentedTQC("CnnPolicy", env, policy_kwargs=crptpro_kwargs(encoder, net_arch=[64, 64]),
                         learning_starts=100, batch_size=32, buffer_size=5_000, seed=0)  # fmt: skip
    model.learn(args.steps)
    mean, std = evaluate_policy(model, env, n_eval_episodes=1)
    print(f"TQC on {args.task}: return {mean:.1f} +- {std:.1f}; "
          f"{model.replay_buffer.frames_per_transition:.3f} frames stored per transition")  # fmt: skip
