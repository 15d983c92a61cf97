"""Prototype coverage metrics (used by the pretrainer's logs, benchmarks and plots)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["assignment_entropy", "prototype_cosine_stats", "prototype_usage"]


def assignment_entropy(q: torch.Tensor) -> float:
    """Mean entropy (nats) of the rows of a soft assignment matrix ``q [B, M]``."""
    q = q.double().clamp_min(1e-30)
    return float(-(q * q.log()).sum(dim=1).mean())


def prototype_usage(scores: torch.Tensor, num_protos: int | None = None) -> dict[str, float]:
    """Hard usage of prototypes by a batch: each row of ``scores [B, M]`` votes for its argmax prototype.

    :return: ``n_used`` (prototypes with at least one vote), ``usage_entropy`` (nats, of the vote histogram) and
        ``usage_entropy_max`` (``log(min(B, M))``, the best possible for this batch)
    """
    m = num_protos or scores.shape[1]
    counts = torch.bincount(scores.argmax(dim=1), minlength=m).double()
    p = counts / counts.sum()
    nz = p[p > 0]
    return {
        "n_used": float((counts > 0).sum()),
        "usage_entropy": float(-(nz * nz.log()).sum()),
        "usage_entropy_max": float(torch.log(torch.tensor(float(min(len(scores), m))))),
    }


def prototype_cosine_stats(prototypes: torch.Tensor) -> dict[str, float]:
    """Mean and max off-diagonal cosine similarity between prototype rows."""
    c = F.normalize(prototypes.detach().double(), dim=1)
    s = c @ c.T
    off = s[~torch.eye(len(c), dtype=torch.bool, device=c.device)]
    return {"cos_mean": float(off.mean()), "cos_max": float(off.max())}
