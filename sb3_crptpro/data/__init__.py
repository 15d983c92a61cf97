"""Cross-domain random datasets: collection, on-disk format, sampling (names are imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sb3_crptpro._compat import lazy_attributes

if TYPE_CHECKING:
    from sb3_crptpro.data.collection import collect
    from sb3_crptpro.data.domain import DomainDataset
    from sb3_crptpro.data.sampler import SAMPLING_MODES, Batch, CrossDomainDataset, find_domain_dirs
    from sb3_crptpro.data.store import DatasetError, manifest_sha256, read_manifest

_LAZY = {
    "collect": "sb3_crptpro.data.collection",
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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
