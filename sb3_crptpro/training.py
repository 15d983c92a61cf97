"""Train an SB3 agent on a DMC task with a pretrained CRPTpro encoder, in an rl-zoo3-style run directory.

``logs/<algo>/<task>_<id>/`` receives the model zip (``<task>.zip``, also saved when training is interrupted),
``best_model.zip`` and ``evaluations.npz`` from SB3's ``EvalCallback``, ``monitor.csv`` files (extrinsic training
returns), TensorBoard events, ``config.yml`` (everything needed to rebuild the env and reload the model),
``command.txt`` and, with an intrinsic reward, the reward wrapper's queue state ``intrinsic_reward.pt``.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sb3_crptpro._version import __version__
from sb3_crptpro.presets import TRAIN_PRESETS

__all__ = ["TRAIN_PRESETS", "TrainConfig", "algo_class", "env_settings", "load_run_config", "next_run_dir", "train"]


@dataclass
class TrainConfig:
    """Settings of one training run (``sb3-crptpro train`` mirrors these fields)."""

    #: DMC task, e.g. ``cheetah_run``
    task: str
    #: pretrained artifact (``.safetensors``)
    encoder: str
    #: ``sac`` (AugmentedSAC) or ``tqc`` (AugmentedTQC)
    algo: str = "sac"
    #: coefficient of the prototype kNN intrinsic reward (0 disables the wrapper)
    intrinsic_coef: float = 0.2
    #: environment steps (summed over envs)
    steps: int = 10_000
    #: hyperparameter preset, ``quick`` or ``paper``
    preset: str = "quick"
    #: preset entries to replace (e.g. ``{"batch_size": 128}``)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: seed of envs, networks and augmentation
    seed: int = 0
    #: parallel training envs (DummyVecEnv)
    n_envs: int = 1
    #: action repeat of the env (frames per agent step)
    action_repeat: int = 2
    #: evaluate every N environment steps (0: never during training)
    eval_freq: int = 1000
    #: episodes per evaluation
    eval_episodes: int = 2
    #: root of the run directories
    log_dir: str = "logs"
    #: ``auto``, ``cpu`` or ``cuda``
    device: str = "auto"
    #: show progress: SB3's bar on a terminal, one line every 30 s when stdout is piped (a log file, CI)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.algo not in ("sac", "tqc"):
            raise ValueError(f"algo must be 'sac' or 'tqc', got {self.algo!r}")
        if self.preset not in TRAIN_PRESETS:
            raise ValueError(f"preset must be one of {sorted(TRAIN_PRESETS)}, got {self.preset!r}")
        if self.steps < 1 or self.n_envs < 1 or self.action_repeat < 1 or self.eval_episodes < 1:
            raise ValueError("steps, n_envs, action_repeat and eval_episodes must be >= 1")
        if self.intrinsic_coef < 0 or self.eval_freq < 0:
            raise ValueError("intrinsic_coef and eval_freq must be >= 0")
        unknown = set(self.overrides) - set(TRAIN_PRESETS["paper"]) - set(TRAIN_PRESETS["quick"])
        if unknown - {"train_freq", "gradient_steps"}:
            raise ValueError(f"unknown hyperparameter override(s): {sorted(unknown)}")


def algo_class(name: str) -> type:
    """``AugmentedSAC`` for ``"sac"``, ``AugmentedTQC`` for ``"tqc"``."""
    from sb3_crptpro.sac import AugmentedSAC, AugmentedTQC

    classes = {"sac": AugmentedSAC, "tqc": AugmentedTQC}
    if name not in classes:
        raise ValueError(f"unknown algo {name!r}; choose from {sorted(classes)}")
    return classes[name]


def env_settings(metadata: dict[str, Any], action_repeat: int) -> dict[str, Any]:
    """Env keyword arguments that match an artifact: its image size, frame stack and (first) render preset."""
    render = str(metadata.get("render") or "paper").split(",")[0]
    return {
        "image_size": int(metadata["image_size"]),
        "frame_stack": int(metadata["frame_stack"]),
        "action_repeat": action_repeat,
        "render": render,
    }


def next_run_dir(log_dir: str | Path, algo: str, task: str) -> Path:
    """``<log_dir>/<algo>/<task>_<n>`` with ``n`` one more than the largest existing id (rl-zoo3's layout)."""
    root = Path(log_dir) / algo
    ids = [int(m.group(1)) for p in root.glob(f"{task}_*") if (m := re.fullmatch(rf"{re.escape(task)}_(\d+)", p.name))]
    return root / f"{task}_{max(ids, default=0) + 1}"


def train(config: TrainConfig, command: list[str] | None = None) -> Path:
    """Train ``config.algo`` with the frozen pretrained encoder (and optional intrinsic reward); return the run dir.

    The model is saved even when training stops early (exception or Ctrl-C), so no finished update is lost.
    """
    from stable_baselines3.common.callbacks import EvalCallback

    from sb3_crptpro.artifact import load_artifact
    from sb3_crptpro.envs import make_dmc_vec_env, resolve_task
    from sb3_crptpro.extractor import EncoderWeights, crptpro_kwargs
    from sb3_crptpro.progress import training_progress
    from sb3_crptpro.reward import PrototypeIntrinsicReward

    resolve_task(config.task)
    artifact = load_artifact(config.encoder)
    settings = env_settings(artifact.metadata, config.action_repeat)
    hyper = {**TRAIN_PRESETS[config.preset], **config.overrides}
    net_arch = hyper.pop("net_arch")
    run_dir = next_run_dir(config.log_dir, config.algo, config.task)
    run_dir.mkdir(parents=True)

    venv = make_dmc_vec_env(config.task, config.n_envs, seed=config.seed, monitor_dir=run_dir, **settings)
    if config.intrinsic_coef > 0:
        venv = PrototypeIntrinsicReward(venv, artifact, coef=config.intrinsic_coef)
    eval_env = make_dmc_vec_env(config.task, 1, seed=config.seed + 10_000, **settings)
    saved = {
        "package_version": __version__,
        "train": dataclasses.asdict(config),
        "hyperparameters": {**hyper, "net_arch": net_arch},
        "env": {"task": config.task, **settings},
        "encoder": {
            "path": str(Path(config.encoder).resolve()),
            "tensor_sha256": artifact.metadata.get("tensor_sha256"),
            "tasks": artifact.metadata.get("tasks", []),
        },
        "model": f"{config.task}.zip",
    }
    (run_dir / "config.yml").write_text(yaml.safe_dump(saved, sort_keys=False))
    (run_dir / "command.txt").write_text(shlex.join(command if command is not None else sys.argv) + "\n")

    policy_kwargs = crptpro_kwargs(EncoderWeights.from_artifact(artifact), net_arch=net_arch)
    model = algo_class(config.algo)(
        "CnnPolicy",
        venv,
        policy_kwargs=policy_kwargs,
        seed=config.seed,
        device=config.device,
        tensorboard_log=str(run_dir),
        verbose=0,
        **hyper,
    )
    callbacks = []
    if config.eval_freq:
        callbacks.append(
            EvalCallback(
                eval_env,
                n_eval_episodes=config.eval_episodes,
                eval_freq=max(config.eval_freq // config.n_envs, 1),
                log_path=str(run_dir),
                best_model_save_path=str(run_dir),
                deterministic=True,
                verbose=0,
            )
        )
    progress_bar, progress_callbacks = training_progress(config.steps, config.progress)
    callbacks += progress_callbacks
    try:
        with warnings.catch_warnings():  # evaluation deliberately runs without the intrinsic-reward wrapper
            warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
            model.learn(config.steps, callback=callbacks, tb_log_name="tb", progress_bar=progress_bar)
    finally:
        model.save(run_dir / saved["model"])
        if isinstance(venv, PrototypeIntrinsicReward):
            venv.save(run_dir / "intrinsic_reward.pt")
        venv.close()
        eval_env.close()
    return run_dir


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.yml`` of a run directory written by :func:`train`."""
    path = Path(run_dir) / "config.yml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run (no config.yml); runs are made by `train`")
    return yaml.safe_load(path.read_text())
