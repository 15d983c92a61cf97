"""Embedding mode: encode each pixel observation once, when the env produces it (issue 13).

A frozen encoder makes the conv pass a property of the *observation*, not of the gradient step. The reference
(and :class:`~sb3_crptpro.sb3.sac.AugmentedSAC`) re-encodes every sampled frame at every update: ~2 updates/s at batch
128 on 2 CPU cores. :class:`VecEncodeObservation` encodes each new observation once (a batch of ``n_envs``,
terminal observations in the same pass) and hands stock SB3 algorithms a small vector, so ``SAC("MlpPolicy", ...)``,
TQC and PPO train on it at close to state-based speed and the replay buffer stores ~1 KB per transition.

What is lost: the random-shift augmentation of the sampled frames (DrQ) and the trainable ``pre_fc`` layer of the
reference mode; the policy's first ``Linear`` layer takes the place of ``pre_fc``.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper

from sb3_crptpro.common.artifact import PretrainedArtifact, env_settings, load_artifact
from sb3_crptpro.common.threads import frame_threads, worker_threads
from sb3_crptpro.envs import make_pixel_vec_env
from sb3_crptpro.envs.factory import check_vec_env_time_limits
from sb3_crptpro.sb3.spaces import check_pixel_batch, check_pixel_space

__all__ = ["ENCODE_OUTPUTS", "EncodeObservation", "FrozenEncoding", "VecEncodeObservation", "make_encoded_vec_env"]

#: ``"projection"``: the projector output (``proj_dim``, 128 in the paper); ``"features"``: the conv features
#: (``repr_dim``, 32 x 25 x 25 = 20,000 at 64 px: 80 KB per float32 observation).
ENCODE_OUTPUTS = ("projection", "features")


class FrozenEncoding:
    """The frozen encoder (+ projector) of an artifact as a function ``uint8 pixels -> float32 vectors``.

    ``output="projection"`` with ``normalize=True`` (default) returns ``sqrt(D) * z / ||z||``: the direction the
    prototypes score (PAPER.md, "Prototypes"), scaled so that entries have unit mean square, a scale MLP
    initialisations expect, whatever the encoder (pretrained or random-init projections differ in norm by orders
    of magnitude).

    :param artifact: path or loaded artifact
    :param output: one of :data:`ENCODE_OUTPUTS`
    :param normalize: L2-normalise projections (scaled by ``sqrt(D)``); ignored for ``"features"``
    :param device: where the encoder runs
    :raises ValueError: unknown ``output``
    """

    def __init__(
        self,
        artifact: str | Path | PretrainedArtifact,
        output: str = "projection",
        normalize: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        if output not in ENCODE_OUTPUTS:
            raise ValueError(f"output must be one of {ENCODE_OUTPUTS}, got {output!r}")
        art = artifact if isinstance(artifact, PretrainedArtifact) else load_artifact(artifact)
        self.artifact = art
        self.output, self.normalize = output, normalize and output == "projection"
        self.device = torch.device(device)
        self.encoder = art.encoder.to(self.device).eval().requires_grad_(False)
        self.encoder.to(memory_format=torch.channels_last)
        self.projector = art.projector.to(self.device).eval().requires_grad_(False)
        self.dim = self.projector.linear.out_features if output == "projection" else art.repr_dim
        #: encoder passes, frames encoded and seconds spent encoding so far (read by tests and benchmarks)
        self.calls = 0
        self.frames = 0
        self.seconds = 0.0

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """Pixel shape ``(3 * frame_stack, H, W)`` the encoder takes."""
        return self.artifact.obs_shape

    @property
    def sha256(self) -> str | None:
        """The artifact's ``tensor_sha256`` (identifies the weights)."""
        return self.artifact.metadata.get("tensor_sha256")

    @torch.no_grad()
    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """``uint8 [B, C, H, W]`` -> ``float32 [B, dim]`` in one encoder pass; one ``[C, H, W]`` observation ->
        ``float32 [dim]`` (as SB3's ``predict`` takes one observation or a batch).

        :raises PixelSpaceError: not ``uint8`` (e.g. frames scaled to [0, 1]), channel-last, or another frame shape
            than the artifact's ``obs_shape`` (:func:`~sb3_crptpro.sb3.spaces.check_pixel_batch`)
        """
        pixels = np.asarray(pixels)
        if check_pixel_batch(pixels, type(self).__name__, self.obs_shape):
            return self(pixels[None])[0]
        start = time.perf_counter()
        x = torch.as_tensor(pixels, device=self.device).contiguous(memory_format=torch.channels_last)
        with frame_threads():  # per-frame work: one torch thread (common.threads)
            z = self.encoder(x)
            if self.output == "projection":
                z = self.projector(z)
                if self.normalize:
                    z = F.normalize(z, dim=1) * math.sqrt(z.shape[1])
        self.calls += 1
        self.frames += len(x)
        self.seconds += time.perf_counter() - start
        return z.cpu().numpy()

    @torch.no_grad()
    def unit_projection(self, vectors: torch.Tensor) -> torch.Tensor:
        """Normalised projections ``[B, proj_dim]`` of vectors returned by :meth:`__call__` (no conv pass).

        This is what the prototype kNN intrinsic reward needs, so it needs no second encoding."""
        z = self.projector(vectors) if self.output == "features" else vectors
        return F.normalize(z, dim=1)


