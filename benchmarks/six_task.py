"""Six-task DMC benchmark (the PlaNet benchmark that SAC-AE, CURL, RAD and DrQ report) at 100k env steps.

Tasks and action repeats as in those papers: finger_spin 2, cartpole_swingup 8, reacher_easy 4, cheetah_run 4,
walker_walk 2, ball_in_cup_catch 4. Every run: 100,000 env steps, 10 deterministic evaluation episodes every 10,000
env steps (on a separately seeded env, extrinsic task return only), its wall time (training, evaluations, total).

Configs (``CONFIGS``; each is an observation, an encoder and a learner, see :class:`Config`):
  - ``state SAC``: SB3 ``SAC`` on the proprioceptive state, the upper anchor (learner ``STATE_LEARNER``);
  - ``embedding``: ``sb3-crptpro train --mode embedding --overlap`` as shipped: ``OverlappedSAC`` on the frozen
    pretrained encoder's 128-d projections (``--encoder``, default the shipped ``dmc-64px-invdyn``),
    worker-encoded frames, the prototype intrinsic reward, the train preset ``embedding``
    (:data:`sb3_crptpro.sb3.presets.TRAIN_PRESETS`: ``LayerNorm`` in the critic);
  - ``embedding, random init``: the same with the encoder before pretraining (same architecture and seed);
  - ``embedding, intrinsic 0``: the same without the prototype intrinsic reward (compared with ``embedding``);
    ``embedding, intrinsic 0.1`` with half its coefficient (likewise);
  - ``embedding, previous encoder``: ``embedding`` with the encoder shipped before it (``--previous-encoder``,
    default ``dmc-64px``: CRPTpro's loss alone); ``embedding`` is compared with it in the study table, and it with
    ``STUDY_BASE``; ``embedding, previous encoder, intrinsic 0`` likewise;
  - ``embedding, plain critic`` (``STUDY_BASE``) and its random-init twin: the learner before the downstream study
    (SB3's ``MlpPolicy``, no ``LayerNorm``), with the previous encoder (the one the study ran with);
  - study variants: ``embedding, plain critic`` with one learner or observation setting changed (update-to-data
    ratio, n-step returns, batch, widths, learning rate, entropy, intrinsic reward, conv features through a
    trainable ``pre_fc`` trunk as in the reference heads, and both together); ``LayerNorm`` in the critic, the
    winner, is ``embedding``.
Published rows (``PUBLISHED``) are cited, never run here, and drawn as markers.

Resumable: one JSON per run in ``<out>/runs/`` (a re-run skips finished runs); each run prints one line as it ends;
``<out>/report.md`` and ``<out>/six_task.png`` (a panel per task: mean learning curves vs env steps, published 100k
scores as markers) are rebuilt from all finished runs.

Usage::

    python benchmarks/six_task.py --encoder dmc-64px-invdyn --random-init enc_random_init.safetensors \\
        --out outputs/six_task --configs "state SAC" embedding "embedding, random init" --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from sb3_crptpro._compat import platform_description
from sb3_crptpro.app.training import policy_class
from sb3_crptpro.common.networks import orthogonal_init
from sb3_crptpro.common.pretrained import DEFAULT_PRETRAINED

#: task -> action repeat (PlaNet benchmark, as in CURL and DrQ)
TASKS: dict[str, int] = {
    "finger_spin": 2,
    "cartpole_swingup": 8,
    "reacher_easy": 4,
    "cheetah_run": 4,
    "walker_walk": 2,
    "ball_in_cup_catch": 4,
}
_ORDER = list(TASKS)

#: published mean scores (not run here). CURL: Srinivas, Laskin, Abbeel, ICML 2020, Table 1 (also its SAC+AE, Dreamer
#: and Pixel SAC rows: a trainable encoder without augmentation); DrQ: Kostrikov, Yarats, Fergus, ICLR 2021, Table 1
#: (its own reruns of the baselines differ from CURL's: the two tables are never mixed in one row). Task order as in
#: ``TASKS``.
PUBLISHED: list[dict[str, Any]] = [
    {"method": "CURL", "source": "CURL (ICML 2020) Table 1", "env_steps": 100_000,
     "scores": [767, 582, 538, 299, 403, 769]},
    {"method": "DrQ", "source": "DrQ (ICLR 2021) Table 1", "env_steps": 100_000,
     "scores": [901, 759, 601, 344, 612, 913]},
    {"method": "SAC+AE", "source": "CURL (ICML 2020) Table 1", "env_steps": 100_000,
     "scores": [740, 311, 274, 267, 394, 391]},
    {"method": "Dreamer", "source": "CURL (ICML 2020) Table 1", "env_steps": 100_000,
     "scores": [341, 326, 314, 235, 277, 246]},
    {"method": "Pixel SAC", "source": "CURL (ICML 2020) Table 1", "env_steps": 100_000,
     "scores": [179, 419, 145, 197, 42, 312]},
    {"method": "state SAC", "source": "CURL (ICML 2020) Table 1", "env_steps": 100_000,
     "scores": [811, 835, 746, 616, 891, 746]},
    {"method": "state SAC", "source": "DrQ (ICLR 2021) Table 1", "env_steps": 100_000,
     "scores": [672, 812, 919, 228, 604, 957]},
    {"method": "CURL", "source": "CURL (ICML 2020) Table 1", "env_steps": 500_000,
     "scores": [926, 841, 929, 518, 902, 959]},
    {"method": "DrQ", "source": "DrQ (ICLR 2021) Table 1", "env_steps": 500_000,
     "scores": [938, 868, 942, 660, 921, 963]},
    {"method": "state SAC", "source": "CURL (ICML 2020) Table 1", "env_steps": 500_000,
     "scores": [923, 848, 923, 795, 948, 974]},
    {"method": "state SAC", "source": "DrQ (ICLR 2021) Table 1", "env_steps": 500_000,
     "scores": [927, 870, 975, 772, 964, 979]},
]  # fmt: skip


def published(method: str, source: str, env_steps: int = 100_000) -> dict[str, float]:
    """``task -> score`` of one published row."""
    for row in PUBLISHED:
        if (row["method"], row["source"], row["env_steps"]) == (method, source, env_steps):
            return dict(zip(_ORDER, row["scores"], strict=True))
    raise KeyError((method, source, env_steps))


@dataclass(frozen=True)
class Config:
    """One benchmark configuration.

    ``observation``: ``state`` (proprioceptive), ``projection`` (the frozen encoder's normalised 128-d projection)
    or ``features`` (its conv features, through a trainable ``Linear -> LayerNorm -> tanh`` trunk of width ``trunk``
    in actor and critic). ``learner``: SB3 SAC keyword arguments plus ``net_arch``. ``intrinsic_coef``: prototype
    kNN intrinsic reward coefficient (0: none). ``action_repeat``: ``None`` for the task's (``TASKS``), else this
    one (state-SAC anchor variants; the env-step budget stays 100k). ``critic_layer_norm``: LayerNorm in the
    critic's hidden layers (:class:`LayerNormCriticPolicy`).
    """

    observation: str
    encoder: str | None  # "pretrained", "previous", "random init" (the artifacts of those flags) or None (state)
    learner: dict[str, Any]
    intrinsic_coef: float = 0.0
    trunk: int = 50
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    action_repeat: int | None = None
    critic_layer_norm: bool = False


def _embedding_learner() -> tuple[dict[str, Any], bool]:
    """The ``embedding`` train preset's algorithm and ``net_arch`` settings, and its ``critic_layer_norm``."""
    from sb3_crptpro.sb3.presets import TRAIN_PRESETS

    learner = dict(TRAIN_PRESETS["embedding"])
    return learner, learner.pop("critic_layer_norm")


#: state SAC, our anchor: SB3 SAC defaults except a 100k buffer (the whole run) and 1,000 random steps
STATE_LEARNER: dict[str, Any] = {"batch_size": 256, "learning_rate": 3e-4, "buffer_size": 100_000, "tau": 0.005,
                                 "learning_starts": 1000, "train_freq": 1, "gradient_steps": 1,
                                 "net_arch": [256, 256]}  # fmt: skip


#: the encoder of ``embedding`` (``--encoder``): the package's default, CRPTpro's loss plus inverse dynamics
DEFAULT_ENCODER = DEFAULT_PRETRAINED
#: the encoder shipped before it (``--previous-encoder``): CRPTpro's loss alone; the downstream study ran with it
PREVIOUS_ENCODER = "dmc-64px"

#: the downstream study's base config: ``embedding`` as it was before the study chose ``LayerNorm`` in the critic
#: (SB3's plain ``MlpPolicy``, the previous encoder); every study variant changes one setting of it, and
#: ``embedding, previous encoder`` is its winner
STUDY_BASE = "embedding, plain critic"

#: configs compared in the study table with another config than ``STUDY_BASE``: the default encoder against the
#: previous one (same learner), and each one's run without the intrinsic reward against it
VARIANT_BASE: dict[str, str] = {
    "embedding": "embedding, previous encoder",
    "embedding, intrinsic 0": "embedding",
    "embedding, intrinsic 0.1": "embedding",
    "embedding, previous encoder, intrinsic 0": "embedding, previous encoder",
}

#: study-table labels of the rows whose names do not say what they compare
STUDY_LABELS: dict[str, str] = {
    "embedding": "embedding (the default encoder against the previous one)",
    "embedding, previous encoder": "embedding, previous encoder (LayerNorm critic: the study's winner, the default)",
}


def configs() -> dict[str, Config]:
    """The benchmark's configs and the downstream study's variants, by name."""
    emb, layer_norm = _embedding_learner()
    shipped = Config("projection", "pretrained", emb, intrinsic_coef=0.2, critic_layer_norm=layer_norm)
    previous = dataclasses.replace(shipped, encoder="previous")
    base = dataclasses.replace(previous, critic_layer_norm=False)  # the study's base: the learner before the study
    out = {
        "state SAC": Config("state", None, STATE_LEARNER),
        "embedding": shipped,
        "embedding, random init": dataclasses.replace(shipped, encoder="random init"),
        "embedding, intrinsic 0": dataclasses.replace(shipped, intrinsic_coef=0.0),
        "embedding, intrinsic 0.1": dataclasses.replace(shipped, intrinsic_coef=0.1),
        "embedding, previous encoder": previous,
        "embedding, previous encoder, intrinsic 0": dataclasses.replace(previous, intrinsic_coef=0.0),
        STUDY_BASE: base,
        f"{STUDY_BASE}, random init": dataclasses.replace(base, encoder="random init"),
    }
    quick = {**emb, "batch_size": 64, "learning_rate": 3e-4, "learning_starts": 250, "buffer_size": 20_000,
             "train_freq": 2, "gradient_steps": 1, "n_steps": 1, "ent_coef": "auto_0.1", "tau": 0.01,
             "target_update_interval": 2, "net_arch": [256, 256]}  # fmt: skip
    variants = {
        "quick preset (0.2.0 default)": {"learner": quick},
        "UTD 0.5": {"learner": {**emb, "train_freq": 2, "gradient_steps": 1}},
        "UTD 1": {"learner": {**emb, "train_freq": 1, "gradient_steps": 1}},
        "UTD 2": {"learner": {**emb, "train_freq": 1, "gradient_steps": 2}},
        "UTD 4": {"learner": {**emb, "train_freq": 1, "gradient_steps": 4}},
        "n-step 1": {"learner": {**emb, "n_steps": 1}},
        "n-step 3": {"learner": {**emb, "n_steps": 3}},
        "batch 256": {"learner": {**emb, "batch_size": 256}},
        "1024x1024": {"learner": {**emb, "net_arch": [1024, 1024]}},
        "lr 1e-3": {"learner": {**emb, "learning_rate": 1e-3}},
        "ent init 1.0": {"learner": {**emb, "ent_coef": "auto_1.0"}},
        "intrinsic 0": {"intrinsic_coef": 0.0},
        "conv features + pre_fc": {"observation": "features"},
        "projection + conv features": {"observation": "features", "extra": {"with_projection": True}},
        "state SAC, quick preset": {"observation": "state", "encoder": None, "learner": quick, "intrinsic_coef": 0.0},
        "state SAC, embedding learner": {"observation": "state", "encoder": None, "intrinsic_coef": 0.0},
    }
    for name, change in variants.items():
        out[name] = dataclasses.replace(base, **change)
    state = out["state SAC"]  # anchor tuning: compared with "state SAC" in the study table
    out["state SAC, action repeat 1"] = dataclasses.replace(state, action_repeat=1)
    out["state SAC, 1024x1024"] = dataclasses.replace(state, learner={**STATE_LEARNER, "net_arch": [1024, 1024]})
    return out


class EvalCurve(BaseCallback):
    """Deterministic evaluation every ``eval_every`` env steps (not at 0); keeps training and evaluation seconds."""

    def __init__(self, eval_env: VecEnv, action_repeat: int, eval_every: int, episodes: int) -> None:
        super().__init__()
        self.eval_env, self.action_repeat, self.eval_every, self.episodes = (
            eval_env,
            action_repeat,
            eval_every,
            episodes,
        )
        self.points: list[dict[str, float]] = []
        self.eval_seconds = 0.0
        self.next_eval = eval_every

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        env_steps = self.num_timesteps * self.action_repeat
        if env_steps >= self.next_eval:
            start = time.perf_counter()
            returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=True,
                                         return_episode_rewards=True)  # fmt: skip
            self.eval_seconds += time.perf_counter() - start
            self.points.append({"env_steps": env_steps, "return": float(np.mean(returns)),
                                "std": float(np.std(returns)),
                                "seconds": time.perf_counter() - self.start})  # fmt: skip
            self.next_eval += self.eval_every
        return True


