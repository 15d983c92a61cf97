"""Collect a tiny cross-domain dataset, pretrain a CRPTpro encoder for a few updates, and use it in SB3's SAC.

Run: ``python examples/pretrain_tiny.py`` (about a minute on 2 CPU cores; sizes are tiny on purpose).
"""

from pathlib import Path

from stable_baselines3 import SAC

from sb3_crptpro import CrossDomainDataset, PretrainConfig, Pretrainer, collect, crptpro_kwargs, make_dmc_env


def main() -> None:
    out = Path("outputs/pretrain_tiny")
    collect(["cheetah_run", "walker_run"], out / "data", transitions_per_domain=200, image_size=32, render="fast")
    config = PretrainConfig(updates=20, batch_size=32, log_every=10, checkpoint_every=0)
    trainer = Pretrainer(config, CrossDomainDataset(out / "data"), out / "pretrain")
    artifact = trainer.save(out / "encoder.safetensors", trainer.fit())

    env = make_dmc_env("reacher_easy", image_size=32, render="fast", seed=0)  # a domain not seen in pretraining
    model = SAC("CnnPolicy", env, policy_kwargs=crptpro_kwargs(artifact, net_arch=[64, 64]), learning_starts=100,
                batch_size=32, buffer_size=5_000, verbose=1)  # fmt: skip
    model.learn(200)
    print("trained SAC on reacher_easy with the frozen encoder from", artifact)


if __name__ == "__main__":  # collect() starts worker processes: keep the guard
    main()
