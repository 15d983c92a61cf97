"""The pretrained artifact: one safetensors file holding encoder + projector + prototypes and JSON metadata.

Loading never unpickles anything. The metadata (safetensors' string header) records the format version, package
version, observation shape, frame stack, image size, render preset, tasks and dataset manifest hashes, the
pretraining config and training stats, plus the sha256 of all tensor bytes: safetensors checks the header and
sizes, and the hash catches a flipped byte inside a tensor.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sb3_crptpro._compat import check_format, give_default_permissions
from sb3_crptpro._version import __version__
from sb3_crptpro.common.networks import Encoder, Projector, Prototypes

__all__ = [
    "ARTIFACT_FORMAT_VERSION",
    "PRETRAINED_DIR",
    "ArtifactError",
    "PretrainedArtifact",
    "env_settings",
    "load_artifact",
    "loss_description",
    "pretrained_names",
    "resolve_artifact_path",
    "save_artifact",
]

ARTIFACT_FORMAT = "sb3-crptpro-encoder"
ARTIFACT_FORMAT_VERSION = 1
_META_KEY = "sb3_crptpro"


#: folder of the shipped ``<name>.safetensors`` files (package data)
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


def pretrained_names() -> list[str]:
    """Names of the shipped encoders, sorted."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors"))


def resolve_artifact_path(path_or_name: str | Path) -> Path:
    """The file an artifact argument refers to: an existing path as given, else a shipped encoder's file.

    :param path_or_name: a ``.safetensors`` path, or the name of a shipped encoder (:func:`pretrained_names`)
    :raises IsADirectoryError: a folder; the message names the artifacts inside it, if any
    :raises FileNotFoundError: neither a file nor a shipped name; the message lists the shipped names
    """
    path = Path(path_or_name)
    if path.is_file():
        return path
    if path.is_dir():
        inside = sorted(str(p) for p in path.glob("*.safetensors"))
        hint = f"pass one of the artifacts in it: {', '.join(inside)}" if inside else "it holds no .safetensors file"
        raise IsADirectoryError(f"artifact {path} is a folder, not an artifact file: {hint} (or a shipped encoder's "
                                f"name: {', '.join(pretrained_names()) or 'none'})")  # fmt: skip
    text = str(path_or_name)
    if path.suffix == "" and "/" not in text and "\\" not in text:
        shipped = PRETRAINED_DIR / f"{text}.safetensors"
        if shipped.is_file():
            return shipped
    names = ", ".join(pretrained_names()) or "none"
    raise FileNotFoundError(f"artifact {text} not found: neither a file nor a shipped encoder (shipped: {names})")


class ArtifactError(ValueError):
    """An artifact file is unreadable, tampered with, truncated, or of an unknown format version."""


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


@dataclass
class PretrainedArtifact:
    """A loaded artifact: ready-to-use modules plus the metadata they were saved with."""

    encoder: Encoder
    projector: Projector
    prototypes: Prototypes
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return tuple(self.metadata["obs_shape"])  # type: ignore[return-value]

    @property
    def frame_stack(self) -> int:
        return int(self.metadata["frame_stack"])

    @property
    def image_size(self) -> int:
        return int(self.metadata["image_size"])

    @property
    def render_preset(self) -> str | None:
        return self.metadata.get("render")

    @property
    def repr_dim(self) -> int:
        return self.encoder.repr_dim


