"""An encoder pretrained on some domains, used on a domain it never saw: prototype coverage, state probe, SAC.

Run: ``python examples/unseen_domain.py [--encoder encoder.safetensors]``. Compares the pretrained encoder with a
randomly initialised one on the unseen domain's frames (state-probe R^2 on held-out episodes).
"""

import argparse

import torch

from sb3_crptpro import (
    AugmentedSAC,
    DomainDataset,
    collect,
    crptpro_kwargs,
    load_artifact,
    make_dmc_env,
    pretrain_encoder,
)
from sb3_crptpro.common.networks import Encoder
from sb3_crptpro.pretraining.diagnostics import prototype_scores, prototype_usage
from sb3_crptpro.pretraining.probe import probe_domain

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--task", default="cartpole_swingup", help="a domain not in the encoder's pretraining set")
    parser.add_argument("--transitions", type=int, default=400)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    encoder = args.encoder or pretrain_encoder(["walker_run", "cheetah_run"], "outputs/tiny_encoder",
                                               transitions=200, updates=20, batch_size=32, image_size=32)  # fmt: skip
    artifact = load_artifact(encoder)
    if args.task in artifact.metadata["tasks"]:
        raise SystemExit(f"{args.task} was seen in pretraining; pick another task")
    env_kwargs = {"image_size": artifact.image_size, "render": "fast", "action_repeat": 8}
    [folder] = collect([args.task], "outputs/unseen_data", transitions_per_domain=args.transitions, seed=1,
                       progress=False, **env_kwargs)  # fmt: skip
    data = DomainDataset(folder)
    obs, _, _ = data.transitions(torch.arange(len(data)).numpy())
    scores = prototype_scores(artifact.encoder, artifact.projector, artifact.prototypes.weight, torch.from_numpy(obs))
    usage = prototype_usage(scores, artifact.metadata["num_protos"])
    used, entropy = usage["n_used"], usage["usage_entropy"]
    print(f"{args.task}: {used:.0f} prototypes used by {len(obs)} frames, usage entropy {entropy:.2f} nats")
    torch.manual_seed(0)
    random_init = Encoder(artifact.obs_shape)
    for name, net in (("pretrained", artifact.encoder), ("random init", random_init)):
        print(f"state-probe R^2 on held-out episodes, {name}: {probe_domain(net, data):.3f}")
    env = make_dmc_env(args.task, seed=0, **env_kwargs)
    model = AugmentedSAC("CnnPolicy", env, policy_kwargs=crptpro_kwargs(artifact, net_arch=[64, 64]),
                         learning_starts=100, batch_size=32, buffer_size=5_000, seed=0)  # fmt: skip
    model.learn(args.steps)
    print(f"trained AugmentedSAC on the unseen domain {args.task} for {args.steps} steps")
