"""Prototype coverage and collapse metrics (used by the pretrainer's logs, benchmarks, the demo report and its plots).

Everything here works on plain tensors: ``scores [N, M]`` are similarities of N embeddings to M prototypes (e.g. from
:func:`prototype_scores`), ``prototypes [M, D]`` are prototype rows, ``z [N, D]`` are projections.

Collapse: a prototype loss can sit at its trivial solution, ``L_comp = log(M)`` with every frame on one
prototype, while its curve looks like a smooth decrease. :func:`collapse_diagnostics` measures it on a fixed probe
batch: the effective rank of the L2-normalised, *uncentred* projections (``~1.5-3`` when collapsed, ``~15-80`` for a
random-init encoder; the rank of batch-centred projections stays high in a collapsed run, because the tiny residual
around the shared direction is still spread out), their mean pairwise cosine, nearest-prototype usage per domain and
the margin ``log(M) - L_comp``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "COLLAPSE_THRESHOLDS",
    "assignment_entropy",
    "collapse_diagnostics",
    "collapse_verdict",
    "collapse_warning",
    "effective_rank",
    "mean_pairwise_cosine",
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


def effective_rank(z: torch.Tensor) -> float:
    """Effective rank (Roy & Vetterli 2007) of the L2-normalised, uncentred rows of ``z [N, D]``.

    ``exp(H(p))`` with ``p`` the singular values divided by their sum: 1 when all rows are parallel, ``min(N, D)`` when
    the singular values are equal. Rows are *not* mean-centred (see the module docstring).
    """
    if len(z) == 0:
        return float("nan")
    s = torch.linalg.svdvals(F.normalize(z.detach().double(), dim=1))
    p = s / s.sum().clamp_min(1e-300)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def mean_pairwise_cosine(z: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct rows of ``z [N, D]`` (1 when collapsed to one direction)."""
    n = len(z)
    if n < 2:
        return float("nan")
    zn = F.normalize(z.detach().double(), dim=1)
    total = zn.sum(dim=0).pow(2).sum() - n  # sum over i != j of <z_i, z_j>
    return float(total / (n * (n - 1)))


#: the targets of a healthy run, above the collapse line (:func:`collapse_warning`): effective rank >= 20 in every
#: domain, >= 64 distinct nearest prototypes over the probe frames, no prototype nearest to more than 20% of them.
#: Set from the runs behind :func:`collapse_warning` (collapsed runs: rank 1.5-3.3; the default preset at 600
#: updates of batch 64, 64 px: worst domain 19.9-26.9, largest share <= 14%; docs page "Does it help?")
COLLAPSE_THRESHOLDS = {"eff_rank_min": 20.0, "n_used_min": 64, "max_share_max": 0.2}


def collapse_diagnostics(
    z_raw: torch.Tensor,
    z_read: torch.Tensor,
    prototypes: torch.Tensor,
    domains: Sequence[str],
    loss_comp: float | None = None,
) -> dict[str, float]:
    """Collapse metrics of one probe batch, overall and per domain (keys ``<metric>/<domain>``).

    :param z_raw: target projections ``[N, D]`` as the projector outputs them (for the rank and cosine)
    :param z_read: the same projections as consumers read them (after a stored centre, if any) for prototype usage;
        equal to ``z_raw`` without centring
    :param prototypes: ``[M, D]``
    :param domains: the domain of each row (length N)
    :param loss_comp: comparative loss on the probe batch; gives ``margin = log(M) - loss_comp``
    :return: ``eff_rank``, ``mean_cos``, ``n_used``, ``max_share``, ``usage_entropy`` (nats), ``margin`` and the
        same per domain (``eff_rank/<domain>``...), plus ``eff_rank_min`` and ``n_used_min`` over domains
    """
    if len(domains) != len(z_raw) or z_raw.shape != z_read.shape:
        raise ValueError(f"need one domain per row and equal shapes, got {len(domains)}, {z_raw.shape}, {z_read.shape}")
    m = len(prototypes)
    scores = F.normalize(z_read.detach().float(), dim=1) @ F.normalize(prototypes.detach().float(), dim=1).T

    def block(rows: torch.Tensor) -> dict[str, float]:
        counts = usage_histogram(scores[rows], m)
        usage = prototype_usage(scores[rows], m)
        return {
            "eff_rank": effective_rank(z_raw[rows]),
            "mean_cos": mean_pairwise_cosine(z_raw[rows]),
            "n_used": usage["n_used"],
            "max_share": float(counts.max()) / max(int(rows.sum()), 1),
            "usage_entropy": usage["usage_entropy"],
        }

    out = block(torch.ones(len(z_raw), dtype=torch.bool))
    names = sorted(set(domains))
    labels = list(domains)
    for name in names:
        rows = torch.tensor([d == name for d in labels])
        out.update({f"{k}/{name}": v for k, v in block(rows).items()})
    out["eff_rank_min"] = min(out[f"eff_rank/{n}"] for n in names)
    out["n_used_min"] = min(out[f"n_used/{n}"] for n in names)
    if loss_comp is not None:
        out["loss_comp_probe"] = float(loss_comp)
        out["margin"] = math.log(m) - float(loss_comp)
    return out