def save_artifact(
    path: str | Path,
    encoder: Encoder,
    projector: Projector,
    prototypes: Prototypes,
    config: dict[str, Any],
    stats: dict[str, Any],
    *,
    render: str | None = None,
    tasks: list[str] | None = None,
    datasets: dict[str, str] | None = None,
    frame_stack: int | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write the artifact atomically (temp file, fsync, rename).

    :param config: the pretraining config (``dataclasses.asdict(PretrainConfig)``)
    :param stats: training stats (updates, final losses, wall time, ...)
    :param render: render preset of the pretraining data
    :param tasks: pretraining tasks
    :param datasets: ``{task: manifest sha256}`` of the datasets used
    :param frame_stack: frames per observation (default: channels / 3)
    :param provenance: how the artifact was made, e.g. ``{"command": "sb3-crptpro pretrain ...", "seed": 0}``
        (shown by ``sb3-crptpro inspect``)
    :raises IsADirectoryError: ``path`` is a folder (nothing is written)
    """
    path = Path(path)
    tensors = {**_prefixed("encoder", encoder), **_prefixed("projector", projector)}
    tensors.update(_prefixed("prototypes", prototypes))
    obs_shape = list(encoder.obs_shape)
    metadata = {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_FORMAT_VERSION,
        "package_version": __version__,
        "obs_shape": obs_shape,
        "frame_stack": frame_stack if frame_stack is not None else obs_shape[0] // 3,
        "image_size": obs_shape[1],
        "render": render,
        "tasks": tasks or [],
        "datasets": datasets or {},
        "repr_dim": encoder.repr_dim,
        "proj_dim": projector.linear.out_features,
        "num_protos": prototypes.linear.out_features,
        "n_filters": encoder.convs[0].out_channels,
        "n_layers": sum(isinstance(m, torch.nn.Conv2d) for m in encoder.convs),
        "config": config,
        "stats": stats,
        "provenance": provenance or {},
        "tensor_shapes": {k: list(v.shape) for k, v in tensors.items()},
        "tensor_sha256": _tensor_digest(tensors),
    }
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give the artifact's file path ({path / 'encoder.safetensors'})")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(metadata)})
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    give_default_permissions(tmp)
    os.replace(tmp, path)
    return path


def _read_metadata(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = fh.metadata() or {}
    if _META_KEY not in header:
        raise ArtifactError(f"{path} is a safetensors file but not a sb3-crptpro artifact (no metadata)")
    metadata = json.loads(header[_META_KEY])
    check_format(
        metadata, source=str(path), name=ARTIFACT_FORMAT, max_version=ARTIFACT_FORMAT_VERSION, error=ArtifactError
    )
    return metadata


def load_artifact(path: str | Path, device: str | torch.device = "cpu") -> PretrainedArtifact:
    """Load and verify an artifact written by :func:`save_artifact` (no pickle involved).

    :param path: the file, or the name of an encoder shipped with the package (e.g. ``"dmc-64px"``; see
        :func:`~sb3_crptpro.common.pretrained.list_pretrained`)
    :raises IsADirectoryError: ``path`` is a folder (the message names the artifacts inside it)
    :raises FileNotFoundError: when it is neither a file nor a shipped name (the message lists the shipped names)
    :raises ArtifactError: when it is truncated, tampered with, or of an unknown format version
    """
    path = resolve_artifact_path(path)
    try:
        metadata = _read_metadata(path)
        tensors = load_file(str(path))
    except (SafetensorError, json.JSONDecodeError, OSError) as exc:
        raise ArtifactError(f"{path} is not a readable artifact (truncated or corrupted?): {exc}") from exc
    expected = metadata["tensor_shapes"]
    if set(expected) != set(tensors):
        raise ArtifactError(f"{path}: tensors {sorted(tensors)} do not match the metadata {sorted(expected)}")
    for name, shape in expected.items():
        if list(tensors[name].shape) != shape:
            raise ArtifactError(f"{path}: tensor {name} has shape {list(tensors[name].shape)}, metadata says {shape}")
    if _tensor_digest(tensors) != metadata["tensor_sha256"]:
        raise ArtifactError(f"{path}: tensor data does not match its recorded sha256 (file modified or corrupted)")

    encoder = Encoder(tuple(metadata["obs_shape"]), n_filters=metadata["n_filters"], n_layers=metadata["n_layers"])
    if encoder.repr_dim != metadata["repr_dim"]:
        raise ArtifactError(f"{path}: encoder repr_dim {encoder.repr_dim} != metadata {metadata['repr_dim']}")
    projector = Projector(metadata["repr_dim"], metadata["proj_dim"])
    prototypes = Prototypes(metadata["proj_dim"], metadata["num_protos"])
    for prefix, module in (("encoder", encoder), ("projector", projector), ("prototypes", prototypes)):
        state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        module.load_state_dict(state, strict=True)
        module.to(device)
    return PretrainedArtifact(encoder, projector, prototypes, metadata, path)


def loss_description(config: dict[str, Any]) -> str:
    """The pretraining loss an artifact's ``config`` metadata records, in words: ``"CRPTpro"``, or with the
    auxiliary inverse-dynamics loss ``"CRPTpro + inverse dynamics (weight 1)"``. Configs older than that field read
    it as 0 (off)."""
    weight = float(config.get("inverse_dynamics") or 0.0)
    return "CRPTpro" + (f" + inverse dynamics (weight {weight:g})" if weight else "")


def env_settings(metadata: dict[str, Any], action_repeat: int) -> dict[str, Any]:
    """Env keyword arguments that match an artifact: its image size, frame stack and (first) render preset.

    ``make_pixel_vec_env(task, n, **env_settings(artifact.metadata, action_repeat=4))`` builds envs whose frames the
    artifact's encoder takes.

    :param metadata: :attr:`PretrainedArtifact.metadata`
    :param action_repeat: agent-step action repeat (not a property of the encoder)
    :return: ``{"image_size", "frame_stack", "action_repeat", "render"}``
    """
    render = str(metadata.get("render") or "paper").split(",")[0]
    return {
        "image_size": int(metadata["image_size"]),
        "frame_stack": int(metadata["frame_stack"]),
        "action_repeat": action_repeat,
        "render": render,
    }
