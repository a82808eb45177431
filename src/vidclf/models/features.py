"""The features before the head: what `vidclf embed` writes and a probe would train on, for any backbone."""

from __future__ import annotations

from typing import Union

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.models.backbones import classifier
from vidclf.models.backbones.hf import HFVideo
from vidclf.models.backbones.timm import PerFrame
from vidclf.models.backbones.words import WordsNet
from vidclf.models.knn import KNNHead

Features = Union[torch.Tensor, tuple[torch.Tensor, ...]]  # a head's input: X-CLIP's is a pair

SCORING = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, KNNHead)


def embedding(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, D) features of normalised clips (B, C, T, H, W): a video-text model's own embedding (in its
    text vectors' space), else the input of the head's last scoring layer, averaged over any positions
    it scores separately (the zoo's heads score every place of a pooled map, then average)."""
    if hasattr(net, "embed"):
        return net.embed(x)
    return embedding_and_logits(net, x)[0]


def embedding_and_logits(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The features `embedding` gives and the logits (B, K), from one forward pass."""
    if isinstance(net, WordsNet):
        inputs = net.embedder(x)
        features = nn.functional.normalize(inputs[0], dim=-1) if isinstance(inputs, tuple) else inputs
        return features, net.head(inputs)
    last = [m for m in classifier(net).modules() if isinstance(m, SCORING)][-1]
    seen: list[torch.Tensor] = []
    handle = last.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        logits = net(x)
    finally:
        handle.remove()
    features = seen[-1]
    if isinstance(last, (nn.Linear, KNNHead)):  # features last: (B, ..., D) (no batch size as a number: exports stay dynamic)
        return (features.flatten(1, -2).mean(1) if features.dim() > 2 else features), logits
    return features.flatten(2).mean(-1), logits  # a convolution's: (B, D, ...)


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
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not hasattr(head, "text") and not linears:  # a kNN head: no class vectors
        return None
    weight = head.text if hasattr(head, "text") else linears[-1].weight
    return nn.functional.normalize(weight.detach().float(), dim=-1)


def linear_head(net: nn.Module) -> tuple[list[nn.Module], nn.Module] | None:
    """The head as (dropouts, scoring layer) when it is one layer over the pooled features; else None."""
    last = [m for m in classifier(net).modules() if isinstance(m, SCORING)][-1]
    if any(True for m in classifier(net).modules() if m is not last for _ in m.parameters(recurse=False)):
        return None
    for module in net.modules():
        if isinstance(module, nn.Sequential) and len(module) and module[-1] is last:
            if all(isinstance(m, (nn.Dropout, nn.Identity)) for m in list(module)[:-1]):
                return [m for m in module if isinstance(m, nn.Dropout)], last
    return None


def head_kind(net: nn.Module) -> str:
    """How the head reads its input: words (a video-text model's embedder output), tokens (V-JEPA 2's
    attentive pooler over the encoder's tokens), frames (a temporal convolution over per-frame
    features), linear (one layer over a pooled vector)."""
    if isinstance(net, WordsNet):
        return "words"
    if isinstance(net, HFVideo) and hasattr(net.model, "pooler") and hasattr(net.model, "vjepa2"):
        return "tokens"
    if isinstance(net, PerFrame) and not isinstance(net.temporal, nn.Identity):
        return "frames"
    if linear_head(net) is not None:
        return "linear"
    raise VidclfError(f"--data.feature_views: the head of this {type(net).__name__} does not read one input the "
                      f"cache can keep; train it without the feature cache")


def head_inputs(net: nn.Module, x: torch.Tensor) -> Features:
    """What the head reads for normalised clips (B, C, T, H, W): what the feature cache keeps."""
    kind = head_kind(net)
    if kind == "words":
        return net.embedder(x)
    if kind == "tokens":
        return net.model.vjepa2(pixel_values_videos=x.transpose(1, 2), skip_predictor=True).last_hidden_state
    if kind == "frames":
        b, c, t, h, w = x.shape
        return net.image(x.transpose(1, 2).reshape(b * t, c, h, w)).view(b, t, -1)
    return embedding(net, x)


def head_logits(net: nn.Module, inputs: Features) -> torch.Tensor:
    """The head's logits (B, K) from what `head_inputs` gave."""
    kind = head_kind(net)
    if kind == "words":
        return net.head(inputs)
    if kind == "tokens":
        return net.model.classifier(net.model.pooler(inputs))
    if kind == "frames":
        return net.head(net.temporal(inputs).mean(1))
    dropouts, last = linear_head(net)
    for dropout in dropouts:
        inputs = dropout(inputs)
    if isinstance(last, KNNHead):
        return last(inputs)
    return nn.functional.linear(inputs, last.weight.flatten(1), last.bias)  # a convolution's 1x1 kernel: a matrix
