"""Same-machine pixel anchors: DrQ-style SAC with a trainable, shared, critic-trained conv trunk on pixels.

What pixels give in this pipeline, as a bound for the frozen encoders of ``six_task.py``. Configs (``ANCHORS``):
  - ``DrQ, 64 px fast``: :class:`~sb3_crptpro.sb3.drq.DrQSAC` from a random init, frames as embedding mode renders
    them for the shipped encoder (64 px, ``render="fast"``, frame stack 3);
  - ``DrQ, 84 px paper``: the same at DrQ's own frames (84 px, dm_control's default scene);
  - ``DrQ fine-tune, 64 px fast``: the same as the first, starting from the shipped encoder's conv weights;
  - ``DrQ last layer, <encoder>``: partial fine-tuning. The encoder's conv layers but the last are frozen and run
    once per frame, in the env wrapper (:class:`VecEarlyMaps`); the replay buffer stores their maps (float16,
    32 x 27 x 27 at 64 px) and shifts sampled maps by up to ``--map-pad`` cells (replicate padding: a feature-space
    shift, as ATC does; one cell is 2 px of the frame, so the default 2 is DrQ's 4 px); the last conv layer,
    started from the encoder's, is the shared trunk that the critic trains (:class:`LastLayerExtractor`).
Each run: the task's action repeat (``six_task.TASKS``), 100,000 env steps, 10 deterministic evaluation episodes
every 10,000 env steps (``six_task.EvalCurve``), batch 128 (DrQ: 512), one update per agent step, no intrinsic
reward.

Resumable inside a run: model and replay buffer are saved every ``--checkpoint-every`` agent steps to
``<out>/work/<run>/``; a re-run continues from there (the episode in progress is restarted), and a finished run
leaves one JSON in ``<out>/runs/`` (rows as ``six_task.py`` writes them, so its report can read them).

Usage::

    python benchmarks/pixel_anchor.py --out benchmarks/results/pixel_anchor --anchors "DrQ, 64 px fast" \\
        --tasks cartpole_swingup --seeds 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from sb3_crptpro.common.artifact import PretrainedArtifact, load_artifact
from sb3_crptpro.common.networks import Encoder, orthogonal_init
from sb3_crptpro.sb3.encode import FrozenEncoding, VecEncodeObservation
from sb3_crptpro.sb3.extractor import CRPTproExtractor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from six_task import TASKS, EvalCurve, curve_row


@dataclass(frozen=True)
class Anchor:
    """One anchor: frames (``image_size``, ``render``), the start of its conv trunk (a shipped encoder's name, or
    ``None`` for a random init) and what it trains: ``"all"`` conv layers (DrQ) or the ``"last"`` one only."""

    image_size: int
    render: str
    start: str | None
    trained: str = "all"


ANCHORS: dict[str, Anchor] = {
    "DrQ, 64 px fast": Anchor(64, "fast", None),
    "DrQ, 84 px paper": Anchor(84, "paper", None),
    "DrQ fine-tune, 64 px fast": Anchor(64, "fast", "dmc-64px"),
    "DrQ fine-tune, dmc-64px-invdyn": Anchor(64, "fast", "dmc-64px-invdyn"),
    "DrQ last layer, dmc-64px": Anchor(64, "fast", "dmc-64px", "last"),
    "DrQ last layer, dmc-64px-invdyn": Anchor(64, "fast", "dmc-64px-invdyn", "last"),
}


class EarlyLayers(nn.Module):
    """An encoder's conv layers but the last (frozen): ``uint8`` pixels ``[B, C, H, W]`` -> float16 maps ``[B, 32,
    h, w]`` (``h = (H - 1) // 2 - 2 * (n_layers - 2)``: 27 at 64 px, 4 layers)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.convs = encoder.convs[:-2]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.convs(pixels.float() / 255.0).half()


class LastLayer(nn.Module):
    """An encoder's last conv layer (trainable): maps ``[B, 32, h, w]`` (any float dtype) -> features ``[B, 32 (h -
    2) (w - 2)]`` float32, what :class:`~sb3_crptpro.common.networks.Encoder` returns for the frames of the maps.

    :param map_shape: ``(channels, h, w)`` of the maps
    :param conv_state: the ``Conv2d`` state dict (``weight``, ``bias``) it starts from
    """

    def __init__(self, map_shape: tuple[int, int, int], conv_state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        channels, h, w = map_shape
        self.conv = nn.Conv2d(channels, conv_state["weight"].shape[0], 3)
        self.conv.load_state_dict(conv_state)
        self.repr_dim = self.conv.out_channels * (h - 2) * (w - 2)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(maps.float())).flatten(1)


class LastLayerExtractor(CRPTproExtractor):
    """:class:`~sb3_crptpro.sb3.extractor.CRPTproExtractor` on stored maps: ``encoder`` is a trainable
    :class:`LastLayer`, then DrQ's ``Linear -> LayerNorm -> tanh`` trunk; :class:`~sb3_crptpro.sb3.drq.DrQSAC`
    shares ``encoder`` between actor and critic and trains it with the critic's loss.

    :param observation_space: ``Box`` of the maps ``(32, h, w)``
    :param conv_state: the last conv layer's state dict it starts from
    :param features_dim: trunk width (DrQ 50)
    """

    def __init__(
        self, observation_space: gym.Space, conv_state: dict[str, torch.Tensor], features_dim: int = 50
    ) -> None:
        assert isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 3
        BaseFeaturesExtractor.__init__(self, observation_space, features_dim)  # CRPTproExtractor's takes pixels
        self.freeze, self.encoder_dtype, self.pretrained_metadata = False, None, {}
        self.encoder = LastLayer(tuple(observation_space.shape), conv_state)  # type: ignore[arg-type]
        self.trunk = nn.Sequential(nn.Linear(self.encoder.repr_dim, features_dim), nn.LayerNorm(features_dim),
                                   nn.Tanh())  # fmt: skip
        self.trunk.apply(orthogonal_init)


class VecEarlyMaps(VecEncodeObservation):
    """Each pixel observation replaced, once, by :class:`EarlyLayers`' float16 map of it (``Box(0, inf, (32, h, w),
    float16)``; terminal observations too, as :class:`~sb3_crptpro.sb3.encode.VecEncodeObservation` does)."""

    def __init__(self, venv: VecEnv, artifact: PretrainedArtifact) -> None:
        encoding = FrozenEncoding(artifact, output="features")
        encoding.encoder = EarlyLayers(artifact.encoder).to(memory_format=torch.channels_last)
        super().__init__(venv, encoding)
        with torch.no_grad():
            shape = encoding.encoder(torch.zeros(1, *artifact.obs_shape)).shape[1:]
        self.observation_space = gym.spaces.Box(0.0, np.inf, tuple(shape), np.float16)


def _last_layer_model(env: VecEnv, artifact: PretrainedArtifact, seed: int, args: argparse.Namespace) -> Any:
    """A fresh ``DrQSAC`` that trains ``artifact``'s last conv layer on shifted stored maps."""
    from sb3_crptpro.sb3.drq import DrQSAC
    from sb3_crptpro.sb3.sac import AugmentedReplayBuffer

    last = artifact.encoder.convs[-2]
    state = {k: v.detach().clone() for k, v in last.state_dict().items()}
    kwargs = {"features_extractor_class": LastLayerExtractor, "net_arch": [1024, 1024], "normalize_images": False,
              "features_extractor_kwargs": {"conv_state": state}}  # fmt: skip
    return DrQSAC(env=env, policy_kwargs=kwargs, buffer_size=args.buffer_size or args.env_steps // TASKS[args.task],
                  learning_starts=args.learning_starts, batch_size=args.batch_size, seed=seed, device="cpu",
                  replay_buffer_class=AugmentedReplayBuffer, replay_buffer_kwargs={"augment_pad": args.map_pad},
                  verbose=0)  # fmt: skip


def _bytes_per_transition(buffer: Any) -> float:
    """Replay bytes per stored transition (the frame-lean buffer counts its own; SB3's: its arrays)."""
    nbytes = buffer.nbytes() if hasattr(buffer, "nbytes") else sum(
        a.nbytes for a in vars(buffer).values() if isinstance(a, np.ndarray))  # fmt: skip
    return nbytes / (buffer.buffer_size * buffer.n_envs)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()


class _Checkpoint:
    """Save model, replay buffer and the evaluation curve every ``every`` agent steps (a callback hook)."""

    def __init__(self, folder: Path, every: int) -> None:
        self.folder, self.every = folder, every

    def save(self, model: Any, curve: EvalCurve, elapsed: float) -> None:
        tmp = self.folder / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        model.save(tmp / "model.zip")
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
        state = {"points": curve.points, "eval_seconds": curve.eval_seconds, "next_eval": curve.next_eval,
                 "elapsed": elapsed, "num_timesteps": model.num_timesteps}  # fmt: skip
        (tmp / "state.json").write_text(json.dumps(state))
        for name in ("model.zip", "replay_buffer.pkl", "state.json"):
            (tmp / name).replace(self.folder / name)  # state.json last: it says the other two are complete


def run(name: str, task: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one anchor on one task and seed, resuming from ``<out>/work``; return its row."""
    from stable_baselines3.common.callbacks import BaseCallback

    from sb3_crptpro import make_dmc_vec_env
    from sb3_crptpro.sb3.drq import DrQSAC, drq_kwargs

    anchor = ANCHORS[name]
    action_repeat = TASKS[task]
    total = args.env_steps // action_repeat
    work = Path(args.out) / "work" / f"{_slug(name)}__{task}__{seed}"
    settings = {"image_size": anchor.image_size, "render": anchor.render, "action_repeat": action_repeat,
                "frame_stack": 3}  # fmt: skip
    env = make_dmc_vec_env(task, 1, seed=seed, **settings)
    eval_env = make_dmc_vec_env(task, 1, seed=seed + 10_000, **settings)
    if anchor.trained == "last":
        artifact = load_artifact(anchor.start)
        env, eval_env = VecEarlyMaps(env, artifact), VecEarlyMaps(eval_env, artifact)
    curve = EvalCurve(eval_env, action_repeat, args.eval_every, args.eval_episodes)
    checkpoint = _Checkpoint(work, args.checkpoint_every)
    previous = 0.0
    try:
        if (work / "state.json").is_file():
            state = json.loads((work / "state.json").read_text())
            model = DrQSAC.load(work / "model.zip", env=env, device="cpu")
            model.load_replay_buffer(work / "replay_buffer.pkl")
            curve.points, curve.eval_seconds, curve.next_eval = (
                state["points"],
                state["eval_seconds"],
                state["next_eval"],
            )
            previous = state["elapsed"]
            print(f"[{name} {task} seed {seed}] resuming at {model.num_timesteps:,} agent steps", flush=True)
        elif anchor.trained == "last":
            model = _last_layer_model(env, artifact, seed, argparse.Namespace(**vars(args), task=task))
        else:
            kwargs = drq_kwargs(anchor.start, obs_shape=env.observation_space.shape, seed=seed)
            buffer_size = args.buffer_size or total
            model = DrQSAC(env=env, policy_kwargs=kwargs, buffer_size=buffer_size, learning_starts=args.learning_starts,
                           batch_size=args.batch_size, seed=seed, device="cpu", verbose=0)  # fmt: skip
        start = time.perf_counter()

        class Hook(BaseCallback):
            saved_at = model.num_timesteps

            def _on_rollout_start(self) -> None:
                # SB3 stores a step's transition after _on_step and trains after the rollout: here, at the start of
                # the next rollout, buffer, updates and step count agree (a checkpoint in _on_step misses one of each)
                steps = self.model.num_timesteps
                if steps % args.checkpoint_every == 0 and steps != self.saved_at:
                    checkpoint.save(self.model, curve, previous + time.perf_counter() - start)
                    self.saved_at = steps

            def _on_step(self) -> bool:
                if self.num_timesteps % 500 == 0:
                    print(f"[{name} {task} seed {seed}] {self.num_timesteps * action_repeat:,} env steps, "
                          f"{(time.perf_counter() - start) / 60:.1f} min", flush=True)  # fmt: skip
                return True

        curve.start = start  # EvalCurve's seconds count this session's time only
        model.learn(total - model.num_timesteps, callback=[curve, Hook()], reset_num_timesteps=False)
        total_s = previous + time.perf_counter() - start
        checkpoint.save(model, curve, total_s)  # a finished run can be extended (a larger --env-steps)
        updates = int(model._n_updates)
        bytes_per = _bytes_per_transition(model.replay_buffer)
    finally:
        env.close()
        eval_env.close()
    spec = {"image_size": anchor.image_size, "render": anchor.render, "fine_tune": anchor.start is not None,
            "trained": anchor.trained, "batch_size": args.batch_size}  # fmt: skip
    if anchor.trained == "last":
        spec["map_pad"] = args.map_pad
    return curve_row(name, task, seed, action_repeat, args.env_steps, curve, total_s, updates, bytes_per,
                     anchor.start, spec)  # fmt: skip


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/pixel_anchor")
    parser.add_argument("--anchors", nargs="+", default=["DrQ, 64 px fast"], choices=list(ANCHORS))
    parser.add_argument("--tasks", nargs="+", default=["cartpole_swingup"], choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--env-steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps (default: 10000)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-starts", type=int, default=1000, help="agent steps (default: 1000, DrQ's)")
    parser.add_argument("--buffer-size", type=int, default=0,
                        help="replay transitions (default: 0, the whole run, as DrQ's 100k)")  # fmt: skip
    parser.add_argument("--checkpoint-every", type=int, default=2500, help="agent steps (default: 2500)")
    parser.add_argument("--map-pad", type=int, default=2,
                        help="feature-space shift of the `DrQ last layer` anchors, map cells (default: 2)")  # fmt: skip
    args = parser.parse_args(argv)
    runs = Path(args.out) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/pixel_anchor.py", *argv])
    for name in args.anchors:
        for task in args.tasks:
            for seed in args.seeds:
                path = runs / f"{_slug(name)}__{task}__{seed}.json"
                if path.is_file():
                    continue
                row = run(name, task, seed, args) | {"command": command}
                path.write_text(json.dumps(row, indent=1))
                print(f"{task} seed {seed} {name}: {row['final_return']:.1f} +- {row['final_std']:.1f} "
                      f"(curve mean {row['auc_return']:.1f}), {row['total_s'] / 60:.1f} min", flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
