"""A k-nearest-neighbours head (--model.head knn): no training, a vote of the training videos whose
features are most like the clip's (cosine similarity, weighted by exp(similarity / temperature), as the
DINO and V-JEPA papers evaluate frozen features). Its bank is the cached features of every training
video's views, kept in checkpoints and exports like any weight."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

TEMPERATURE = 0.07
EPS = 1e-6


class KNNHead(nn.Module):
    """Features (..., D) -> logits (..., K) whose softmax (multi-label: sigmoid per class) is the share of
    the k nearest training features' weighted votes."""

    def __init__(self, dim: int, num_classes: int, k: int, multi_label: bool):
        super().__init__()
        self.k, self.multi_label, self.in_features = k, multi_label, dim
        self.register_buffer("bank", torch.zeros(0, dim))  # (M, D) normalised
        self.register_buffer("targets", torch.zeros(0, num_classes))  # (M, K) one-hot or multi-hot

    def fill(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        self.bank = F.normalize(features.float(), dim=-1).to(self.bank.device)
        self.targets = targets.float().to(self.targets.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[:-1]
        x = F.normalize(x.reshape(-1, x.shape[-1]), dim=-1)
        if len(self.bank) == 0:  # nothing stored yet (fit's sanity check): no opinion
            return x.new_zeros((*shape, self.targets.shape[1]))
        near, index = (x @ self.bank.T).topk(min(self.k, len(self.bank)), dim=-1)  # (N, k)
        weights = (near / TEMPERATURE).exp()
        share = (weights.unsqueeze(-1) * self.targets[index]).sum(1) / weights.sum(-1, keepdim=True)  # (N, K)
        logits = (share + EPS).log() - ((1 - share + EPS).log() if self.multi_label else 0)
        return logits.reshape(*shape, -1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("bank", "targets"):  # the stored bank's size, whatever this one's
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def use_knn(net: nn.Module, linear: tuple[list[nn.Module], nn.Module] | None, num_classes: int, k: int,
            multi_label: bool) -> KNNHead:
    """Put a KNNHead in place of the head's scoring layer (`linear`: features.linear_head of `net`)."""
    from vidclf.errors import VidclfError

    if linear is None or not isinstance(linear[1], nn.Linear):
        raise VidclfError("--model.head knn votes over the pooled features the head reads; this backbone's head "
                          "reads more (X-CLIP's prompt generator, an attentive pooler, a temporal convolution): "
                          "use --model.head linear")
    scoring = linear[1]
    knn = KNNHead(scoring.in_features, num_classes, k, multi_label)
    for module in net.modules():
        if isinstance(module, nn.Sequential) and len(module) and module[-1] is scoring:
            module[-1] = knn
    return knn


def knn_of(net: nn.Module) -> KNNHead | None:
    return next((m for m in net.modules() if isinstance(m, KNNHead)), None)


def fill_from_cache(knn: KNNHead, dataset, num_classes: int) -> int:
    """Store every cached view of every training video (a FeatureClips) with its labels; returns how many."""
    from vidclf.errors import VidclfError

    features = getattr(dataset, "features", None)
    if features is None:
        raise VidclfError("--model.head knn votes over the training videos' cached features: add "
                          "--data.feature_views K (and --model.finetune freeze)")
    rows, targets = [], []
    for index, views in features.items():
        if isinstance(views, torch.Tensor):  # (K, D); a failed video is its error text
            label = dataset.labels[index]
            target = label.float() if isinstance(label, torch.Tensor) else F.one_hot(torch.tensor(label), num_classes).float()
            rows.append(views)
            targets.append(target.expand(len(views), -1))
    knn.fill(torch.cat(rows), torch.cat(targets))
    return len(knn.bank)
