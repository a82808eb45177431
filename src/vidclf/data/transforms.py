"""Spatial transforms of uint8 clips (..., H, W): centre, multi-view and random crops."""

from __future__ import annotations

import torch


def spatial_crops(video: torch.Tensor, size: int, count: int) -> torch.Tensor:
    """`count` square crops (1: centre; 3: both ends and centre of the long side) of each clip,
    stacked clip by clip: (N, C, T, H, W) -> (N * count, C, T, size, size)."""
    if count == 1:
        return center_crop(video, size)
    h, w = video.shape[-2:]
    along = [0, (max(h, w) - size) // 2, max(h, w) - size]
    crops = [video[..., a:a + size, (w - size) // 2:(w - size) // 2 + size] if h > w
             else video[..., (h - size) // 2:(h - size) // 2 + size, a:a + size] for a in along]
    return torch.stack(crops, dim=1).flatten(0, 1)


def center_crop(video: torch.Tensor, size: int) -> torch.Tensor:
    h, w = video.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return video[..., top:top + size, left:left + size]


def random_crop(video: torch.Tensor, size: int, rng: torch.Generator) -> torch.Tensor:
    h, w = video.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (), generator=rng))
    left = int(torch.randint(0, w - size + 1, (), generator=rng))
    return video[..., top:top + size, left:left + size]
