"""Quickstart: random data from two domains -> CRPTpro encoder -> SAC with the frozen encoder (about a minute).

Run: ``python examples/quickstart.py``. Scale ``transitions``/``updates``/``learn`` up for real use.
"""

from sb3_crptpro import AugmentedSAC, crptpro_kwargs, make_dmc_env, pretrain_encoder

if __name__ == "__main__":  # collection starts worker processes: keep the guard
    encoder = pretrain_encoder(["cheetah_run", "walker_run"], "outputs/quickstart", transitions=200, updates=20,
                               batch_size=32, image_size=32)  # fmt: skip
    env = make_dmc_env("cheetah_run", image_size=32, render="fast", seed=0)
    model = AugmentedSAC("CnnPolicy", env, policy_kwargs=crptpro_kwargs(encoder, net_arch=[64, 64]),
                         learning_starts=100, batch_size=32, buffer_size=5_000, seed=0)  # fmt: skip
    model.learn(300)
    model.save("outputs/quickstart/sac_cheetah_run")
    print("saved outputs/quickstart/sac_cheetah_run.zip; the encoder weights are inside it")
