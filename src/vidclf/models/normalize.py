"""Normalisation of uint8 clips as a backbone was trained: ((rgb / 255) - mean) / std per channel."""

from __future__ import annotations

import torch
from torch import nn


class Normalize(nn.Module):
    """uint8 RGB clips (..., C, T, H, W) in [0, 255] -> float, normalised with `mean` and `std` per channel."""

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]):
        super().__init__()
        # not saved in checkpoints: they follow from the backbone (or the pretraining recipe)
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1, 1) * 255, persistent=False)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return (video.float() - self.mean) / self.std
