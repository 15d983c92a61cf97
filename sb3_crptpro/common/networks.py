"""CRPTpro / Proto-RL networks (the only module that defines layers; shared by pretraining and downstream use).

Shapes follow the reference code (PAPER.md, "Networks"): a 4-layer conv trunk over ``obs / 255``, a linear
projector to ``proj_dim``, a 2-layer predictor, and ``num_protos`` prototypes stored as the rows of a bias-free
linear layer whose rows are L2-normalised before every use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sb3_crptpro.common.threads import torch_threads

__all__ = ["Encoder", "Predictor", "Projector", "Prototypes", "ema_update", "orthogonal_init"]


def orthogonal_init(module: nn.Module) -> None:
    """Reference init: orthogonal weights (gain ``relu`` for convs, 1 for linears), zero biases.

    Runs on one torch thread whatever the process's count: the QR decomposition behind ``nn.init.orthogonal_`` sums
    in another order on more threads (measured, torch 2.13 CPU: a 50x1568 weight from the same seed differed by up
    to 2.5e-7 between 1 and 2 threads), so without it the same seed gave other initial weights in a process left at
    another thread count, and a resumed ``train`` run differed from the uninterrupted one.
    """
    if not isinstance(module, (nn.Linear, nn.Conv2d)):
        return
    gain = nn.init.calculate_gain("relu") if isinstance(module, nn.Conv2d) else 1.0
    with torch_threads(1, over_user=True):
        nn.init.orthogonal_(module.weight, gain=gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class Encoder(nn.Module):
    """Conv trunk: Conv(C->32, 3x3, stride 2) ReLU, then ``n_layers - 1`` x [Conv(32->32, 3x3) ReLU], flattened.

    Works for any channel count (frame stack) and image size; :attr:`repr_dim` is found by a dry run
    (39,200 for 9x84x84).

    :param obs_shape: channel-first observation shape ``(3 * frame_stack, H, W)``
    :param n_filters: conv channels
    :param n_layers: number of conv layers
    """

    def __init__(self, obs_shape: tuple[int, int, int], n_filters: int = 32, n_layers: int = 4) -> None:
        super().__init__()
        if len(obs_shape) != 3:
            raise ValueError(f"obs_shape must be (C, H, W), got {obs_shape}")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        smallest = 3 + 2 * (2 * (n_layers - 1))  # 3x3 stride 2, then each 3x3 stride 1 takes 2 pixels off
        if min(self.obs_shape[1:]) < smallest:
            raise ValueError(f"frames of {self.obs_shape[1]}x{self.obs_shape[2]} px are too small for the "
                             f"{n_layers}-layer conv encoder: it needs at least {smallest} px (collect with "
                             f"--image-size {smallest} or more; 64 and 84 are the measured sizes)")  # fmt: skip
        layers: list[nn.Module] = [nn.Conv2d(obs_shape[0], n_filters, 3, stride=2), nn.ReLU(inplace=True)]
        for _ in range(n_layers - 1):
            layers += [nn.Conv2d(n_filters, n_filters, 3, stride=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            self.repr_dim = int(self.convs(torch.zeros(1, *obs_shape)).numel())
        self.apply(orthogonal_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``uint8`` or float pixels in ``[0, 255]``, shape ``[B, C, H, W]`` -> features ``[B, repr_dim]``."""
        x = obs.float().div_(255.0) if obs.dtype == torch.uint8 else obs / 255.0  # uint8: one fresh tensor
        return self.convs(x).flatten(1)


class Projector(nn.Module):
    """Linear(repr_dim -> proj_dim)."""

    def __init__(self, repr_dim: int, proj_dim: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(repr_dim, proj_dim)
        self.apply(orthogonal_init)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h)


class Predictor(nn.Module):
    """Linear(proj_dim -> pred_dim) ReLU Linear(pred_dim -> proj_dim)."""

    def __init__(self, proj_dim: int = 128, pred_dim: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(proj_dim, pred_dim), nn.ReLU(), nn.Linear(pred_dim, proj_dim))
        self.apply(orthogonal_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Prototypes(nn.Module):
    """``num_protos`` prototype vectors of size ``proj_dim`` (rows of a bias-free linear layer).

    As in the reference, :meth:`normalize_` rescales the rows to unit norm in place (no gradient through the
    normalisation) before each update; :meth:`forward` then returns cosine-like scores ``z C^T``.
    """

    def __init__(self, proj_dim: int = 128, num_protos: int = 512) -> None:
        super().__init__()
        self.linear = nn.Linear(proj_dim, num_protos, bias=False)
        self.apply(orthogonal_init)
        self.normalize_()

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    @torch.no_grad()
    def normalize_(self) -> None:
        """L2-normalise the prototype rows in place."""
        self.linear.weight.copy_(F.normalize(self.linear.weight, dim=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) * target + tau * online`` for every parameter (PAPER.md: target EMA, tau 0.05)."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o, tau)
