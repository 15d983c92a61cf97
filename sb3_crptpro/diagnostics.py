"""Prototype coverage metrics (used by the pretrainer's logs, benchmarks, the demo report and its plots).

Everything here works on plain tensors: ``scores [N, M]`` are similarities of N embeddings to M prototypes (e.g. from
:func:`prototype_scores`), ``prototypes [M, D]`` are prototype rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "assignment_entropy",
    "pairwise_cosines",
    "per_domain_assignment",
    "prototype_cosine_stats",
    "prototype_scores",
    "prototype_usage",
    "usage_histogram",
]


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
    counts = usage_histogram(scores, m).double()
    p = counts / counts.sum()
    nz = p[p > 0]
    return {
        "n_used": float((counts > 0).sum()),
        "usage_entropy": float(-(nz * nz.log()).sum()) + 0.0,  # + 0.0: no "-0.00" for a single prototype
        "usage_entropy_max": float(torch.log(torch.tensor(float(min(len(scores), m))))),
    }


def usage_histogram(scores: torch.Tensor, num_protos: int | None = None) -> torch.Tensor:
    """Votes per prototype ``[M]`` (int64): each row of ``scores [N, M]`` votes for its argmax prototype."""
    return torch.bincount(scores.argmax(dim=1), minlength=num_protos or scores.shape[1])


def pairwise_cosines(prototypes: torch.Tensor) -> torch.Tensor:
    """All off-diagonal cosine similarities between prototype rows, ``[M * (M - 1)]`` float64."""
    c = F.normalize(prototypes.detach().double(), dim=1)
    s = c @ c.T
    return s[~torch.eye(len(c), dtype=torch.bool, device=c.device)]


def prototype_cosine_stats(prototypes: torch.Tensor) -> dict[str, float]:
    """Mean and max off-diagonal cosine similarity between prototype rows."""
    off = pairwise_cosines(prototypes)
    return {"cos_mean": float(off.mean()), "cos_max": float(off.max())}


def per_domain_assignment(scores_by_domain: dict[str, torch.Tensor], num_protos: int) -> dict[str, torch.Tensor]:
    """For each domain, the share of its samples whose argmax prototype is each prototype (rows sum to 1).

    Shows whether prototypes specialise by domain or are shared across domains.
    """
    return {
        domain: usage_histogram(scores, num_protos).double() / max(len(scores), 1)
        for domain, scores in scores_by_domain.items()
    }


@torch.no_grad()
def prototype_scores(
    encoder: torch.nn.Module,
    projector: torch.nn.Module,
    prototypes: torch.Tensor,
    obs: torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """Cosine similarity ``[N, M]`` of each observation's normalised projection to each (normalised) prototype.

    :param obs: pixels ``[N, C, H, W]`` (uint8 or float in ``[0, 255]``)
    """
    protos = F.normalize(prototypes.detach().float(), dim=1)
    out = []
    for chunk in obs.split(batch_size):
        z = F.normalize(projector(encoder(chunk)), dim=1)
        out.append(z @ protos.T)
    return torch.cat(out) if out else torch.zeros(0, len(protos))