def collapse_verdict(diagnostics: dict[str, float], num_protos: int) -> str:
    """One phrase for the probe-frame diagnostics, the same wherever a run is summarised (report figures, the demo's
    summary, ``inspect``): ``"COLLAPSED to the trivial solution"`` (:func:`collapse_warning`), ``"not collapsed,
    below the targets (...)"`` naming each missed :data:`COLLAPSE_THRESHOLDS` entry, or ``"not collapsed, targets
    met"``.
    """
    if collapse_warning(diagnostics, num_protos) is not None:
        return "COLLAPSED to the trivial solution"
    missed, target = [], COLLAPSE_THRESHOLDS
    if diagnostics.get("eff_rank_min", math.inf) < target["eff_rank_min"]:
        missed.append(f"worst-domain rank {diagnostics['eff_rank_min']:.1f} < {target['eff_rank_min']:.0f}")
    if diagnostics.get("n_used", math.inf) < COLLAPSE_THRESHOLDS["n_used_min"]:
        missed.append(f"{diagnostics['n_used']:.0f} prototypes used < {COLLAPSE_THRESHOLDS['n_used_min']}")
    if diagnostics.get("max_share", 0.0) > COLLAPSE_THRESHOLDS["max_share_max"]:
        missed.append(f"largest share {100 * diagnostics['max_share']:.0f}% > "
                      f"{100 * COLLAPSE_THRESHOLDS['max_share_max']:.0f}%")  # fmt: skip
    return f"not collapsed, below the targets ({'; '.join(missed)})" if missed else "not collapsed, targets met"


def collapse_warning(
    diagnostics: dict[str, float], num_protos: int, preset: str | None = None, updates: int | None = None
) -> str | None:
    """A one-paragraph warning when ``diagnostics`` (from :func:`collapse_diagnostics`) show a collapse, else ``None``.

    Collapsed means: the effective rank of the normalised projections of some domain below 5 (collapsed runs measure
    1.5-3.3, random-init encoders 15-80, measured on the runs of the docs page "Does it help?"), or one prototype
    nearest to more than 90% of the probe frames. The advice names the run's ``preset`` and ``updates`` when given.
    """
    rank, share = diagnostics.get("eff_rank_min", float("nan")), diagnostics.get("max_share", float("nan"))
    if not (rank < 5 or share > 0.9):
        return None
    margin = diagnostics.get("margin", float("nan"))
    run = f"{updates} updates" if updates is not None else "this run"
    if preset == "default":
        advice = (f"This run used the default preset, which measured without collapse at 600 updates of batch 64 "
                  f"(64 px); {run} may be too short: raise --updates.")  # fmt: skip
    else:
        advice = (f"{f'This run used the {preset!r} preset. ' if preset else ''}Try the default preset (centring of "
                  "the target projections, Sinkhorn temperature 0.05), which measured without collapse at 600 updates "
                  "of batch 64, or a longer run.")  # fmt: skip
    return (
        f"pretraining has collapsed to its trivial solution: on the probe frames the normalised target projections "
        f"have effective rank {rank:.1f} in the worst domain (collapsed < 5; random-init encoders measure ~15-80), "
        f"one prototype is nearest to {100 * share:.0f}% of the frames, and the comparative loss is {margin:.4f} nats "
        f"below log(M) = {math.log(num_protos):.3f} (0 at the trivial solution). The encoder is likely no better than "
        f"a random one. {advice} See the docs page 'Does it help?' for what was measured."
    )
