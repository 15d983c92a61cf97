"""Batched image augmentations in pure torch: random shift (DrQ/Proto-RL) and random crop (RAD).

Both gather pixels with precomputed per-sample indices, so a whole batch is one vectorised gather (no per-sample Python
loop), and all randomness comes from the given ``torch.Generator``.
"""

from __future__ import annotations

import torch

__all__ = ["random_crop", "random_shift"]


def _crop_at(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Window ``out_h x out_w`` at ``(top, left)`` per image; rows/columns outside the image repeat the edge (the
    same pixels as replicate padding, without building a padded copy)."""
    b, c, h, w = x.shape
    rows = (top[:, None] + torch.arange(out_h, device=x.device)[None, :]).clamp_(0, h - 1)
    cols = (left[:, None] + torch.arange(out_w, device=x.device)[None, :]).clamp_(0, w - 1)
    index = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, out_h * out_w).expand(b, c, out_h * out_w)
    return x.reshape(b, c, h * w).gather(2, index).view(b, c, out_h, out_w)


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop each image of ``x [B, C, H, W]`` at its own random position to ``size x size`` (RAD's crop)."""
    b, _, h, w = x.shape
    if size > h or size > w:
        raise ValueError(f"crop size {size} larger than the image {h}x{w}")
    device = generator.device if generator is not None else torch.device("cpu")
    top = torch.randint(0, h - size + 1, (b,), generator=generator, device=device).to(x.device)
    left = torch.randint(0, w - size + 1, (b,), generator=generator, device=device).to(x.device)
    return _crop_at(x, top, left, size, size)


def random_shift(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replicate-pad ``x [B, C, H, W]`` by ``pad`` pixels and crop back to ``H x W`` at a random offset per image.

    Every image moves by an integer shift of at most ``pad`` pixels in each direction (PAPER.md: pad 4). Works on
    ``uint8`` and float tensors and keeps the dtype.
    """
    if pad == 0:
        return x
    b, _, h, w = x.shape
    device = generator.device if generator is not None else torch.device("cpu")
    top = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=device).to(x.device) - pad
    left = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=device).to(x.device) - pad
    return _crop_at(x, top, left, h, w)
