"""The features before the head: what `vidclf embed` writes and a probe would train on, for any backbone."""

from __future__ import annotations

import torch
from torch import nn

from vidclf.models.backbones import classifier

SCORING = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def embedding(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, D) features of normalised clips (B, C, T, H, W): a video-text model's own embedding (in its
    text vectors' space), else the input of the head's last scoring layer, averaged over any positions
    it scores separately (the zoo's heads score every place of a pooled map, then average)."""
    if hasattr(net, "embed"):
        return net.embed(x)
    last = [m for m in classifier(net).modules() if isinstance(m, SCORING)][-1]
    seen: list[torch.Tensor] = []
    handle = last.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        net(x)
    finally:
        handle.remove()
    features = seen[-1]
    if isinstance(last, nn.Linear):  # features last: (B, ..., D)
        return features.reshape(len(x), -1, features.shape[-1]).mean(1)
    return features.flatten(2).mean(-1)  # a convolution's: (B, D, ...)


def class_vectors(net: nn.Module) -> torch.Tensor | None:
    """A video-text model's class vectors (K, D) in its embedding's space: the rows of the head its
    words wrote (X-CLIP: its text vectors), normalised; None for other models."""
    if not hasattr(net, "embed"):
        return None
    head = net.head
    weight = head.text if hasattr(head, "text") else [m for m in head.modules() if isinstance(m, nn.Linear)][-1].weight
    return nn.functional.normalize(weight.detach().float(), dim=-1)
