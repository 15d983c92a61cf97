"""sb3-crptpro: CRPTpro (cross-domain random pre-training with prototypes) for Stable-Baselines3.

Importing the package prepares the process for headless rendering (``MUJOCO_GL=egl`` unless the user chose a
backend, and libraries that bundle LLVM loaded before the first GL context: see :mod:`sb3_crptpro.common._gl`). Public
names are imported on first use, so that ``import sb3_crptpro`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sb3_crptpro._compat import lazy_attributes
from sb3_crptpro._moved import install_moved_module_finder
from sb3_crptpro.common._gl import prepare_rendering

prepare_rendering()
install_moved_module_finder()  # 0.1.0 module paths (saved models, checkpoints, old imports) still import

from sb3_crptpro._version import __version__  # noqa: E402

if TYPE_CHECKING:
    from sb3_crptpro.app.demo import DemoConfig, run_demo
    from sb3_crptpro.app.evaluation import evaluate_run, random_policy_returns
    from sb3_crptpro.app.training import TRAIN_MODES, TRAIN_PRESETS, TrainConfig, train
    from sb3_crptpro.common.artifact import (
        ArtifactError,
        PretrainedArtifact,
        env_settings,
        load_artifact,
        save_artifact,
    )
    from sb3_crptpro.common.pretrained import list_pretrained
    from sb3_crptpro.data import CrossDomainDataset, DatasetError, DomainDataset, collect
    from sb3_crptpro.envs import (
        RENDER_PRESETS,
        DMCConfig,
        DMCPixelEnv,
        GymPixelEnv,
        PixelEnv,
        available_tasks,
        check_time_limit,
        make_dmc_env,
        make_dmc_vec_env,
        make_pixel_env,
        make_pixel_vec_env,
        resolve_env,
        resolve_task,
    )
    from sb3_crptpro.pretraining.pipeline import pretrain_encoder
    from sb3_crptpro.pretraining.pretrainer import (
        PRETRAIN_PRESETS,
        CollapseWarning,
        PretrainConfig,
        Pretrainer,
        save_random_init,
    )
    from sb3_crptpro.sb3.buffers import FrameStackReplayBuffer
    from sb3_crptpro.sb3.drq import DrQSAC, SharedEncoderSACPolicy, drq_kwargs
    from sb3_crptpro.sb3.encode import EncodeObservation, FrozenEncoding, VecEncodeObservation, make_encoded_vec_env
    from sb3_crptpro.sb3.extractor import CRPTproExtractor, EncoderWeights, crptpro_kwargs
    from sb3_crptpro.sb3.overlap import OverlappedSAC, OverlappedTQC, OverlapTrainingMixin, with_fused_adam
    from sb3_crptpro.sb3.policies import LayerNormCriticSACPolicy, LayerNormCriticTQCPolicy, embedding_preset_kwargs
    from sb3_crptpro.sb3.reward import IntrinsicRewardCallback, PrototypeIntrinsicReward
    from sb3_crptpro.sb3.sac import (
        PAPER_SAC_PRESET,
        AugmentedFrameStackReplayBuffer,
        AugmentedReplayBuffer,
        AugmentedSAC,
        AugmentedTQC,
    )
    from sb3_crptpro.sb3.spaces import PixelSpaceError, check_pixel_space
    from sb3_crptpro.sb3.threads import UpdateThreadsCallback

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
    "DrQSAC",
    "EncodeObservation",
    "EncoderWeights",
    "FrameStackReplayBuffer",
    "FrozenEncoding",
    "GymPixelEnv",
    "IntrinsicRewardCallback",
    "LayerNormCriticSACPolicy",
    "LayerNormCriticTQCPolicy",
    "OverlapTrainingMixin",
    "OverlappedSAC",
    "OverlappedTQC",
    "PixelEnv",
    "PixelSpaceError",
    "PretrainConfig",
    "PretrainedArtifact",
    "Pretrainer",
    "PrototypeIntrinsicReward",
    "SharedEncoderSACPolicy",
    "TrainConfig",
    "UpdateThreadsCallback",
    "VecEncodeObservation",
    "__version__",
    "available_tasks",
    "check_pixel_space",
    "check_time_limit",
    "collect",
    "crptpro_kwargs",
    "drq_kwargs",
    "embedding_preset_kwargs",
    "env_settings",
    "evaluate_run",
    "list_pretrained",
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
    "save_random_init",
    "train",
    "with_fused_adam",
]
_MODULE_OF = {
    "envs": [
        *["RENDER_PRESETS", "DMCConfig", "DMCPixelEnv", "GymPixelEnv", "PixelEnv", "available_tasks"],
        "check_time_limit",
        *["make_dmc_env", "make_dmc_vec_env", "make_pixel_env", "make_pixel_vec_env", "resolve_env", "resolve_task"],
    ],
    "data": ["CrossDomainDataset", "DatasetError", "DomainDataset", "collect"],
    "common.artifact": ["ArtifactError", "PretrainedArtifact", "env_settings", "load_artifact", "save_artifact"],
    "common.pretrained": ["list_pretrained"],
    "pretraining.pretrainer": [
        "PRETRAIN_PRESETS",
        "CollapseWarning",
        "PretrainConfig",
        "Pretrainer",
        "save_random_init",
    ],
    "pretraining.pipeline": ["pretrain_encoder"],
    "sb3.extractor": ["CRPTproExtractor", "EncoderWeights", "crptpro_kwargs"],
    "sb3.reward": ["IntrinsicRewardCallback", "PrototypeIntrinsicReward"],
    "sb3.threads": ["UpdateThreadsCallback"],
    "sb3.encode": ["EncodeObservation", "FrozenEncoding", "VecEncodeObservation", "make_encoded_vec_env"],
    "sb3.overlap": ["OverlapTrainingMixin", "OverlappedSAC", "OverlappedTQC", "with_fused_adam"],
    "sb3.policies": ["LayerNormCriticSACPolicy", "LayerNormCriticTQCPolicy", "embedding_preset_kwargs"],
    "sb3.spaces": ["PixelSpaceError", "check_pixel_space"],
    "sb3.sac": [
        *["PAPER_SAC_PRESET", "AugmentedFrameStackReplayBuffer", "AugmentedReplayBuffer"],
        *["AugmentedSAC", "AugmentedTQC"],
    ],
    "sb3.buffers": ["FrameStackReplayBuffer"],
    "sb3.drq": ["DrQSAC", "SharedEncoderSACPolicy", "drq_kwargs"],
    "app.training": ["TRAIN_MODES", "TRAIN_PRESETS", "TrainConfig", "train"],
    "app.evaluation": ["evaluate_run", "random_policy_returns"],
    "app.demo": ["DemoConfig", "run_demo"],
}
_LAZY = {name: f"sb3_crptpro.{module}" for module, names in _MODULE_OF.items() for name in names}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