def _envs(config: Config, task: str, action_repeat: int, seed: int, encoder: Path | None) -> tuple[VecEnv, VecEnv]:
    from sb3_crptpro import PrototypeIntrinsicReward, VecEncodeObservation, load_artifact, make_dmc_vec_env
    from sb3_crptpro.sb3.encode import make_encoded_vec_env

    if config.observation == "state":
        kw = {"observation": "state", "action_repeat": action_repeat}
        return make_dmc_vec_env(task, 1, seed=seed, **kw), make_dmc_vec_env(task, 1, seed=seed + 10_000, **kw)
    assert encoder is not None
    artifact = load_artifact(encoder)
    from sb3_crptpro import env_settings

    settings = env_settings(artifact.metadata, action_repeat)
    train_env = make_encoded_vec_env(task, 1, artifact, seed=seed, output=config.observation, **settings)
    if config.intrinsic_coef > 0:
        train_env = PrototypeIntrinsicReward(train_env, artifact, coef=config.intrinsic_coef)
    eval_env = VecEncodeObservation(make_dmc_vec_env(task, 1, seed=seed + 10_000, **settings), artifact,
                                    output=config.observation)  # fmt: skip
    return train_env, eval_env


class TrunkExtractor(BaseFeaturesExtractor):
    """Trainable ``Linear(D -> features_dim) -> LayerNorm -> tanh`` on precomputed conv features: the reference heads'
    ``pre_fc`` (PAPER.md, "Networks") plus the ``tanh`` of DrQ's trunk. Study variant ``conv features + pre_fc`` only:
    it did not beat the 128-d projection and ran 3x slower (report), so it is not part of the package.

    With ``projection_from`` (an artifact path), the output also holds that artifact's frozen projection of the same
    conv features, normalised as embedding mode's observations (``sqrt(P) * z / ||z||``), first: ``[B, P +
    features_dim]`` float32 (study variant ``projection + conv features``: what the policy sees is both)."""

    def __init__(
        self, observation_space: gym.Space, features_dim: int = 50, projection_from: str | None = None
    ) -> None:
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"TrunkExtractor takes vectors (a 1-D Box), got {observation_space}")
        projector = None
        if projection_from is not None:
            from sb3_crptpro import load_artifact

            projector = load_artifact(projection_from).projector.requires_grad_(False)
        super().__init__(observation_space, features_dim + (projector.linear.out_features if projector else 0))
        self.trunk = nn.Sequential(
            nn.Linear(observation_space.shape[0], features_dim), nn.LayerNorm(features_dim), nn.Tanh()
        )
        self.trunk.apply(orthogonal_init)
        self.projector = projector  # frozen: no gradient, so the optimisers leave it alone

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        trunk = self.trunk(observations)
        if self.projector is None:
            return trunk
        with torch.no_grad():
            z = self.projector(observations)
            z = nn.functional.normalize(z, dim=1) * math.sqrt(z.shape[1])
        return torch.cat([z, trunk], dim=1)


