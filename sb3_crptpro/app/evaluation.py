"""Evaluate a trained run (extrinsic return only) on its task or on another task, optionally with a video."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sb3_crptpro.app.progress import episode_progress
from sb3_crptpro.common.threads import frame_threads

if TYPE_CHECKING:
    from sb3_crptpro.common.artifact import PretrainedArtifact

__all__ = ["evaluate_run", "random_policy_returns", "write_video"]


def _episode_stats(returns: list[float]) -> dict[str, Any]:
    arr = np.asarray(returns, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std()), "returns": [float(r) for r in arr]}


def _bounds(space: Any) -> str:
    low, high = np.unique(space.low), np.unique(space.high)
    if len(low) == 1 and len(high) == 1:
        return f"{low[0]:g}, {high[0]:g}"
    return f"{space.low.tolist()}, {space.high.tolist()}"


def evaluate_run(
    run_dir: str | Path,
    task: str | None = None,
    episodes: int = 10,
    seed: int = 100,
    video: str | Path | None = None,
    deterministic: bool = True,
    device: str = "auto",
    progress: bool = False,
    label: str | None = None,
) -> dict[str, Any]:
    """Mean/std extrinsic episode return of a run's final model.

    :param run_dir: a directory written by :func:`~sb3_crptpro.app.training.train`
    :param task: evaluate on this task instead (same action size needed; e.g. a domain unseen in pretraining)
    :param episodes: number of episodes
    :param seed: seed of the evaluation env (different from training seeds by default)
    :param video: write an mp4 of the first episode here (needs ``imageio-ffmpeg``: ``sb3-crptpro[video]``)
    :param progress: show a bar over episodes (tqdm, stderr)
    :param label: the bar's label (default ``"evaluate <task>"``; the demo names the encoder and seed)
    :return: ``task``, ``episodes``, ``mean``, ``std``, ``returns``, ``seen_in_pretraining`` (the task's domain is
        one of the encoder's pretraining domains: :func:`~sb3_crptpro.envs.tasks.seen_in_pretraining`)
    """
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_crptpro.app.training import algo_class, encode_env, load_run_config, load_run_encoder
    from sb3_crptpro.envs import make_pixel_vec_env, resolve_env
    from sb3_crptpro.envs.tasks import seen_in_pretraining

    if episodes < 1 or seed < 0:
        raise ValueError(f"need episodes >= 1 and seed >= 0, got {episodes} and {seed}")
    if video is not None:
        _video_writer()  # before the episodes: a missing extra failed only after them
    config = load_run_config(run_dir)
    env_kwargs = dict(config["env"])
    trained_task = env_kwargs.pop("task")
    task = task or trained_task
    resolve_env(task)
    model_path = Path(run_dir) / config["model"]
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} not found: the run stopped before its first save; continue it with "
                                f"`sb3-crptpro train --resume {run_dir}` if it has a checkpoint")  # fmt: skip
    mode = config["train"].get("mode", "reference")
    encoder = load_run_encoder(run_dir, config) if mode != "reference" else None  # read once
    env = encode_env(make_pixel_vec_env(task, 1, seed=seed, **env_kwargs), mode, encoder)  # type: ignore[arg-type]
    model = algo_class(config["train"]["algo"], mode).load(model_path, device=device, buffer_size=1)
    if env.action_space.shape != model.action_space.shape:
        env.close()
        raise ValueError(
            f"{task} has actions of shape {env.action_space.shape}, the model was trained on {trained_task} with "
            f"{model.action_space.shape}; pick a task with the same action size"
        )
    mine, theirs = model.action_space, env.action_space
    if not (np.array_equal(mine.low, theirs.low) and np.array_equal(mine.high, theirs.high)):  # type: ignore[attr-defined]
        env.close()  # SB3 rescales the policy's [-1, 1] output to the model's bounds: other bounds, other actions
        raise ValueError(
            f"{task} has action bounds [{_bounds(theirs)}], the model was trained on {trained_task} with "
            f"[{_bounds(mine)}]; pick a task with the same action bounds"
        )
    with episode_progress(episodes, label or f"evaluate {task}", progress) as bar, frame_threads():

        def count_episodes(locals_: dict[str, Any], _globals: dict[str, Any]) -> None:
            bar.update(int(locals_["done"]))

        returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=deterministic,
                                     return_episode_rewards=True, callback=count_episodes)  # fmt: skip
    env.close()
    if video is not None:
        with frame_threads():
            write_video(model, task, env_kwargs, Path(video), seed=seed, deterministic=deterministic, encoder=encoder)
    return {
        "task": task,
        "trained_task": trained_task,
        "episodes": episodes,
        **_episode_stats(list(returns)),
        "seen_in_pretraining": seen_in_pretraining(task, config["encoder"].get("tasks", [])),
    }


def random_policy_returns(
    task: str, episodes: int, seed: int = 100, progress: bool = False, **env_kwargs: Any
) -> dict[str, Any]:
    """Mean/std episode return of the uniform-random policy (the baseline every report should show).

    :param progress: show a bar over episodes (tqdm, stderr)
    """
    from sb3_crptpro.envs import make_pixel_env

    env = make_pixel_env(task, seed=seed, **env_kwargs)
    returns = []  # no torch here; rendering is per-frame work
    with episode_progress(episodes, f"random policy {task}", progress) as bar:
        for _ in range(episodes):
            env.reset()
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            bar.update(1)
    env.close()
    return {"task": task, "episodes": episodes, **_episode_stats(returns)}


def _video_writer() -> Any:
    """``imageio.v2``, with the ffmpeg plugin that writes mp4.

    :raises MissingRenderDependency: ``imageio-ffmpeg`` is not installed (the ``video`` extra); one line
    """
    from sb3_crptpro.envs import MissingRenderDependency

    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise MissingRenderDependency("writing mp4 needs imageio-ffmpeg: pip install 'sb3-crptpro[video]'") from None
    return imageio


def write_video(
    model: Any,
    task: str,
    env_kwargs: dict[str, Any],
    path: Path,
    seed: int = 100,
    deterministic: bool = True,
    encoder: str | Path | PretrainedArtifact | None = None,
) -> Path:
    """Record one episode of ``model`` on ``task`` (the agent's newest frame per step) as an mp4.

    :param encoder: artifact (path or loaded) whose projections the model acts on (embedding mode); ``None``: the
        model reads pixels
    """
    imageio = _video_writer()
    from sb3_crptpro.envs import make_pixel_env
    from sb3_crptpro.sb3.encode import FrozenEncoding

    encode = FrozenEncoding(encoder) if encoder is not None else None
    env = make_pixel_env(task, seed=seed, **env_kwargs)
    obs, _ = env.reset()
    frames, done = [obs[-3:].transpose(1, 2, 0)], False
    while not done:  # the policy's forward on one observation: one thread (extractor, FrozenEncoding)
        action, _ = model.predict(encode(obs[None])[0] if encode else obs, deterministic=deterministic)
        obs, _, terminated, truncated, _ = env.step(action)
        frames.append(obs[-3:].transpose(1, 2, 0))
        done = terminated or truncated
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    size = frames[0].shape[0]
    block = 16 if size % 16 == 0 else 1  # ffmpeg wants sides divisible by 16; otherwise let imageio resize
    imageio.mimwrite(path, frames, fps=30, macro_block_size=block)
    return path
