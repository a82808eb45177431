"""Fine-tuning strategies: which backbone parameters train, and whether its BatchNorm statistics move."""

from __future__ import annotations

from torch import nn

from vidclf.models.backbones import classifier


def backbone_parts(net: nn.Module) -> tuple[list[nn.Parameter], list[nn.Module]]:
    """Backbone parameters and BatchNorm layers: everything but the new classifier."""
    head = {id(p) for p in classifier(net).parameters()}
    params = [p for p in net.parameters() if id(p) not in head]
    norms = [m for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm))]
    return params, norms


def apply_finetune(net: nn.Module, strategy: str, epoch: int, unfreeze_epoch: int, train_bn: bool) -> None:
    """full: everything trains; freeze: only the head; freeze_unfreeze: freeze until `unfreeze_epoch`.
    A frozen backbone keeps its BatchNorm statistics unless `train_bn`."""
    if strategy == "full":
        return
    frozen = strategy == "freeze" or (strategy == "freeze_unfreeze" and epoch < unfreeze_epoch)
    params, norms = backbone_parts(net)
    for p in params:
        p.requires_grad_(not frozen)
    if frozen and not train_bn:
        for norm in norms:  # Lightning puts modules back in train mode after validation: redo per batch
            norm.eval()