def _policy_kwargs(config: Config, net_arch: list[int], encoder: Path | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"net_arch": net_arch}
    if config.observation == "features":
        extractor: dict[str, Any] = {"features_dim": config.trunk}
        if config.extra.get("with_projection"):
            extractor["projection_from"] = str(encoder)
        kwargs |= {"features_extractor_class": TrunkExtractor, "features_extractor_kwargs": extractor}
    return kwargs


def run(name: str, config: Config, task: str, seed: int, encoder: Path | None, args: argparse.Namespace) -> dict:
    """Train one config on one task and seed for ``args.env_steps`` env steps; return the run's row."""
    from stable_baselines3 import SAC

    from sb3_crptpro.sb3.overlap import OverlappedSAC

    action_repeat = config.action_repeat or TASKS[task]
    learner = dict(config.learner)
    net_arch = learner.pop("net_arch")
    threads = torch.get_num_threads()
    start = time.perf_counter()
    train_env, eval_env = _envs(config, task, action_repeat, seed, encoder)
    algo = SAC if config.observation == "state" else OverlappedSAC
    if algo is OverlappedSAC:  # one core renders and encodes in the worker, the rest update (as `train --overlap`)
        torch.set_num_threads(max(1, threads - 1))
    try:
        policy = policy_class("sac", "embedding", config.critic_layer_norm)  # state configs: the same MLP policy
        kwargs = _policy_kwargs(config, net_arch, encoder)
        model = algo(policy, train_env, policy_kwargs=kwargs, seed=seed, device="cpu", verbose=0, **learner)
        curve = EvalCurve(eval_env, action_repeat, args.eval_every, args.eval_episodes)
        model.learn(args.env_steps // action_repeat, callback=curve)
        total_s = time.perf_counter() - start
        buffer = model.replay_buffer
        arrays = [v for v in vars(buffer).values() if isinstance(v, np.ndarray)]
        bytes_per = sum(a.nbytes for a in arrays) / (buffer.buffer_size * buffer.n_envs)
    finally:
        torch.set_num_threads(threads)
        train_env.close()
        eval_env.close()
    return curve_row(name, task, seed, action_repeat, args.env_steps, curve, total_s, int(model._n_updates),
                     bytes_per, str(encoder) if encoder else None, dataclasses.asdict(config))  # fmt: skip


def curve_row(name: str, task: str, seed: int, action_repeat: int, env_steps: int, curve: EvalCurve, total_s: float,
              gradient_steps: int, bytes_per_transition: float, encoder: str | None,
              spec: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """One finished run's row (the JSON of ``<out>/runs/``): final and mean evaluation return, times, updates."""
    last = curve.points[-1] if curve.points else {"return": math.nan, "std": math.nan}
    return {"config": name, "task": task, "seed": seed, "action_repeat": action_repeat, "env_steps": env_steps,
            "final_return": last["return"], "final_std": last["std"],
            "auc_return": float(np.mean([p["return"] for p in curve.points])) if curve.points else math.nan,
            "total_s": total_s, "eval_s": curve.eval_seconds, "train_s": total_s - curve.eval_seconds,
            "gradient_steps": gradient_steps, "bytes_per_transition": bytes_per_transition, "encoder": encoder,
            "spec": spec, "curve": curve.points, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "platform": platform_description("cpu")}  # fmt: skip


def random_init_artifact(encoder: str | Path, out: Path) -> Path:
    """``encoder``'s networks before its first update (:func:`~sb3_crptpro.pretraining.save_random_init`), written
    once to ``out``."""
    from sb3_crptpro.pretraining.pretrainer import save_random_init

    return out if out.is_file() else save_random_init(encoder, out)


def fmt(row: dict[str, Any]) -> str:
    """One line per finished run."""
    return (f"{row['task']:>17} seed {row['seed']} {row['config']:>30}: {row['final_return']:6.1f} +- "
            f"{row['final_std']:5.1f} at {row['env_steps']:,} env steps (mean of curve {row['auc_return']:6.1f}); "
            f"{row['total_s'] / 60:4.1f} min ({row['eval_s'] / 60:.1f} of it evaluating), {row['gradient_steps']:,} "
            f"gradient steps, {row['bytes_per_transition']:,.0f} B/transition")  # fmt: skip


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return float(np.mean([r[key] for r in rows])) if rows else math.nan


def summary(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """``(config, task) -> {mean, std, n, minutes}`` of final returns over seeds."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key in dict.fromkeys((r["config"], r["task"]) for r in rows):
        rs = [r for r in rows if (r["config"], r["task"]) == key]
        finals = np.array([r["final_return"] for r in rs])
        out[key] = {"mean": float(finals.mean()), "std": float(finals.std()), "n": len(rs),
                    "minutes": _mean(rs, "total_s") / 60, "seeds": sorted(r["seed"] for r in rs)}  # fmt: skip
    return out


def verdict(rows: list[dict[str, Any]]) -> str:
    """One line: where embedding mode with the pretrained encoder stands against our state SAC and CURL."""
    s = summary(rows)
    curl = published("CURL", "CURL (ICML 2020) Table 1")
    tasks = [t for t in _ORDER if ("embedding", t) in s]
    if not tasks:
        return "embedding mode not run yet"
    above = [t for t in tasks if s[("embedding", t)]["mean"] >= curl[t]]
    ratios = [s[("embedding", t)]["mean"] / s[("state SAC", t)]["mean"] for t in tasks if ("state SAC", t) in s]
    ratio = f"; median {np.median(ratios):.0%} of our state SAC" if ratios else ""
    mean = six_task_mean({t: s[("embedding", t)]["mean"] for t in tasks})
    if not math.isnan(mean):
        ratio += (
            f"; six-task mean {mean:.0f} (published: SAC+AE "
            f"{six_task_mean(published('SAC+AE', 'CURL (ICML 2020) Table 1')):.0f}, CURL {six_task_mean(curl):.0f})"
        )
    return f"embedding mode, pretrained: at or above CURL on {len(above)} of {len(tasks)} tasks run{ratio}"


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, counted on the tasks that have the rows they need."""
    s = summary(rows)

    def get(config: str, task: str) -> float:
        return s.get((config, task), {}).get("mean", math.nan)

    lo = {t: min(published("state SAC", src)[t] for src in ("CURL (ICML 2020) Table 1", "DrQ (ICLR 2021) Table 1"))
          for t in _ORDER}  # fmt: skip
    curl = published("CURL", "CURL (ICML 2020) Table 1")
    lines = []
    checks = [  # (target, the config it counts, the config it is compared with, the check)
        ("our state SAC within or above the published state-SAC range", "state SAC", None,
         lambda t: get("state SAC", t) >= lo[t]),
        ("embedding >= 0.8x our state SAC", "embedding", "state SAC",
         lambda t: get("embedding", t) >= 0.8 * get("state SAC", t)),
        ("embedding above the random-init encoder", "embedding", "embedding, random init",
         lambda t: get("embedding", t) > get("embedding, random init", t)),
        ("embedding above the previous encoder", "embedding", "embedding, previous encoder",
         lambda t: get("embedding", t) > get("embedding, previous encoder", t)),
        ("embedding, previous encoder above the random-init encoder", "embedding, previous encoder",
         "embedding, random init", lambda t: get("embedding, previous encoder", t) > get("embedding, random init", t)),
        (f"{STUDY_BASE} above its random-init encoder", STUDY_BASE, f"{STUDY_BASE}, random init",
         lambda t: get(STUDY_BASE, t) > get(f"{STUDY_BASE}, random init", t)),
        ("embedding at or above CURL (100k)", "embedding", None, lambda t: get("embedding", t) >= curl[t]),
    ]  # fmt: skip
    for text, config, other, check in checks:
        tasks = [
            t for t in _ORDER if not math.isnan(get(config, t)) and (other is None or not math.isnan(get(other, t)))
        ]
        met = [t for t in tasks if check(t)]
        lines.append(f"- {text}: {len(met)} of {len(tasks)} tasks measured ({', '.join(met) or 'none'})")
    return lines


#: configs drawn in the figure: (color, line style, legend label, short name for the seed counts), all with the
#: default learner (the study's plain-critic rows are in the report's tables only)
FIGURE_STYLES: dict[str, tuple[str, str, str, str]] = {
    "state SAC": ("black", "-", "state SAC", "state"),
    "embedding": ("tab:blue", "-", f"embedding, {DEFAULT_ENCODER} (the default)", "default"),
    "embedding, previous encoder": (
        "tab:green",
        "-",
        f"embedding, {PREVIOUS_ENCODER} (the previous encoder)",
        "previous",
    ),
    "embedding, random init": ("tab:orange", "-", "embedding, random init (same networks before pretraining)", "rand."),
}


def six_task_mean(means: dict[str, float]) -> float:
    """The mean over the six tasks of ``task -> mean final return`` (NaN unless all six are there)."""
    return float(np.mean([means[t] for t in _ORDER])) if all(t in means for t in _ORDER) else math.nan


def _table(s: dict, names: list[str], tasks: list[str], title: str, cell: Any, mean: bool = False) -> list[str]:
    """A markdown table, one row per config and a column per task (``mean``: a last column with the six-task mean
    of the configs run on all six)."""
    head = f"| {title} | " + " | ".join(f"{t} ({TASKS[t]})" for t in tasks) + (" | six-task mean |" if mean else " |")
    lines = [head, "| --- |" + " ---: |" * (len(tasks) + mean)]
    for name in names:
        cells = [cell(s.get((name, t))) if (name, t) in s else "-" for t in tasks]
        if mean:
            m = six_task_mean({t: s[(name, t)]["mean"] for t in tasks if (name, t) in s})
            cells.append("-" if math.isnan(m) else f"{m:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def study(rows: list[dict[str, Any]]) -> list[str]:
    """Each study variant against its base config (``VARIANT_BASE``'s, else ``STUDY_BASE``; ``state SAC`` for a
    variant on the state) on the (task, seed) pairs both ran: mean final-return difference."""
    done = {(r["config"], r["task"], r["seed"]): r["final_return"] for r in rows}
    every = configs()
    skip = ("state SAC", "embedding, random init", STUDY_BASE)
    variants = [n for n in every if n not in skip and any(r["config"] == n for r in rows)]
    lines = [f"| variant - its base config, same task and seed (base: {STUDY_BASE}; state SAC for state variants; "
             "the previous encoder for the default encoder; each encoder for its own intrinsic-0 run) "
             "| pairs | mean difference | per pair |", "| --- | ---: | ---: | --- |"]  # fmt: skip
    for name in variants:
        baseline = VARIANT_BASE.get(name, "state SAC" if every[name].observation == "state" else STUDY_BASE)
        pairs = [(t, sd) for (c, t, sd) in done if c == name and (baseline, t, sd) in done]
        diffs = [done[(name, t, sd)] - done[(baseline, t, sd)] for t, sd in pairs]
        each = ", ".join(f"{t} s{sd} {d:+.0f}" for (t, sd), d in zip(pairs, diffs, strict=True))
        label = STUDY_LABELS.get(name, name)
        lines.append(f"| {label} | {len(pairs)} | {np.mean(diffs) if diffs else math.nan:+.1f} | {each} |")
    return lines


def encoders(rows: list[dict[str, Any]]) -> list[str]:
    """One line per config run with an encoder: the artifact files its runs recorded (``--encoder`` and the
    other flags as given then)."""
    out, order = [], list(configs())
    for name in sorted(dict.fromkeys(r["config"] for r in rows), key=order.index):
        files = sorted({str(r["encoder"]) for r in rows if r["config"] == name and r.get("encoder")})
        if files:
            out.append(f"- {name}: " + ", ".join(f"`{f}`" for f in files))
    return out


def report(rows: list[dict[str, Any]], out: Path, command: str) -> None:
    """Write ``report.md`` and ``six_task.png`` from finished runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary(rows)
    order = list(configs())
    names = sorted(dict.fromkeys(r["config"] for r in rows), key=order.index)
    tasks = [t for t in _ORDER if any(r["task"] == t for r in rows)]
    finals = _table(s, names, tasks, "config (ours, run here)",
                    lambda v: f"{v['mean']:.1f} +- {v['std']:.1f} ({v['n']})", mean=True)  # fmt: skip
    minutes = _table(s, names, tasks, "config (minutes per run)", lambda v: f"{v['minutes']:.1f}")
    pub = _table({}, [], tasks, "published, not run here", str, mean=True)
    for p in PUBLISHED:
        scores = dict(zip(_ORDER, p["scores"], strict=True))
        pub.append(f"| {p['method']} at {p['env_steps'] // 1000}k, {p['source']} | "
                   + " | ".join(str(scores[t]) for t in tasks) + f" | {six_task_mean(scores):.1f} |")  # fmt: skip
    lines = ["# Six-task DMC benchmark, 100k env steps", "",
             f"Runs: `{out}/runs/*.json`, one per config, task and seed, each with its settings (`spec`), curve "
             f"and timings. This report: `{command}`.", "",
             "Final return: mean of the evaluation episodes at the last evaluation (100k env steps); mean +- std "
             "over seeds (number of seeds). Our runs, on 2 CPU cores:", "", *finals, "",
             "Encoders (the artifact files the runs recorded):", "", *encoders(rows), "",
             "Published (not run here; the papers' means):", "", *pub, "",
             "Wall time of a whole run (training and its evaluations), minutes, mean over seeds:", "", *minutes, "",
             "Targets (counted over the tasks measured so far):", "", *targets(rows), "",
             f"Downstream study (variants of `{STUDY_BASE}` or of `state SAC` with one setting changed each, and "
             "the encoders against each other):", "",
             *study(rows), "",
             "![learning curves](six_task.png)", ""]  # fmt: skip
    (out / "report.md").write_text("\n".join(lines))

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), squeeze=False)
    drawn = [n for n in names if n in FIGURE_STYLES] or names
    markers = {"CURL": "s", "DrQ": "D", "state SAC": "^"}
    for ax, task in zip(axes.flat, _ORDER, strict=True):
        ax.set_title(f"{task} (action repeat {TASKS[task]})", fontsize=10)
        seeds: list[str] = []
        for i, name in enumerate(drawn):
            rs = [r for r in rows if r["config"] == name and r["task"] == task and r["curve"]]
            if not rs:
                continue
            n = min(len(r["curve"]) for r in rs)
            xs = np.array([p["env_steps"] for p in rs[0]["curve"][:n]]) / 1000
            ys = np.array([[p["return"] for p in r["curve"][:n]] for r in rs])
            color, style, label, short = FIGURE_STYLES.get(name, (plt.cm.tab10.colors[i % 10], "-", name, name))
            ax.plot(xs, ys.mean(0), color=color, linestyle=style, marker="." if style == "-" else None,
                    label=f"{label} (ours)")  # fmt: skip
            if len(ys) > 1 and style == "-":
                ax.fill_between(xs, ys.min(0), ys.max(0), color=color, alpha=0.15)
            seeds.append(f"{short} {len(ys)}")
        if seeds:  # one line per panel: labels at the curves' ends overlapped where the curves meet
            ax.text(0.02, 0.97, "seeds: " + ", ".join(seeds), transform=ax.transAxes, fontsize=7, va="top")
        for p in PUBLISHED:  # the tables list the other published rows
            if p["env_steps"] == 100_000 and p["method"] in markers:
                score = dict(zip(_ORDER, p["scores"], strict=True))[task]
                hollow = "DrQ" in p["source"] and p["method"] == "state SAC"
                ax.plot([100], [score], markers[p["method"]], color="grey", mfc="none" if hollow else "grey", ms=7,
                        label=f"{p['method']} at 100k, {p['source']} (published)")  # fmt: skip
        if not any(r["task"] == task for r in rows):
            ax.text(50, 500, "not run yet", ha="center", color="grey")
        ax.set_xlim(0, 105)
        ax.set_ylim(0, 1000)
        ax.set_xlabel("env steps (thousands)")
        ax.set_ylabel("evaluation return")
        ax.grid(alpha=0.3)
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=8)
    fig.suptitle("Six DMC tasks, 100k env steps: our runs (lines: mean over seeds, band: min-max) vs published "
                 f"100k scores (grey markers, not run here)\n{verdict(rows)}", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    fig.savefig(out / "six_task.png", dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    all_configs = configs()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/six_task")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER,
                        help=f"pretrained artifact or shipped name of `embedding` and its variants (default: "
                        f"{DEFAULT_ENCODER})")  # fmt: skip
    parser.add_argument("--previous-encoder", default=PREVIOUS_ENCODER,
                        help=f"artifact or shipped name of `embedding, previous encoder` and the study's configs "
                        f"(default: {PREVIOUS_ENCODER})")  # fmt: skip
    parser.add_argument("--random-init", default=None,
                        help="random-init artifact (default: <out>/random_init.safetensors, made from --encoder's "
                        "recorded seed and architecture)")  # fmt: skip
    parser.add_argument("--tasks", nargs="+", default=_ORDER, choices=_ORDER)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["state SAC", "embedding", "embedding, random init"],
        choices=list(all_configs),
        metavar="CONFIG",
        help=f"from: {', '.join(all_configs)}",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=10_000, help="env steps")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--learning-starts", type=int, default=None, help="override every config's (agent steps)")
    parser.add_argument("--report-only", action="store_true", help="only rebuild report.md and the figure")
    args = parser.parse_args(argv)  # fmt: skip
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    needs_random_init = any(all_configs[n].encoder == "random init" for n in args.configs)
    if args.random_init is None and needs_random_init and not args.report_only:
        args.random_init = str(random_init_artifact(args.encoder, out / "random_init.safetensors"))
    for seed in [] if args.report_only else args.seeds:
        for task in args.tasks:
            for name in args.configs:
                path = out / "runs" / f"{task}__{name.replace(' ', '_').replace(',', '')}__seed{seed}.json"
                if path.exists():
                    continue
                config = all_configs[name]
                if args.learning_starts is not None:
                    config = dataclasses.replace(
                        config, learner={**config.learner, "learning_starts": args.learning_starts}
                    )
                encoder = {"pretrained": args.encoder, "previous": args.previous_encoder,
                           "random init": args.random_init, None: None}[config.encoder]  # fmt: skip
                row = run(name, config, task, seed, Path(encoder) if encoder else None, args)
                path.write_text(json.dumps(row))
                print(fmt(row), flush=True)
    rows = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    if rows:
        report(rows, out, "python benchmarks/six_task.py " + shlex.join(argv))
        print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    main(sys.argv[1:])
