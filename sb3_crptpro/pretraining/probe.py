"""Linear state probes: how much of the proprioceptive state a frozen encoder's features make linearly readable."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sb3_crptpro.common.networks import Encoder
from sb3_crptpro.data.domain import DomainDataset

__all__ = [
    "ANGLE_DIMS",
    "EPISODE_DIMS",
    "MLPDecoder",
    "RidgeDecoder",
    "encode_frames",
    "fit_mlp_decoder",
    "fit_ridge_decoder",
    "linear_probe",
    "mlp_probe",
    "probe_domain",
    "probe_target_names",
    "probe_targets",
    "r2_per_dim",
    "ridge_r2",
]

#: ridge strengths of the linear probes, relative to the mean kernel diagonal
RIDGE_LAMBDAS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

#: state dims (per DMC domain) that are unbounded hinge angles. A frame shows them modulo 2 pi, so a linear probe of
#: the raw angle is ill-posed (reacher's shoulder angle wanders over several turns: held-out R^2 of -86 for a
#: random-init encoder, 0.95 for its sine): they are probed as (sin, cos). Other domains' states are bounded already
#: (dm_control reports walker/cartpole orientations as cos/sin, finger as tip positions).
ANGLE_DIMS: dict[str, tuple[int, ...]] = {"reacher": (0, 1)}
#: state dims that depend on a target drawn anew each episode (reacher's ``to_target``): a probe fitted on 12
#: episodes sees 12 target positions and cannot generalise to new ones (held-out R^2 -0.3 and -2.5 for a random-init
#: encoder); left out by default, so that the probe measures the agent's own state. Probes over many short episodes
#: keep them (``keep_episode_dims``).
EPISODE_DIMS: dict[str, tuple[int, ...]] = {"reacher": (2, 3)}


def probe_targets(state: np.ndarray, task: str, keep_episode_dims: bool = False) -> np.ndarray:
    """Probe targets ``float32 [N, S']`` from states ``[N, S]``: :data:`ANGLE_DIMS` become sin and cos,
    :data:`EPISODE_DIMS` are dropped unless ``keep_episode_dims``; other domains' states are returned as they are."""
    domain = task.split("_")[0]
    angles, dropped = ANGLE_DIMS.get(domain, ()), () if keep_episode_dims else EPISODE_DIMS.get(domain, ())
    if not angles and not dropped:
        return state
    keep = [i for i in range(state.shape[1]) if i not in angles and i not in dropped]
    theta = state[:, list(angles)]
    return np.concatenate([state[:, keep], np.sin(theta), np.cos(theta)], axis=1).astype(np.float32)


def probe_target_names(names: Sequence[str], task: str, keep_episode_dims: bool = False) -> list[str]:
    """Names of :func:`probe_targets`' columns, from the state dims' ``names`` (same order and rules)."""
    domain = task.split("_")[0]
    angles, dropped = ANGLE_DIMS.get(domain, ()), () if keep_episode_dims else EPISODE_DIMS.get(domain, ())
    keep = [n for i, n in enumerate(names) if i not in angles and i not in dropped]
    return keep + [f"sin {names[i]}" for i in angles] + [f"cos {names[i]}" for i in angles]


@torch.no_grad()
def encode_frames(
    encoder: Encoder, obs: np.ndarray | torch.Tensor, batch_size: int = 256, projector: torch.nn.Module | None = None
) -> torch.Tensor:
    """Frozen features ``float32 [N, repr_dim]`` of ``uint8`` frame stacks ``[N, C, H, W]`` (in eval mode, on CPU).

    With ``projector``, the projections ``[N, proj_dim]`` instead (what prototypes and the intrinsic reward see).
    """
    encoder = encoder.eval()
    device = next(encoder.parameters()).device
    obs_t = torch.as_tensor(obs)
    head = projector if projector is not None else torch.nn.Identity()
    return torch.cat(
        [head(encoder(obs_t[i : i + batch_size].to(device))).cpu() for i in range(0, len(obs_t), batch_size)]
    )


def _standardised(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 copies: features centred, targets standardised, both with the training rows' statistics."""
    x_train, x_test = x_train.double(), x_test.double()
    y_train, y_test = y_train.double(), y_test.double()
    mean_x, mean_y = x_train.mean(0), y_train.mean(0)
    std_y = y_train.std(0).clamp_min(1e-8)
    return x_train - mean_x, (y_train - mean_y) / std_y, x_test - mean_x, (y_test - mean_y) / std_y


def r2_per_dim(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """``1 - SSE / SST`` per target dim: ``float64 [S]`` from ``[N, S]`` predictions and targets (``SST`` about the
    targets' own mean; a dim constant in ``target`` gets ``nan``)."""
    sst = ((target - target.mean(0)) ** 2).sum(0)
    sse = ((target - pred) ** 2).sum(0)
    r2 = 1 - sse / sst.clamp_min(1e-12)
    return torch.where(sst > 1e-12, r2, torch.full_like(r2, float("nan"))).numpy().astype(np.float64)


def _ridge_alpha(kernel: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """Dual ridge coefficients ``(K + lam * mean(diag K) * I)^-1 y``."""
    scale = kernel.diagonal().mean().clamp_min(1e-12)
    return torch.linalg.solve(kernel + lam * scale * torch.eye(len(kernel), dtype=kernel.dtype), y)


def _best_ridge(kernel: torch.Tensor, ytr: torch.Tensor, lambdas: Sequence[float]) -> float:
    """The ridge whose fit on the first 80% of the training rows scores best (variance-weighted R^2) on the rest."""
    split = int(0.8 * len(kernel))
    fit, val = slice(0, split), slice(split, None)

    def validation_r2(lam: float) -> float:
        return _weighted_r2(kernel[val, fit] @ _ridge_alpha(kernel[fit, fit], ytr[fit], lam), ytr[val])

    return max(lambdas, key=validation_r2)


def _ridge_fit_predict(
    xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, lambdas: Sequence[float]
) -> torch.Tensor:
    """Dual-form ridge on centred features and standardised targets; the last 20% of the training rows choose the
    ridge (variance-weighted R^2), then the model is refitted on all training rows."""
    kernel = xtr @ xtr.T  # computed once; every fit uses blocks of it
    return (xte @ xtr.T) @ _ridge_alpha(kernel, ytr, _best_ridge(kernel, ytr, lambdas))


@dataclass
class RidgeDecoder:
    """A fitted ridge map from features to state variables: ``decoder(x)`` is ``float32 [N, S]`` for ``x [N, D]``.

    :ivar mean_x: ``float64 [D]`` training-feature mean; ``weight`` ``float64 [D, S]`` (primal, on standardised
        targets); ``mean_y``, ``std_y`` ``float64 [S]`` the training targets' statistics; ``ridge`` the chosen
        strength (relative to the mean kernel diagonal)
    """

    mean_x: torch.Tensor
    weight: torch.Tensor
    mean_y: torch.Tensor
    std_y: torch.Tensor
    ridge: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (((x.double() - self.mean_x) @ self.weight) * self.std_y + self.mean_y).float()


def fit_ridge_decoder(
    x_train: torch.Tensor, y_train: torch.Tensor, lambdas: Sequence[float] = RIDGE_LAMBDAS
) -> RidgeDecoder:
    """The ridge probe of :func:`linear_probe`, kept as a map to apply to new features (e.g. to feed an agent the
    state as the probe reads it from frozen features). Same centring, target standardisation and ridge choice.

    :param x_train: features ``[N, D]``, rows in time order (the last 20% choose the ridge); ``y_train`` ``[N, S]``
    """
    x, y = x_train.double(), y_train.double()
    mean_x, mean_y, std_y = x.mean(0), y.mean(0), y.std(0).clamp_min(1e-8)
    xc, ys = x - mean_x, (y - mean_y) / std_y
    kernel = xc @ xc.T
    ridge = _best_ridge(kernel, ys, lambdas)
    return RidgeDecoder(mean_x, xc.T @ _ridge_alpha(kernel, ys, ridge), mean_y, std_y, float(ridge))


def _weighted_r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    sst = ((target - target.mean(0)) ** 2).sum()
    return float(1 - ((target - pred) ** 2).sum() / sst.clamp_min(1e-12))


def ridge_r2(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    lambdas: Sequence[float] = RIDGE_LAMBDAS,
) -> float:
    """Held-out R^2 of ridge regression ``y ~ x``, solved in its dual (kernel) form.

    Targets are standardised with the training statistics and the R^2 is variance-weighted over dims
    (``1 - sum SSE / sum SST``), so a dim that barely varies in the held-out rows cannot dominate it.
    ``lambdas`` are relative to the mean kernel diagonal; the last 20% of the training rows choose one, then the
    model is refitted on all training rows.
    """
    xtr, ytr, xte, yte = _standardised(x_train, y_train, x_test, y_test)
    return _weighted_r2(_ridge_fit_predict(xtr, ytr, xte, lambdas), yte)


def linear_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    lambdas: Sequence[float] = RIDGE_LAMBDAS,
) -> np.ndarray:
    """Held-out R^2 per target dim (``float64 [S]``) of the ridge probe of :func:`ridge_r2` (one ridge for all dims).

    :param x_train: features ``[N, D]``; ``y_train`` targets ``[N, S]``; rows in time order (the validation split
        takes the last 20%)
    """
    xtr, ytr, xte, yte = _standardised(x_train, y_train, x_test, y_test)
    return r2_per_dim(_ridge_fit_predict(xtr, ytr, xte, lambdas), yte)


@dataclass
class MLPDecoder:
    """A fitted MLP probe (:func:`fit_mlp_decoder`): ``decoder(x)`` is ``float32 [N, S]`` for features ``x [N, D]``.

    :ivar mean_x: ``float64 [D]``; ``basis`` ``float64 [D, k]`` the principal directions, ``scale`` ``float64 [k]``
        their standard deviations; ``net`` the MLP on the scaled components; ``mean_y``, ``std_y`` ``float64 [S]``
    """

    mean_x: torch.Tensor
    basis: torch.Tensor
    scale: torch.Tensor
    net: torch.nn.Module
    mean_y: torch.Tensor
    std_y: torch.Tensor

    def components(self, x: torch.Tensor) -> torch.Tensor:
        return (((x.double() - self.mean_x) @ self.basis) / self.scale).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (self.net(self.components(x)).double() * self.std_y + self.mean_y).float()


def fit_mlp_decoder(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    hidden: int = 256,
    components: int = 512,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> MLPDecoder:
    """A small MLP ``Linear(k, hidden) ReLU Linear(hidden, hidden) ReLU Linear(hidden, S)`` from the top
    ``k = min(components, D, N)`` principal components of the features to the state variables.

    The components are fitted on the training rows (through the ``N x N`` kernel, so ``D`` = 39,200 conv features
    cost no ``D x D`` matrix) and scaled to unit variance; targets are standardised. Adam, full epochs of shuffled
    minibatches over the first 80% of the rows; the epoch with the lowest MSE on the last 20% is kept (early
    stopping). Deterministic for a ``seed`` (its own ``torch.Generator``; the global RNG is untouched).

    :param x_train: features ``[N, D]``, rows in time order; ``y_train`` targets ``[N, S]``
    """
    x, y = x_train.double(), y_train.double()
    mean_x, mean_y, std_y = x.mean(0), y.mean(0), y.std(0).clamp_min(1e-8)
    xtr, ytr = x - mean_x, ((y - mean_y) / std_y).float()
    eigvals, eigvecs = torch.linalg.eigh(xtr @ xtr.T)  # ascending
    k = min(components, int((eigvals > eigvals[-1] * 1e-9).sum()))
    eigvals, eigvecs = eigvals[-k:].flip(0), eigvecs[:, -k:].flip(1)
    basis = xtr.T @ eigvecs / eigvals.sqrt()  # [D, k] orthonormal principal directions
    scale = (eigvals / (len(xtr) - 1)).sqrt()
    ztr = ((xtr @ basis) / scale).float()
    split = int(0.8 * len(ztr))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(k, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                  torch.nn.ReLU(), torch.nn.Linear(hidden, ytr.shape[1]))  # fmt: skip
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_state = float("inf"), copy.deepcopy(net.state_dict())
    for _ in range(epochs):
        for rows in torch.randperm(split, generator=generator).split(batch_size):
            loss = torch.nn.functional.mse_loss(net(ztr[rows]), ytr[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            val = float(torch.nn.functional.mse_loss(net(ztr[split:]), ytr[split:]))
        if val < best:
            best, best_state = val, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return MLPDecoder(mean_x, basis, scale, net.eval(), mean_y, std_y)


def mlp_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    hidden: int = 256,
    components: int = 512,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> np.ndarray:
    """Held-out R^2 per target dim (``float64 [S]``) of the MLP probe :func:`fit_mlp_decoder` fitted on the
    training rows (same arguments)."""
    decoder = fit_mlp_decoder(x_train, y_train, hidden, components, epochs, batch_size, lr, seed)
    return r2_per_dim(decoder(x_test).double(), y_test.double())


def probe_domain(
    encoder: Encoder,
    dataset: DomainDataset,
    test_fraction: float = 0.25,
    max_rows: int = 3000,
    projector: torch.nn.Module | None = None,
) -> float:
    """State-probe R^2 on one domain: train on the first episodes, test on the last ``test_fraction`` of them.

    :param projector: probe the projections (``projector(encoder(x))``) instead of the conv features
    :return: variance-weighted held-out R^2 over the state dims (angles as sin/cos, see :data:`ANGLE_DIMS`)
    """
    episodes = dataset.episode_ids()
    n_test_episodes = max(1, round(test_fraction * (episodes.max() + 1)))
    test_mask = episodes > episodes.max() - n_test_episodes
    if test_mask.all():
        raise ValueError(f"{dataset.path}: need at least 2 episodes to hold some out")
    rng = np.random.default_rng(0)
    rows = {}
    for name, mask in (("train", ~test_mask), ("test", test_mask)):
        idx = np.flatnonzero(mask)
        if len(idx) > max_rows:
            idx = np.sort(rng.choice(idx, max_rows, replace=False))
        rows[name] = idx
    feats, states = {}, {}
    for name, idx in rows.items():
        obs, _, state = dataset.transitions(idx)
        feats[name] = encode_frames(encoder, obs, projector=projector)
        states[name] = torch.from_numpy(probe_targets(state, dataset.task))
    return ridge_r2(feats["train"], states["train"], feats["test"], states["test"])