class VecEncodeObservation(VecEnvWrapper):
    """Replace each pixel observation by its frozen-encoder vector, once, as the VecEnv produces it.

    Observation space: ``Box(-inf, inf, (dim,), float32)`` with ``dim`` = ``proj_dim`` (``"projection"``) or
    ``repr_dim`` (``"features"``). ``infos[i]["terminal_observation"]`` is encoded in the same encoder pass as the
    step's observations. Stack :class:`~sb3_crptpro.sb3.reward.PrototypeIntrinsicReward` directly on top to add the
    prototype kNN reward from these vectors without a second encoder pass.

    Example::

        pixels = make_dmc_vec_env("cartpole_swingup", 4, **env_settings(meta, action_repeat=8))
        venv = VecEncodeObservation(pixels, "encoder.safetensors")
        SAC("MlpPolicy", venv).learn(50_000)

    :param venv: pixel VecEnv matching the artifact's ``obs_shape`` (checked by
        :func:`~sb3_crptpro.sb3.spaces.check_pixel_space`)
    :param artifact: path, loaded artifact or :class:`FrozenEncoding`
    :param output: ``"projection"`` (default, 128 floats = 512 B per observation) or ``"features"``
    :param normalize: see :class:`FrozenEncoding`
    :param device: where the encoder runs
    :raises PixelSpaceError: the observations are not the artifact's raw pixels
    """

    def __init__(
        self,
        venv: VecEnv,
        artifact: str | Path | PretrainedArtifact | FrozenEncoding,
        output: str = "projection",
        normalize: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        encoding = (
            artifact if isinstance(artifact, FrozenEncoding) else FrozenEncoding(artifact, output, normalize, device)
        )
        meta = encoding.artifact.metadata
        check_pixel_space(venv.observation_space, type(self).__name__, encoding.obs_shape, meta.get("frame_stack"))
        check_vec_env_time_limits(venv)
        self.encoding = encoding
        space = gym.spaces.Box(-np.inf, np.inf, (encoding.dim,), np.float32)
        super().__init__(venv, observation_space=space)

    def reset(self) -> np.ndarray:
        return self.encoding(self.venv.reset())

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, dones, infos = self.venv.step_wait()
        ended = [i for i, done in enumerate(dones) if done and infos[i].get("terminal_observation") is not None]
        batch = np.concatenate([obs, np.stack([infos[i]["terminal_observation"] for i in ended])]) if ended else obs
        vectors = self.encoding(batch)
        for row, i in enumerate(ended, start=len(obs)):
            infos[i]["terminal_observation"] = vectors[row]
        return vectors[: len(obs)], rewards, dones, infos


class EncodeObservation(gym.ObservationWrapper):
    """Gymnasium wrapper: each observation of one env replaced by its frozen-encoder vector.

    The per-env form of :class:`VecEncodeObservation`, for encoding inside ``SubprocVecEnv`` workers so that the
    conv pass runs in parallel with the gradient step (:class:`~sb3_crptpro.sb3.overlap.OverlappedSAC`); see
    :func:`make_encoded_vec_env`. One frame per pass (no batching across envs); the artifact is loaded
    in the process that builds the wrapper. :class:`~sb3_crptpro.sb3.reward.PrototypeIntrinsicReward` on top of the
    VecEnv reads these vectors (it asks the envs for :attr:`encoder_info`).

    :param env: pixel env matching the artifact's ``obs_shape``
    :param artifact: path, loaded artifact or :class:`FrozenEncoding`
    :param output: ``"projection"`` (default) or ``"features"``
    :param normalize: see :class:`FrozenEncoding`
    :param torch_threads: if set, torch's thread count for this whole process (1 in ``SubprocVecEnv`` workers, so
        that a worker takes one core and leaves the rest to the gradient step), unless the user set
        ``OMP_NUM_THREADS`` (:func:`~sb3_crptpro.common.threads.worker_threads`)
    :raises PixelSpaceError: the observations are not the artifact's raw pixels
    """

    def __init__(
        self,
        env: gym.Env,
        artifact: str | Path | PretrainedArtifact | FrozenEncoding,
        output: str = "projection",
        normalize: bool = True,
        torch_threads: int | None = None,
    ) -> None:
        super().__init__(env)
        if torch_threads is not None:
            worker_threads(torch_threads)
        encoding = artifact if isinstance(artifact, FrozenEncoding) else FrozenEncoding(artifact, output, normalize)
        meta = encoding.artifact.metadata
        check_pixel_space(env.observation_space, type(self).__name__, encoding.obs_shape, meta.get("frame_stack"))
        self.encoding = encoding
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (encoding.dim,), np.float32)

    @property
    def encoder_info(self) -> tuple[str | None, str]:
        """``(tensor_sha256, output)``: what a wrapper in another process needs to read these vectors."""
        return self.encoding.sha256, self.encoding.output

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return self.encoding(observation[None])[0]


