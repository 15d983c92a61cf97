"""CRPTpro losses as pure functions of tensors (PAPER.md, "Losses").

- :func:`sinkhorn_knopp`: equipartitioned soft assignments of a batch to prototypes (Proto-RL / SwAV).
- :func:`sinkhorn_targets`: the same, balanced together with a queue of past samples (SwAV).
- :func:`comparative_loss`: Proto-RL's swapped-prediction loss between online predictions and target assignments.
- :func:`prototype_spread_loss`: CRPTpro's intrinsic loss that pushes prototypes apart.
- :func:`inverse_dynamics_loss`: an auxiliary loss, not CRPTpro's: predict the recorded action between two stacks.
- :func:`total_loss`: ``L = L_comp + alpha * L_intr``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "comparative_loss",
    "inverse_dynamics_loss",
    "prototype_spread_loss",
    "sinkhorn_knopp",
    "sinkhorn_targets",
    "total_loss",
]


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, temperature: float = 0.1, n_iters: int = 3) -> torch.Tensor:
    """Sinkhorn-Knopp assignments ``q [B, M]`` from ``scores [B, M]`` (batch x prototypes); rows sum to 1.

    ``Q = exp(scores / T)`` is alternately rescaled to uniform prototype and batch marginals, ``n_iters`` times,
    then each sample's column is normalised, as in the reference. Computed in the log domain in float64: the
    same numbers as the reference where it does not overflow/underflow, and still finite (rows summing to 1)
    for scores so large that ``exp`` would underflow whole columns to zero.
    """
    log_q = (scores.double() / temperature).T  # [M, B]
    m, b = log_q.shape
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)
    for _ in range(n_iters):
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(m)  # each prototype: 1/M
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(b)  # each sample: 1/B
    log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True)  # each sample's assignment sums to 1
    return log_q.exp().T.to(scores.dtype)


@torch.no_grad()
def sinkhorn_targets(
    scores_t: torch.Tensor,
    temperature: float = 0.1,
    n_iters: int = 3,
    queue_scores: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sinkhorn targets ``[B, M]`` for a batch, balanced together with the scores of queued past samples.

    With a queue (SwAV, Caron et al. 2020, section 4 "small batches"; facebookresearch/swav ``main_swav.py``) the
    equipartition constraint holds over ``B + Q`` samples instead of ``B``, which matters when ``B < M``: a batch of 64
    cannot spread evenly over 512 prototypes. The result is Sinkhorn over ``[batch; queue]`` sliced to the batch.

    :param scores_t: target scores ``[B, M]``
    :param queue_scores: scores ``[Q, M]`` of queued target projections against the current prototypes, or ``None``
    """
    if queue_scores is None or len(queue_scores) == 0:
        return sinkhorn_knopp(scores_t, temperature, n_iters)
    both = torch.cat([scores_t, queue_scores.to(scores_t.dtype)])
    return sinkhorn_knopp(both, temperature, n_iters)[: len(scores_t)]


def comparative_loss(
    pred_s: torch.Tensor,
    proj_t: torch.Tensor,
    prototypes: torch.Tensor,
    temperature: float = 0.1,
    n_iters: int = 3,
    *,
    sinkhorn_temperature: float | None = None,
    queue: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proto-RL's comparative loss ``-mean_b sum_j q_t[b, j] log softmax(scores_s / T)[b, j]``.

    :param pred_s: online predictions ``[B, D]`` (predictor(projector(encoder(obs)))), normalised here
    :param proj_t: target projections ``[B, D]`` of the next observations, normalised here (no gradient)
    :param prototypes: ``[M, D]``, rows normalised here
    :param temperature: softmax temperature ``T`` of the online scores (reference 0.1)
    :param n_iters: Sinkhorn-Knopp iterations (reference 3)
    :param sinkhorn_temperature: temperature of the target scores in Sinkhorn (``None``: ``temperature``, as in the
        reference; SwAV uses 0.05 with a softmax temperature of 0.1)
    :param queue: normalised past target projections ``[Q, D]`` balanced together with the batch
        (:func:`sinkhorn_targets`), or ``None``
    :return: ``(loss, q_t)`` with ``q_t`` the Sinkhorn targets ``[B, M]``
    """
    c = F.normalize(prototypes, dim=1)
    scores_s = F.normalize(pred_s, dim=1) @ c.T
    with torch.no_grad():
        scores_t = F.normalize(proj_t, dim=1) @ c.T
        queue_scores = None if queue is None else queue @ c.T
        eps = temperature if sinkhorn_temperature is None else sinkhorn_temperature
        q_t = sinkhorn_targets(scores_t, eps, n_iters, queue_scores)
    log_p_s = F.log_softmax(scores_s / temperature, dim=1)
    return -(q_t * log_p_s).sum(dim=1).mean(), q_t


def prototype_spread_loss(prototypes: torch.Tensor, offset: float = 1.5) -> torch.Tensor:
    """CRPTpro's intrinsic loss: mean over all ``M x M`` entries of ``S / (S.detach() + offset)``, zero diagonal.

    ``S = C C^T`` is the prototype cosine matrix (rows of ``C`` normalised). The detached denominator weights
    each pair by how close it already is, so near-duplicate prototypes are pushed apart hardest.
    """
    c = F.normalize(prototypes, dim=1)
    s = c @ c.T
    ratio = s / (s.detach() + offset)
    ratio = ratio * (1 - torch.eye(len(c), device=c.device, dtype=c.dtype))
    return ratio.mean()


def inverse_dynamics_loss(
    predicted: torch.Tensor, actions: torch.Tensor, domain: torch.Tensor, action_dims: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between predicted and recorded actions, over each row's own domain's action entries.

    An inverse-dynamics model (Pathak et al. 2017, "Curiosity-driven exploration by self-supervised prediction")
    reads the action from the features of ``(obs_t, obs_t+1)``; what an action changes is the controllable part of
    the state and its velocities, the variables the frozen features read worst (``docs/pixel-bottleneck.md``).
    Domains have different action sizes: one output block of ``A`` entries per domain, the unused tail masked.

    :param predicted: ``float [B, D * A]``: D domains' blocks of ``A = actions.shape[1]`` predicted entries
    :param actions: ``float [B, A]`` recorded actions, zero-padded past each row's domain's action size
    :param domain: ``int64 [B]`` domain of each row, in ``[0, D)``
    :param action_dims: ``int64 [D]`` action size of each domain (each ``<= A``)
    :return: scalar loss: the sum of squared errors over the used entries divided by their count
    """
    b, a = actions.shape
    blocks = predicted.reshape(b, -1, a)
    mine = blocks[torch.arange(b, device=predicted.device), domain]  # [B, A]
    used = (torch.arange(a, device=predicted.device)[None, :] < action_dims[domain][:, None]).to(predicted.dtype)
    return ((mine - actions) ** 2 * used).sum() / used.sum()


def total_loss(comparative: torch.Tensor, intrinsic: torch.Tensor, alpha: float) -> torch.Tensor:
    """``L = L_comp + alpha * L_intr`` (alpha 0.005 in CRPTpro; 0 gives plain Proto-RL)."""
    return comparative + alpha * intrinsic
