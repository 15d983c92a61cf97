"""Cross-domain random datasets: collection, on-disk format, sampling."""

from sb3_crptpro.data.collect import collect
from sb3_crptpro.data.domain import DomainDataset
from sb3_crptpro.data.sampler import SAMPLING_MODES, Batch, CrossDomainDataset, find_domain_dirs
from sb3_crptpro.data.store import DatasetError, manifest_sha256, read_manifest

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
