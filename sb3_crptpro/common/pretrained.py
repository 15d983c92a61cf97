"""Encoders shipped inside the package, addressed by name (the file's stem), like torchvision's ``weights=``.

Every place that takes an artifact path also takes a shipped name (``load_artifact("dmc-64px")``,
``crptpro_kwargs("dmc-64px")``, ``sb3-crptpro train --encoder dmc-64px``): an existing file always wins, then a
name without a folder or suffix is looked up in ``sb3_crptpro/pretrained/``. The weights travel in the wheel; nothing
is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["PRETRAINED_DIR", "list_pretrained", "pretrained_names", "resolve_artifact_path"]

#: folder of the shipped ``<name>.safetensors`` files (package data)
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


def pretrained_names() -> list[str]:
    """Names of the shipped encoders, sorted."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors"))


def resolve_artifact_path(path_or_name: str | Path) -> Path:
    """The file an artifact argument refers to: an existing path as given, else a shipped encoder's file.

    :param path_or_name: a ``.safetensors`` path, or the name of a shipped encoder (:func:`pretrained_names`)
    :raises FileNotFoundError: neither a file nor a shipped name; the message lists the shipped names
    """
    path = Path(path_or_name)
    if path.is_file():
        return path
    text = str(path_or_name)
    if path.suffix == "" and "/" not in text and "\\" not in text:
        shipped = PRETRAINED_DIR / f"{text}.safetensors"
        if shipped.is_file():
            return shipped
    names = ", ".join(pretrained_names()) or "none"
    raise FileNotFoundError(f"artifact {text} not found: neither a file nor a shipped encoder (shipped: {names})")


def list_pretrained() -> dict[str, dict[str, Any]]:
    """Each shipped encoder's name -> a summary of its metadata: domains, frame settings, budget, the command that
    made it, collapse diagnostics and state-probe results (where recorded), file size in bytes.

    Reading a shipped file verifies its tensor checksum (:func:`~sb3_crptpro.common.artifact.load_artifact`).
    """
    from sb3_crptpro.common.artifact import load_artifact

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
            "wall_time_s": stats.get("wall_time_s"),
            "command": meta.get("provenance", {}).get("command"),
            "diagnostics": stats.get("diagnostics", {}),
            "probe": meta.get("provenance", {}).get("probe", {}),
        }
    return out
