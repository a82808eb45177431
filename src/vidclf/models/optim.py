"""The learning-rate schedule fit and pretrain share: linear warmup, then cosine decay to zero."""

from __future__ import annotations

import math
import re

import pytorch_lightning as pl
import torch
from torch import nn


def warmup_cosine(module: pl.LightningModule, optimizer: torch.optim.Optimizer, warmup_epochs: float) -> dict:
    """Lightning's optimizer config: per step, linear warmup from 1% of each group's rate over
    `warmup_epochs`, then cosine decay to 0 at the last step of the run."""
    steps: dict[str, int] = {}

    def factor(step: int) -> float:
        if not steps:
            if step == 0:
                return 0.01 if warmup_epochs > 0 else 1.0
            # Counted at the first real step, not in configure_optimizers: asking Lightning then
            # builds the training iterator before a checkpoint is restored, and a resumed run
            # would replay epoch 0's clips.
            trainer = module.trainer
            steps["total"] = total = max(1, trainer.estimated_stepping_batches)
            steps["warmup"] = min(total - 1, int(warmup_epochs * total / max(1, trainer.max_epochs)))
        total, warmup = steps["total"], steps["warmup"]
        if step < warmup:
            return 0.01 + 0.99 * step / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def layer_depths(net: nn.Module) -> dict[int, int]:
    """{id(parameter): depth} for layer-wise learning rates: a parameter inside the i-th numbered
    block (`layer.i`, `layers.i` or `blocks.i`, as transformers, timm and pytorchvideo name them)
    is at depth i + 1; anything before the first block (embeddings) at 0, after the last at L + 1."""
    depths, last = {}, 0
    for name, p in net.named_parameters():
        found = re.search(r"(?:^|\.)(?:layer|layers|blocks)\.(\d+)\.", name)
        if found:
            last = max(last, int(found[1]) + 1)
        depths[id(p)] = int(found[1]) + 1 if found else (last + 1 if last else 0)
    return depths


def adamw_groups(params, weight_decay: float, place=None) -> list[dict]:
    """AdamW parameter groups: no weight decay on norms and biases (ndim <= 1). `place(p)` gives a
    parameter's (group key, learning rate); parameters with the same key and decay share a group."""
    groups: dict[tuple, dict] = {}
    for p in params:
        key, lr = place(p) if place else ((), None)
        decays = p.ndim > 1
        group = groups.setdefault((key, decays), {"params": [], "weight_decay": weight_decay if decays else 0.0,
                                                   **({"lr": lr} if lr is not None else {})})
        group["params"].append(p)
    return list(groups.values())


def layered_adamw(module: pl.LightningModule, backbone: list, lr: float, weight_decay: float, backbone_lr: float,
                  layer_decay: float, warmup_epochs: float) -> dict:
    """AdamW over every parameter of `module` (frozen ones get no gradient, so it leaves them alone) with
    the warmup/cosine schedule: the head at `lr`, the `backbone` parameters at `lr * backbone_lr`, block i
    of L further scaled by `layer_decay ** (L + 1 - i)`."""
    in_backbone = {id(p) for p in backbone}
    depth = layer_depths(module.net) if layer_decay < 1 else {}
    deepest = max(depth.values(), default=0) + 1  # the head

    def place(p) -> tuple[tuple, float]:
        inside = id(p) in in_backbone
        level = depth.get(id(p), 0) if inside else deepest
        return (inside, level), lr * (backbone_lr if inside else 1.0) * layer_decay ** (deepest - level)

    optimizer = torch.optim.AdamW(adamw_groups(module.parameters(), weight_decay, place), lr=lr)
    return warmup_cosine(module, optimizer, warmup_epochs)
