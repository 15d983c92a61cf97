"""Train an SB3 agent on a DMC task or Gymnasium env with a pretrained CRPTpro encoder, in an rl-zoo3-style run
directory.

``logs/<algo>/<task>_<id>/`` receives the model zip (``<task>.zip``, also saved when training is interrupted),
``best_model.zip`` and ``evaluations.npz`` from SB3's ``EvalCallback``, ``monitor.csv`` files (extrinsic training
returns), TensorBoard events, ``config.yml`` (everything needed to rebuild the env and reload the model),
``command.txt``, with an intrinsic reward the reward wrapper's queue state ``intrinsic_reward.pt`` and, in
embedding mode with an encoder file of the user's, a copy of the artifact (``encoder.safetensors``) so the run
evaluates on pixels wherever the original went; a shipped encoder (``--encoder dmc-64px``) is recorded by name and
tensor checksum instead (10 MB less per run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shlex
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sb3_crptpro._version import __version__
from sb3_crptpro.app.run_encoder import encoder_record, load_run_encoder, run_encoder_path, shipped_name
from sb3_crptpro.app.run_files import RUN_ENCODER, load_run_config, next_run_dir, run_is_complete
from sb3_crptpro.common.folder_lock import exclusive_folder
from sb3_crptpro.common.user_warning import warn_user
from sb3_crptpro.sb3.presets import TRAIN_PRESETS

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from sb3_crptpro.common.artifact import PretrainedArtifact

__all__ = [
    "RESUME_CHANGES",
    "TRAIN_MODES",
    "TRAIN_PRESETS",
    "TrainConfig",
    "algo_class",
    "encode_env",
    "load_run_config",
    "load_run_encoder",
    "next_run_dir",
    "policy_class",
    "resume",
    "run_encoder_path",
    "run_is_complete",
    "train",
]

#: ``sb3-crptpro train --mode``: see :attr:`TrainConfig.mode`
TRAIN_MODES = ("reference", "embedding")


@dataclass
class TrainConfig:
    """Settings of one training run (``sb3-crptpro train`` mirrors these fields)."""

    #: DMC task or Gymnasium id, e.g. ``cheetah_run``, ``Hopper-v5``
    task: str
    #: pretrained artifact (``.safetensors``)
    encoder: str
    #: ``sac`` or ``tqc``
    algo: str = "sac"
    #: ``reference``: AugmentedSAC/TQC on pixels, frozen conv trunk + trainable ``pre_fc`` (the paper's setting);
    #: ``embedding``: stock SAC/TQC on the frozen encoder's projections, each frame encoded once
    #: (:class:`~sb3_crptpro.sb3.encode.VecEncodeObservation`), with the policy of :func:`policy_class`
    mode: str = "reference"
    #: embedding mode only: each env in its own worker process renders and encodes while this process runs the
    #: updates (:class:`~sb3_crptpro.sb3.overlap.OverlappedSAC` on
    #: :func:`~sb3_crptpro.sb3.encode.make_encoded_vec_env`); this process then runs torch on the cores the workers
    #: leave (at least 1)
    overlap: bool = False
    #: coefficient of the prototype kNN intrinsic reward (0 disables the wrapper)
    intrinsic_coef: float = 0.2
    #: agent steps, summed over envs (SB3's ``total_timesteps``; each repeats the action ``action_repeat`` times)
    steps: int = 10_000
    #: hyperparameter preset (:data:`~sb3_crptpro.sb3.presets.TRAIN_PRESETS`): ``quick``, ``paper`` or
    #: ``embedding``; ``None`` picks ``embedding`` in embedding mode and ``quick`` in reference mode
    preset: str | None = None
    #: preset entries to replace (e.g. ``{"batch_size": 128}``, ``{"critic_layer_norm": False}``)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: seed of envs, networks and augmentation
    seed: int = 0
    #: parallel training envs (DummyVecEnv)
    n_envs: int = 1
    #: action repeat of the env (frames per agent step)
    action_repeat: int = 2
    #: evaluate every N agent steps (summed over envs) (0: never during training)
    eval_freq: int = 1000
    #: episodes per evaluation
    eval_episodes: int = 2
    #: root of the run directories
    log_dir: str = "logs"
    #: ``auto``, ``cpu`` or ``cuda``
    device: str = "auto"
    #: torch threads of the gradient steps; ``None``: the free cores when the run starts
    #: (:func:`~sb3_crptpro.common.threads.pinned_batch_threads`). Recorded in ``config.yml`` and reused on resume:
    #: the count changes the float results of an update, so a resume on another count would not be the same run
    threads: int | None = None
    #: show progress: SB3's bar on a terminal, one line every 30 s when stdout is piped (a log file, CI)
    progress: bool = True
    #: write a full checkpoint (model, replay buffer, reward queue, RNG, env states) every N agent steps (all envs)
    #: and when training ends; 0: never
    checkpoint_every: int = 10_000

    def __post_init__(self) -> None:
        if self.algo not in ("sac", "tqc"):
            raise ValueError(f"algo must be 'sac' or 'tqc', got {self.algo!r}")
        if self.mode not in TRAIN_MODES:
            raise ValueError(f"mode must be one of {TRAIN_MODES}, got {self.mode!r}")
        if self.overlap and self.mode != "embedding":
            raise ValueError(
                "overlap (--overlap) needs mode='embedding' (--mode embedding): the reference mode encodes every "
                "sampled frame in the update itself"
            )
        if self.preset is None:
            self.preset = "embedding" if self.mode == "embedding" else "quick"
        if self.preset not in TRAIN_PRESETS:
            raise ValueError(f"preset must be one of {sorted(TRAIN_PRESETS)}, got {self.preset!r}")
        if self.steps < 1 or self.n_envs < 1 or self.action_repeat < 1 or self.eval_episodes < 1:
            raise ValueError("steps, n_envs, action_repeat and eval_episodes must be >= 1")
        if not math.isfinite(self.intrinsic_coef):
            raise ValueError(f"intrinsic_coef must be a finite number >= 0, got {self.intrinsic_coef}")
        if self.intrinsic_coef < 0 or self.eval_freq < 0 or self.checkpoint_every < 0 or self.seed < 0:
            raise ValueError("intrinsic_coef, eval_freq, checkpoint_every and seed must be >= 0")
        unknown = set(self.overrides).difference(*TRAIN_PRESETS.values())
        if unknown - {"train_freq", "gradient_steps", "n_steps"}:
            raise ValueError(f"unknown hyperparameter override(s): {sorted(unknown)}")
        hyper = {**TRAIN_PRESETS[self.preset], **self.overrides}
        if hyper["learning_starts"] < 0:
            raise ValueError(f"learning_starts must be >= 0, got {hyper['learning_starts']}")
        if hyper["buffer_size"] < hyper["batch_size"]:
            raise ValueError(f"buffer_size {hyper['buffer_size']} is smaller than one batch ({hyper['batch_size']})")
        if not self.device.startswith(("auto", "cpu", "cuda", "mps")):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        if not isinstance(hyper.get("critic_layer_norm", False), bool):
            raise ValueError(f"critic_layer_norm must be True or False, got {hyper['critic_layer_norm']!r}")
        if self.device.startswith("cuda") and not _cuda_available():
            raise ValueError(f"device {self.device!r}: this torch build sees no CUDA GPU; use --device cpu (or auto)")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def algo_class(name: str, mode: str = "reference", overlap: bool = False) -> type:
    """``AugmentedSAC`` / ``AugmentedTQC`` (reference mode) or SB3's ``SAC`` / sb3-contrib's ``TQC`` (embedding
    mode; ``OverlappedSAC`` / ``OverlappedTQC`` with ``overlap``) for ``"sac"`` / ``"tqc"``."""
    if overlap:
        from sb3_crptpro.sb3.overlap import OverlappedSAC, OverlappedTQC

        classes: dict[str, type] = {"sac": OverlappedSAC, "tqc": OverlappedTQC}
    elif mode == "embedding":
        from sb3_contrib import TQC
        from stable_baselines3 import SAC

        classes = {"sac": SAC, "tqc": TQC}
    else:
        from sb3_crptpro.sb3.sac import AugmentedSAC, AugmentedTQC

        classes = {"sac": AugmentedSAC, "tqc": AugmentedTQC}
    if name not in classes:
        raise ValueError(f"unknown algo {name!r}; choose from {sorted(classes)}")
    return classes[name]


def policy_class(algo: str, mode: str, critic_layer_norm: bool) -> type | str:
    """The policy of a run: SB3's ``"MlpPolicy"`` (embedding mode) or ``"CnnPolicy"`` (reference mode), or with
    ``critic_layer_norm`` :class:`~sb3_crptpro.sb3.policies.LayerNormCriticSACPolicy` /
    :class:`~sb3_crptpro.sb3.policies.LayerNormCriticTQCPolicy` (the same policy with ``LayerNorm`` in the critic;
    in reference mode it takes the encoder through ``policy_kwargs`` as ``CnnPolicy`` does)."""
    if not critic_layer_norm:
        return "MlpPolicy" if mode == "embedding" else "CnnPolicy"
    from sb3_crptpro.sb3.policies import LAYER_NORM_CRITIC_POLICIES

    return LAYER_NORM_CRITIC_POLICIES[algo]


def train(config: TrainConfig, command: list[str] | None = None,
          on_start: Callable[[Path], None] | None = None) -> Path:  # fmt: skip
    """Train ``config.algo`` with the frozen pretrained encoder (and optional intrinsic reward); return the run dir.

    The model is saved even when training stops early (exception or Ctrl-C), so no finished update is lost, and
    every ``config.checkpoint_every`` agent steps a checkpoint is written (:mod:`~sb3_crptpro.app.train_checkpoint`),
    from which :func:`resume` continues after a crash or ``kill -9``.

    :param command: the command line recorded in ``command.txt`` (default ``sys.argv``)
    :param on_start: called with the new run directory once its ``config.yml`` is written, before the first step
        (the command line prints it, and names it in the hint it prints on Ctrl-C)
    """
    from sb3_crptpro.common.artifact import env_settings, load_artifact
    from sb3_crptpro.common.threads import pinned_batch_threads
    from sb3_crptpro.envs import resolve_env

    resolve_env(config.task)
    artifact = load_artifact(config.encoder)
    settings = env_settings(artifact.metadata, config.action_repeat)
    hyper = {**TRAIN_PRESETS[config.preset], **config.overrides}
    net_arch = hyper.pop("net_arch")
    if config.steps <= hyper["learning_starts"]:
        warn_user(f"{config.steps} agent steps do not pass learning_starts ({hyper['learning_starts']}): the run makes "
                  "no gradient update and its policy stays untrained; give more steps (--steps) or a smaller "
                  "--learning-starts")  # fmt: skip
    run_dir = _new_run_dir(config.log_dir, config.algo, config.task)
    with exclusive_folder(run_dir, "run"), pinned_batch_threads(config.threads) as threads:
        config = dataclasses.replace(config, threads=threads)
        # a shipped encoder is recorded by name and checksum, not copied: the package holds it
        copy = config.mode == "embedding" and shipped_name(Path(artifact.path).resolve()) is None
        if copy:  # the run keeps its own copy: the policy alone cannot read pixels (evaluate, reload)
            shutil.copyfile(artifact.path, run_dir / RUN_ENCODER)
        saved = {
            "package_version": __version__,
            "train": dataclasses.asdict(config),
            "hyperparameters": {**hyper, "net_arch": net_arch},
            "env": {"task": config.task, **settings},
            "encoder": encoder_record(artifact, run_dir, RUN_ENCODER if copy else None),
            "model": f"{config.task}.zip",
        }
        (run_dir / "config.yml").write_text(yaml.safe_dump(saved, sort_keys=False))
        (run_dir / "command.txt").write_text(shlex.join(command if command is not None else sys.argv) + "\n")
        if on_start is not None:
            on_start(run_dir)
        try:
            _run(config, saved, run_dir, artifact, checkpoint=None)
        except BaseException:
            if not (run_dir / saved["model"]).is_file():  # failed before its first step: nothing worth keeping
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    return run_dir


def _new_run_dir(log_dir: str, algo: str, task: str) -> Path:
    """Create the next run directory (:func:`next_run_dir`); two runs started at once get different ones."""
    while True:
        run_dir = next_run_dir(log_dir, algo, task)
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:  # another process took this id between the listing and mkdir: take the next one
            continue


#: settings a resumed run may change (:func:`resume`); everything else is the run's own
RESUME_CHANGES = ("steps", "device", "progress")


def resume(run_dir: str | Path, command: list[str] | None = None, encoder: str | Path | None = None,
           **changes: Any) -> Path:  # fmt: skip
    """Continue the run in ``run_dir`` from its latest complete checkpoint, up to its configured ``steps``.

    The resumed run is the uninterrupted one (:mod:`~sb3_crptpro.app.train_checkpoint`): step counters, the replay
    buffer, the intrinsic reward's queue, the RNG states and the envs' episodes (replayed) continue; ``monitor.csv``
    and ``evaluations.npz`` are cut back to the checkpoint and TensorBoard events after it are purged, then the run
    writes them again. A checkpoint without env states (sb3-crptpro 0.2.0) resumes with new episodes; objects
    pickled by 0.2.0 (replay buffers) get the defaults of the attributes added since.

    The run directory is locked while it resumes (another process writing it: refused). Until the resumed run has
    done one round of updates (:class:`~sb3_crptpro.app.train_checkpoint.ResumeProofCallback`), a failure or
    Ctrl-C puts every file it rewrote back as it was. A complete run (:func:`run_is_complete`) with no new ``steps``
    is left as it is.

    :param encoder: the run's encoder at a new place (a file or a shipped name), when the recorded one moved; its
        tensor checksum must be the recorded one, and ``config.yml`` then records the new place
    :param changes: new values of :data:`RESUME_CHANGES` only: ``steps`` (agent steps in all, more than the
        checkpoint holds: extends or shortens the run, recorded in ``config.yml``), ``device``, ``progress``
    :raises FileNotFoundError: ``run_dir`` is not a run (no ``config.yml``); the recorded encoder moved and no
        ``encoder`` is given
    :raises FolderInUseError: another process is writing the run
    :raises ValueError: the run has no complete checkpoint yet (it stopped before the first one); a checkpoint file
        damaged since it was written (another size than recorded, or unreadable); a setting that cannot change on
        resume; ``steps`` not beyond the checkpoint; an encoder file that is not the one the run recorded (its tensor
        checksum)
    """
    from sb3_crptpro.app.train_checkpoint import (
        CHECKPOINTS,
        ResumeProofCallback,
        RunSnapshot,
        check_checkpoint_files,
        checkpoint_step,
        latest_checkpoint,
    )
    from sb3_crptpro.common.threads import pinned_batch_threads

    fixed = sorted(set(changes) - set(RESUME_CHANGES))
    if fixed:
        raise ValueError(f"a resumed run keeps its saved {', '.join(fixed)}; only {', '.join(RESUME_CHANGES)} can "
                         "change (start a new run for other settings)")  # fmt: skip
    run_dir = Path(run_dir)
    saved = load_run_config(run_dir)
    config = TrainConfig(**{**saved["train"], **changes})
    if "steps" not in changes and run_is_complete(run_dir):
        return run_dir  # nothing to do: no file is touched
    with exclusive_folder(run_dir, "run"), pinned_batch_threads(config.threads) as threads:
        config = dataclasses.replace(config, threads=threads)
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None and not config.checkpoint_every:
            raise ValueError(f"{run_dir} was trained without checkpoints (checkpoint_every 0, --checkpoint-every 0), "
                             "so it cannot be resumed: start a new run")  # fmt: skip
        pointer = run_dir / CHECKPOINTS / "latest"
        if checkpoint is None and pointer.is_file():
            named = pointer.parent / pointer.read_text().strip()
            raise ValueError(f"{pointer} names {named}, which is missing or incomplete (deleted or damaged "
                             "after it was written): this run cannot be resumed; start it again with `sb3-crptpro "
                             "train`")  # fmt: skip
        if checkpoint is None:
            raise ValueError(
                f"{run_dir} has no complete checkpoint (written every {config.checkpoint_every} agent steps); the run "
                "stopped before the first one: start it again with `sb3-crptpro train`"
            )
        check_checkpoint_files(checkpoint)
        if "steps" in changes and config.steps <= checkpoint_step(checkpoint):
            raise ValueError(f"steps {config.steps} is not beyond the latest checkpoint (agent step "
                             f"{checkpoint_step(checkpoint)}); give more steps")  # fmt: skip
        artifact = load_run_encoder(run_dir, saved, encoder)
        before = yaml.safe_dump(saved, sort_keys=False)
        saved["train"]["steps"] = config.steps
        saved["train"]["threads"] = config.threads  # runs before 0.3 recorded none: decided now, then recorded
        if encoder is not None:  # the encoder's new place is the one to find next time
            place = encoder_record(artifact, run_dir, saved["encoder"].get("copy"))
            saved["encoder"].update({k: place[k] for k in ("path", "relative_path", "name") if k in place})
        snapshot, proof = RunSnapshot(run_dir, saved["model"]), ResumeProofCallback()
        try:
            if yaml.safe_dump(saved, sort_keys=False) != before:
                (run_dir / "config.yml").write_text(yaml.safe_dump(saved, sort_keys=False))
            with open(run_dir / "command.txt", "a") as fh:
                fh.write(shlex.join(command if command is not None else sys.argv) + "\n")
            _run(config, saved, run_dir, artifact, checkpoint=checkpoint, extra_callbacks=[proof])
        except BaseException:
            if not proof.proven:  # the run could not continue: leave it as it was
                snapshot.restore()
            raise
    return run_dir


def _run(config: TrainConfig, saved: dict[str, Any], run_dir: Path, artifact: PretrainedArtifact,
         checkpoint: Path | None, extra_callbacks: list[Any] | None = None) -> None:  # fmt: skip
    """Build envs, model and callbacks (fresh, or from ``checkpoint``) and train up to ``config.steps``."""
    from stable_baselines3.common.callbacks import EvalCallback

    from sb3_crptpro.app.progress import training_progress
    from sb3_crptpro.app.train_checkpoint import (
        BUFFER,
        ENVS,
        MODEL,
        REWARD,
        CheckpointCallback,
        continue_evaluations,
        load_env_states,
        reading_checkpoint,
        restore_rng,
        restore_vec_env,
        resumed_logger,
        trim_monitor_files,
    )
    from sb3_crptpro.common.threads import batch_threads
    from sb3_crptpro.envs import make_pixel_vec_env
    from sb3_crptpro.envs.tasks import check_bounded_actions
    from sb3_crptpro.sb3.buffer_files import load_filled_replay_buffer
    from sb3_crptpro.sb3.encode import make_encoded_vec_env
    from sb3_crptpro.sb3.extractor import EncoderWeights, crptpro_kwargs
    from sb3_crptpro.sb3.reward import PrototypeIntrinsicReward
    from sb3_crptpro.sb3.threads import UpdateThreadsCallback

    settings = {k: v for k, v in saved["env"].items() if k != "task"}
    hyper = dict(saved["hyperparameters"])
    net_arch = hyper.pop("net_arch")
    critic_layer_norm = hyper.pop("critic_layer_norm", False)  # absent from runs of sb3-crptpro 0.2.0
    envs_state = None
    if checkpoint is not None:
        with reading_checkpoint(checkpoint, ENVS):
            envs_state = load_env_states(checkpoint)
    if envs_state is not None:  # episodes logged after the checkpoint are logged again by the resumed run
        trim_monitor_files(run_dir, envs_state["train"])
    monitor = {"monitor_dir": run_dir, "monitor_kwargs": {"override_existing": checkpoint is None}}
    if config.overlap:  # each worker receives the loaded artifact (pickled), nothing re-reads the file
        venv = make_encoded_vec_env(config.task, config.n_envs, artifact, seed=config.seed, **monitor, **settings)
    else:
        venv = encode_env(make_pixel_vec_env(config.task, config.n_envs, seed=config.seed, **monitor, **settings),
                          config.mode, artifact)  # fmt: skip
    check_bounded_actions(config.task, venv.action_space)  # before a step: a fresh run's directory is then removed
    reward = None
    if config.intrinsic_coef > 0:
        venv = reward = PrototypeIntrinsicReward(venv, artifact, coef=config.intrinsic_coef)
    eval_env = encode_env(
        make_pixel_vec_env(config.task, 1, seed=config.seed + 10_000, **settings), config.mode, artifact
    )
    algo = algo_class(config.algo, config.mode, config.overlap)
    if checkpoint is None:
        policy = policy_class(config.algo, config.mode, critic_layer_norm)
        if config.mode == "embedding":
            policy_kwargs = {"net_arch": net_arch}
        else:
            policy_kwargs = crptpro_kwargs(EncoderWeights.from_artifact(artifact), net_arch=net_arch)
        model = algo(policy, venv, policy_kwargs=policy_kwargs, seed=config.seed, device=config.device,
                     tensorboard_log=str(run_dir), verbose=0, **hyper)  # fmt: skip
    else:
        # with the envs' states saved, the model keeps its last observations and the envs replay their episodes;
        # an older checkpoint (no envs.pkl) starts new episodes
        with reading_checkpoint(checkpoint, MODEL):
            model = algo.load(checkpoint / MODEL, env=venv, device=config.device, tensorboard_log=str(run_dir),
                              force_reset=envs_state is None)  # fmt: skip
        with reading_checkpoint(checkpoint, BUFFER):
            load_filled_replay_buffer(model, checkpoint / BUFFER)
        if reward is not None:
            with reading_checkpoint(checkpoint, REWARD):
                reward.load(checkpoint / REWARD)
        if envs_state is not None:
            restore_vec_env(venv, envs_state["train"])
            if envs_state["eval"] is not None:
                restore_vec_env(eval_env, envs_state["eval"])
            pending = json.loads((checkpoint / "state.json").read_text()).get("pending_updates")
            if pending is not None:
                model._overlap_pending = tuple(pending)
        model.set_logger(resumed_logger(run_dir, model.num_timesteps))
        with reading_checkpoint(checkpoint, "rng.pt"):
            restore_rng(checkpoint)
    callbacks: list[Any] = list(extra_callbacks or [])
    if config.eval_freq:
        evaluation = EvalCallback(eval_env, n_eval_episodes=config.eval_episodes,
                                  eval_freq=max(config.eval_freq // config.n_envs, 1), log_path=str(run_dir),
                                  best_model_save_path=str(run_dir), deterministic=True, verbose=0)  # fmt: skip
        if checkpoint is not None:
            continue_evaluations(evaluation, run_dir / "evaluations.npz", model.num_timesteps)
            evaluation.n_calls = model.num_timesteps // config.n_envs  # evaluations stay on the same agent steps
        callbacks.append(evaluation)
    if config.checkpoint_every:
        callbacks.append(CheckpointCallback(run_dir, config.checkpoint_every, reward, eval_env))
    remaining = config.steps - model.num_timesteps
    progress_bar, progress_callbacks = training_progress(remaining, config.progress)
    callbacks += progress_callbacks
    if config.overlap:  # one core per worker, the free rest for the updates (more threads than free cores stall them)
        threads = batch_threads(reserved=config.n_envs)
    else:  # one thread while the rollout steps, the free cores for the gradient steps
        update_threads = UpdateThreadsCallback()  # closed on the way out, also when learn raises (Ctrl-C)
        threads, callbacks = contextlib.closing(update_threads), [*callbacks, update_threads]
    try:
        with warnings.catch_warnings(), threads:  # evaluation deliberately runs without the intrinsic-reward wrapper
            warnings.filterwarnings("ignore", message="Training and eval env are not of the same type")
            if remaining > 0:
                model.learn(remaining, callback=callbacks, tb_log_name="tb", progress_bar=progress_bar,
                            reset_num_timesteps=checkpoint is None)  # fmt: skip
    finally:
        if model.num_timesteps > 0:  # a run that failed before its first step keeps no model
            model.save(run_dir / saved["model"])
        if reward is not None:
            reward.save(run_dir / "intrinsic_reward.pt")
        venv.close()
        eval_env.close()


def encode_env(venv: VecEnv, mode: str, artifact: str | Path | PretrainedArtifact) -> VecEnv:
    """``venv`` itself in reference mode; wrapped in :class:`~sb3_crptpro.sb3.encode.VecEncodeObservation` in embedding
    mode."""
    if mode not in TRAIN_MODES:
        raise ValueError(f"mode must be one of {TRAIN_MODES}, got {mode!r}")
    if mode == "reference":
        return venv
    from sb3_crptpro.sb3.encode import VecEncodeObservation

    return VecEncodeObservation(venv, artifact)
