"""sb3-crptpro: CRPTpro (cross-domain random pre-training with prototypes) for Stable-Baselines3.

Importing the package prepares the process for headless rendering (``MUJOCO_GL=egl`` unless the user chose a
backend, and libraries that bundle LLVM loaded before the first GL context: see :mod:`sb3_crptpro._gl`). Public
names are imported on first use, so that ``import sb3_crptpro`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sb3_crptpro._compat import lazy_attributes
from sb3_crptpro._gl import prepare_rendering

prepare_rendering()

from sb3_crptpro._version import __version__  # noqa: E402

if TYPE_CHECKING:
    from sb3_crptpro.artifact import ArtifactError, PretrainedArtifact, load_artifact, save_artifact
    from sb3_crptpro.buffers import FrameStackReplayBuffer
    from sb3_crptpro.data import CrossDomainDataset, DatasetError, DomainDataset, collect
    from sb3_crptpro.demo import DemoConfig, run_demo
    from sb3_crptpro.encode import EncodeObservation, FrozenEncoding, VecEncodeObservation, make_encoded_vec_env
    from sb3_crptpro.envs import (
        RENDER_PRESETS,
        DMCConfig,
        DMCPixelEnv,
        GymPixelEnv,
        PixelEnv,
        available_tasks,
        make_dmc_env,
        make_dmc_vec_env,
        make_pixel_env,
        make_pixel_vec_env,
        resolve_env,
        resolve_task,
    )
    from sb3_crptpro.evaluation import evaluate_run, random_policy_returns
    from sb3_crptpro.extractor import CRPTproExtractor, EncoderWeights, crptpro_kwargs
    from sb3_crptpro.overlap import OverlappedSAC, OverlappedTQC, OverlapTrainingMixin
    from sb3_crptpro.pipeline import pretrain_encoder
    from sb3_crptpro.pretrain import PRETRAIN_PRESETS, CollapseWarning, PretrainConfig, Pretrainer
    from sb3_crptpro.reward import PrototypeIntrinsicReward
    from sb3_crptpro.sac import (
        PAPER_SAC_PRESET,
        AugmentedFrameStackReplayBuffer,
        AugmentedReplayBuffer,
        AugmentedSAC,
        AugmentedTQC,
    )
    from sb3_crptpro.spaces import PixelSpaceError, check_pixel_space
    from sb3_crptpro.training import TRAIN_MODES, TRAIN_PRESETS, TrainConfig, train

__all__ = [
    "PAPER_SAC_PRESET",
    "PRETRAIN_PRESETS",
    "RENDER_PRESETS",
    "TRAIN_MODES",
    "TRAIN_PRESETS",
    "ArtifactError",
    "AugmentedFrameStackReplayBuffer",
    "AugmentedReplayBuffer",
    "AugmentedSAC",
    "AugmentedTQC",
    "CRPTproExtractor",
    "CollapseWarning",
    "CrossDomainDataset",
    "DMCConfig",
    "DMCPixelEnv",
    "DatasetError",
    "DemoConfig",
    "DomainDataset",
    "EncodeObservation",
    "EncoderWeights",
    "FrameStackReplayBuffer",
    "FrozenEncoding",
    "GymPixelEnv",
    "OverlapTrainingMixin",
    "OverlappedSAC",
    "OverlappedTQC",
    "PixelEnv",
    "PixelSpaceError",
    "PretrainConfig",
    "PretrainedArtifact",
    "Pretrainer",
    "PrototypeIntrinsicReward",
    "TrainConfig",
    "VecEncodeObservation",
    "__version__",
    "available_tasks",
    "check_pixel_space",
    "collect",
    "crptpro_kwargs",
    "evaluate_run",
    "load_artifact",
    "make_dmc_env",
    "make_dmc_vec_env",
    "make_encoded_vec_env",
    "make_pixel_env",
    "make_pixel_vec_env",
    "pretrain_encoder",
    "random_policy_returns",
    "resolve_env",
    "resolve_task",
    "run_demo",
    "save_artifact",
    "train",
]
_MODULE_OF = {
    "envs": [
        *["RENDER_PRESETS", "DMCConfig", "DMCPixelEnv", "GymPixelEnv", "PixelEnv", "available_tasks"],
        *["make_dmc_env", "make_dmc_vec_env", "make_pixel_env", "make_pixel_vec_env", "resolve_env", "resolve_task"],
    ],
    "data": ["CrossDomainDataset", "DatasetError", "DomainDataset", "collect"],
    "artifact": ["ArtifactError", "PretrainedArtifact", "load_artifact", "save_artifact"],
    "pretrain": ["PRETRAIN_PRESETS", "CollapseWarning", "PretrainConfig", "Pretrainer"],
    "extractor": ["CRPTproExtractor", "EncoderWeights", "crptpro_kwargs"],
    "reward": ["PrototypeIntrinsicReward"],
    "encode": ["EncodeObservation", "FrozenEncoding", "VecEncodeObservation", "make_encoded_vec_env"],
    "overlap": ["OverlapTrainingMixin", "OverlappedSAC", "OverlappedTQC"],
    "spaces": ["PixelSpaceError", "check_pixel_space"],
    "sac": [
        *["PAPER_SAC_PRESET", "AugmentedFrameStackReplayBuffer", "AugmentedReplayBuffer"],
        *["AugmentedSAC", "AugmentedTQC"],
    ],
    "buffers": ["FrameStackReplayBuffer"],
    "training": ["TRAIN_MODES", "TRAIN_PRESETS", "TrainConfig", "train"],
    "evaluation": ["evaluate_run", "random_policy_returns"],
    "pipeline": ["pretrain_encoder"],
    "demo": ["DemoConfig", "run_demo"],
}
_LAZY = {name: f"sb3_crptpro.{module}" for module, names in _MODULE_OF.items() for name in names}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