def make_encoded_vec_env(
    task: str,
    n_envs: int,
    artifact: str | Path | PretrainedArtifact,
    *,
    subprocess: bool = True,
    output: str = "projection",
    **kwargs: Any,
) -> VecEnv:
    """``n_envs`` pixel envs, each encoded where it runs (:class:`EncodeObservation`): with ``subprocess=True``
    one ``SubprocVecEnv`` worker per env (forkserver) renders and encodes while this process trains
    (:class:`~sb3_crptpro.sb3.overlap.OverlappedSAC`). Same observations as ``VecEncodeObservation(make_pixel_vec_env(
    ...))``, without the batching across envs; no ``terminal_observation`` is left in pixels.

    The artifact is loaded and the frame shape checked here, before any worker starts (a bad path or size raises in
    the caller, not in a worker); the workers receive the loaded artifact. ``image_size``, ``frame_stack`` and
    ``render`` default to the artifact's (:func:`~sb3_crptpro.common.artifact.env_settings`). Worker processes
    start with ``forkserver``: in a script, build the env under ``if __name__ == "__main__":``.

    :param task: DMC task or Gymnasium id (:func:`~sb3_crptpro.envs.make_pixel_env`)
    :param n_envs: number of envs (worker processes with ``subprocess=True``)
    :param artifact: artifact path or loaded artifact
    :param subprocess: ``SubprocVecEnv`` (default) or ``DummyVecEnv`` (encoding in this process)
    :param output: ``"projection"`` or ``"features"``
    :param kwargs: for :func:`~sb3_crptpro.envs.make_pixel_vec_env` (``seed``, ``monitor_dir``, ``action_repeat``,
        env settings); not ``vec_env_cls``, ``vec_env_kwargs`` nor ``wrapper_class``
    :raises ValueError: ``vec_env_cls``, ``vec_env_kwargs`` or ``wrapper_class`` given, unknown ``output``, or bad
        env arguments
    :raises FileNotFoundError: / :class:`~sb3_crptpro.common.artifact.ArtifactError`: the artifact cannot be read
    :raises PixelSpaceError: ``image_size`` / ``frame_stack`` that do not match the artifact's frames
    """
    if {"vec_env_cls", "vec_env_kwargs", "wrapper_class"} & set(kwargs):
        raise ValueError(
            "make_encoded_vec_env chooses vec_env_cls, vec_env_kwargs and wrapper_class itself (see subprocess=; its "
            "workers start with forkserver: fork hangs once this process has rendered)"
        )
    if output not in ENCODE_OUTPUTS:
        raise ValueError(f"output must be one of {ENCODE_OUTPUTS}, got {output!r}")
    art = artifact if isinstance(artifact, PretrainedArtifact) else load_artifact(artifact)
    settings = {k: v for k, v in env_settings(art.metadata, 1).items() if k != "action_repeat"}
    settings.update(kwargs)
    stack, size = settings["frame_stack"], settings["image_size"]
    if isinstance(stack, int) and isinstance(size, int) and stack > 0 and size > 0:  # else make_pixel_env explains
        frames = gym.spaces.Box(0, 255, (3 * stack, size, size), np.uint8)
        check_pixel_space(frames, "make_encoded_vec_env", art.obs_shape, art.metadata.get("frame_stack"))
    wrap = functools.partial(EncodeObservation, artifact=art, output=output, torch_threads=1 if subprocess else None)
    vec: dict[str, Any] = {"vec_env_cls": DummyVecEnv}
    if subprocess:
        vec = {"vec_env_cls": SubprocVecEnv, "vec_env_kwargs": {"start_method": "forkserver"}}
    return make_pixel_vec_env(task, n_envs, wrapper_class=wrap, **vec, **settings)
