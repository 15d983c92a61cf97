"""Cross-domain random datasets: collection, on-disk format, sampling (names are imported on first use)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sb3_crptpro.data.collect import collect
    from sb3_crptpro.data.domain import DomainDataset
    from sb3_crptpro.data.sampler import SAMPLING_MODES, Batch, CrossDomainDataset, find_domain_dirs
    from sb3_crptpro.data.store import DatasetError, manifest_sha256, read_manifest

_LAZY = {
    "collect": "sb3_crptpro.data.collect",
    "DomainDataset": "sb3_crptpro.data.domain",
    "SAMPLING_MODES": "sb3_crptpro.data.sampler",
    "Batch": "sb3_crptpro.data.sampler",
    "CrossDomainDataset": "sb3_crptpro.data.sampler",
    "find_domain_dirs": "sb3_crptpro.data.sampler",
    "DatasetError": "sb3_crptpro.data.store",
    "manifest_sha256": "sb3_crptpro.data.store",
    "read_manifest": "sb3_crptpro.data.store",
}
__all__ = [
    "SAMPLING_MODES",
    "Batch",
    "CrossDomainDataset",
    "DatasetError",
    "DomainDataset",
    "collect",
    "find_domain_dirs",
    "manifest_sha256",
    "read_manifest",
]


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562), so that light entry points do not pay for torch/SB3."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
