"""Encoders shipped inside the package, addressed by name (the file's stem), like torchvision's ``weights=``.

Every place that takes an artifact path also takes a shipped name (``load_artifact("dmc-64px")``,
``crptpro_kwargs("dmc-64px")``, ``sb3-crptpro train --encoder dmc-64px``): an existing file always wins, then a
name without a folder or suffix is looked up in ``sb3_crptpro/pretrained/``. The weights travel in the wheel; nothing
is downloaded.
"""

from __future__ import annotations

from typing import Any

from sb3_crptpro.common.artifact import PRETRAINED_DIR, load_artifact, loss_description, pretrained_names

__all__ = ["DEFAULT_PRETRAINED", "list_pretrained"]

#: the shipped encoder the demo, the README's examples and ``benchmarks/six_task.py`` use: CRPTpro's loss plus an
#: inverse-dynamics loss; ahead of ``dmc-64px`` (CRPTpro's loss alone, the default before it) on the means of 5 of
#: the 6 standard DMC tasks at 100k env steps (``docs/pretrained.md``)
DEFAULT_PRETRAINED = "dmc-64px-invdyn"


def list_pretrained() -> dict[str, dict[str, Any]]:
    """Each shipped encoder's name -> a summary of its metadata: domains, frame settings, budget, the weight of the
    inverse-dynamics loss added to CRPTpro's (``inverse_dynamics``, 0.0 = CRPTpro's loss alone), the whole loss in
    words (``loss``, :func:`~sb3_crptpro.common.artifact.loss_description`), whether it is
    :data:`DEFAULT_PRETRAINED` (``default``), the command that made it, collapse diagnostics and state-probe results
    (where recorded), file size in bytes.

    Reading a shipped file verifies its tensor checksum (:func:`~sb3_crptpro.common.artifact.load_artifact`).
    """
    out: dict[str, dict[str, Any]] = {}
    for name in pretrained_names():
        path = PRETRAINED_DIR / f"{name}.safetensors"
        meta = load_artifact(path).metadata
        stats, config = meta.get("stats", {}), meta.get("config", {})
        out[name] = {
            "path": str(path),
            "bytes": path.stat().st_size,
            "tasks": meta.get("tasks", []),
            "image_size": meta["image_size"],
            "frame_stack": meta["frame_stack"],
            "render": meta.get("render"),
            "updates": stats.get("updates"),
            "batch_size": config.get("batch_size"),
            "seed": config.get("seed"),
            "inverse_dynamics": config.get("inverse_dynamics", 0.0),
            "loss": loss_description(config),
            "default": name == DEFAULT_PRETRAINED,
            "wall_time_s": stats.get("wall_time_s"),
            "command": meta.get("provenance", {}).get("command"),
            "diagnostics": stats.get("diagnostics", {}),
            "probe": meta.get("provenance", {}).get("probe", {}),
        }
    return out
