"""PPO on 2 envs with the prototype kNN intrinsic reward added by a VecEnv wrapper (on-policy works too).

Run: ``python examples/intrinsic_reward_ppo.py [--encoder encoder.safetensors]``. Monitor (inside the wrapper) keeps
logging extrinsic episode returns; each step's ``info`` holds ``extrinsic_reward`` and ``intrinsic_reward``.
"""

import argparse

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from sb3_crptpro import PrototypeIntrinsicReward, crptpro_kwargs, load_artifact, make_dmc_vec_env, pretrain_encoder


class IntrinsicLog(BaseCallback):
    """Log the mean intrinsic reward of each rollout to SB3's logger (TensorBoard when configured)."""

    def _on_rollout_start(self) -> None:
        self.values: list[float] = []

    def _on_step(self) -> bool:
        self.values += [info["intrinsic_reward"] for info in self.locals["infos"]]
        return True

    def _on_rollout_end(self) -> None:
        self.logger.record("rollout/intrinsic_reward", float(np.mean(self.values)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--task", default="cartpole_swingup")
    parser.add_argument("--steps", type=int, default=256)
    args = parser.parse_args()
    encoder = args.encoder or pretrain_encoder(["walker_run", "cheetah_run"], "outputs/tiny_encoder",
                                               transitions=200, updates=20, batch_size=32, image_size=32)  # fmt: skip
    size = load_artifact(encoder).image_size
    venv = make_dmc_vec_env(args.task, n_envs=2, seed=0, image_size=size, render="fast", action_repeat=8)
    venv = PrototypeIntrinsicReward(venv, encoder, coef=0.2)
    model = PPO("CnnPolicy", venv, policy_kwargs=crptpro_kwargs(encoder, net_arch=[64]), n_steps=64, batch_size=64,
                seed=0, verbose=1)  # fmt: skip
    callback = IntrinsicLog()
    model.learn(args.steps, callback=callback)
    print(f"PPO on {args.task}: last rollout mean intrinsic reward {np.mean(callback.values):.4f}")
