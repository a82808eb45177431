"""The features before the head: what `vidclf embed` writes and a probe would train on, for any backbone."""

from __future__ import annotations

import torch
from torch import nn

from vidclf.errors import VidclfError
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
    if isinstance(last, nn.Linear):  # features last: (B, ..., D) (no batch size as a number: exports stay dynamic)
        return features.flatten(1, -2).mean(1) if features.dim() > 2 else features
    return features.flatten(2).mean(-1)  # a convolution's: (B, D, ...)


class Embedder(nn.Module):
    """A network's features as its output (B, D): what a runtime converts for `vidclf embed`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return embedding(self.net, x)


class Embedded(nn.Module):
    """Stands in for a network whose features another runtime computes (`engine`: clips -> features)."""

    def __init__(self, engine: nn.Module):
        super().__init__()
        self.engine = engine

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.engine(x)


def class_vectors(net: nn.Module) -> torch.Tensor | None:
    """A video-text model's class vectors (K, D) in its embedding's space: the rows of the head its
    words wrote (X-CLIP: its text vectors), normalised; None for other models."""
    if not hasattr(net, "embed"):
        return None
    head = net.head
    weight = head.text if hasattr(head, "text") else [m for m in head.modules() if isinstance(m, nn.Linear)][-1].weight
    return nn.functional.normalize(weight.detach().float(), dim=-1)


def linear_head(net: nn.Module) -> tuple[list[nn.Module], nn.Module]:
    """The head as (dropouts, scoring layer) when it is one layer over the pooled features (what a probe on
    cached features trains); one line for heads that need more (X-CLIP, an attentive pooler, a temporal
    convolution)."""
    last = [m for m in classifier(net).modules() if isinstance(m, SCORING)][-1]
    extra = [m for m in classifier(net).modules() if m is not last and any(True for _ in m.parameters(recurse=False))]
    for module in net.modules():
        if not extra and isinstance(module, nn.Sequential) and len(module) and module[-1] is last:
            if all(isinstance(m, (nn.Dropout, nn.Identity)) for m in list(module)[:-1]):
                return [m for m in module if isinstance(m, nn.Dropout)], last
    kinds = sorted({type(m).__name__ for m in extra}) or [type(last).__name__]
    raise VidclfError(f"--data.feature_views: this head is more than one layer over a pooled vector ({', '.join(kinds)}); "
                      f"train it without the feature cache")


def head_logits(net: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """The head's logits (..., K) for features (..., D) of `embedding`: its dropout, then its scoring layer
    (a convolution's 1x1 kernel as a matrix)."""
    dropouts, last = linear_head(net)
    for dropout in dropouts:
        features = dropout(features)
    return nn.functional.linear(features, last.weight.flatten(1), last.bias)
