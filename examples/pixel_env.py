"""Build a DMC pixel env, step it with random actions and print what an SB3 CnnPolicy would see.

Run: ``python examples/pixel_env.py``.
"""

from sb3_crptpro import make_dmc_env

env = make_dmc_env("cheetah_run", render="fast", seed=0)
obs, info = env.reset()
print("observation", obs.shape, obs.dtype, "| state", info["state"].shape, "| preset", env.unwrapped.render_preset)
total = 0.0
for _ in range(50):
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    total += reward
print(f"return over 50 random steps: {total:.3f}")
env.close()
