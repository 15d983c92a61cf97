"""Collect and pretrain in one call: the shortest path from nothing to an encoder artifact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["pretrain_encoder"]


def pretrain_encoder(
    tasks: Sequence[str],
    out: str | Path,
    *,
    transitions: int = 1000,
    updates: int = 300,
    batch_size: int = 64,
    image_size: int = 84,
    action_repeat: int = 2,
    render: str = "fast",
    preset: str = "default",
    seed: int = 0,
    progress: bool = True,
    **pretrain_overrides: Any,
) -> Path:
    """Collect random data from ``tasks`` into ``<out>/data``, pretrain CRPTpro and write ``<out>/encoder.safetensors``.

    An existing complete artifact is reused; collection resumes. Further
    :class:`~sb3_crptpro.pretraining.pretrainer.PretrainConfig` fields go in ``pretrain_overrides`` (e.g.
    ``alpha=0``, ``num_protos=128``) on top of ``preset`` (a
    :data:`~sb3_crptpro.pretraining.pretrainer.PRETRAIN_PRESETS` name: ``default`` or ``paper``, the reference
    exactly).

    :return: the artifact path
    """
    from sb3_crptpro.data.collection import collect
    from sb3_crptpro.data.sampler import CrossDomainDataset
    from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer

    out = Path(out)
    artifact = out / "encoder.safetensors"
    if artifact.is_file():
        return artifact
    collect(list(tasks), out / "data", transitions_per_domain=transitions, image_size=image_size,
            action_repeat=action_repeat, render=render, seed=seed, progress=progress)  # fmt: skip
    config = PretrainConfig.from_preset(preset, updates=updates, batch_size=batch_size, seed=seed, progress=progress,
                                        log_every=max(updates // 20, 1), **pretrain_overrides)  # fmt: skip
    trainer = Pretrainer(config, CrossDomainDataset(out / "data"), out / "pretrain")
    stats = trainer.fit(resume=True)
    return trainer.save(artifact, stats)  # type: ignore[return-value]
