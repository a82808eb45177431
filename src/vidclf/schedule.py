"""The learning-rate schedule fit and pretrain share: linear warmup, then cosine decay to zero."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch


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
