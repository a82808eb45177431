"""The training loss: cross-entropy (multi-label: a sigmoid per class) with label smoothing, class weights and mixup."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def clip_loss(logits: torch.Tensor, y: torch.Tensor, multi_label: bool, smoothing: float,
              weight: Optional[torch.Tensor]) -> torch.Tensor:
    """Loss of clip logits (N, K) against their videos' labels y (N,), or (N, K) of 0/1 for multi-label
    (targets smoothed to s/2 and 1 - s/2; `weight` then weighs each class's positives)."""
    if multi_label:
        target = y * (1 - smoothing) + smoothing / 2
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    return F.cross_entropy(logits, y, weight=weight, label_smoothing=smoothing)


def mixup(video: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al., 2018) of a batch of videos (B, ...): each is blended with another of the batch
    at weight lam ~ Beta(alpha, alpha); returns the blended float batch, each video's partner and lam.
    The loss is then lam * loss(own labels) + (1 - lam) * loss(the partner's)."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    partner = torch.randperm(video.shape[0], device=video.device)
    return lam * video.float() + (1 - lam) * video[partner].float(), partner, lam


def balanced_class_weights(labels, k: int) -> torch.Tensor:
    """Loss weights from training labels: N / (K * videos of the class) for class indices; for 0/1
    multi-label rows, each class's positive weight negatives / positives."""
    if isinstance(labels, torch.Tensor):
        positives = labels.sum(0)
        return (len(labels) - positives) / positives.clamp(min=1)
    counts = torch.bincount(torch.tensor(labels), minlength=k).float()
    return len(labels) / (k * counts.clamp(min=1))
