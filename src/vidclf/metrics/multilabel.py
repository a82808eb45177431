"""Multi-label scores: average precision as scikit-learn computes it, F1 at per-class thresholds,
and the rule that tunes those thresholds on validation scores.

Pure torch; `probs` are (videos, classes) probabilities, `targets` the same shape of 0/1.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

DEFAULT_THRESHOLD = 0.5
MIN_POSITIVES = 5  # fewer validation positives than this: the class keeps DEFAULT_THRESHOLD


class ScoreStore(Metric):
    """Every (probabilities, targets) pair of an epoch, gathered from all processes under DDP, so
    ranking metrics (AP) and threshold tuning see the whole evaluation set exactly once."""

    full_state_update = False

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.add_state("probs", [], dist_reduce_fx="cat")
        self.add_state("targets", [], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        self.probs.append(probs.detach().float())
        self.targets.append(targets.detach().float())

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(self.probs, list) and not self.probs:  # after a DDP sync the states are tensors
            empty = torch.zeros(0, self.num_classes, device=self.device)
            return empty, empty
        return dim_zero_cat(self.probs), dim_zero_cat(self.targets)


def ranked(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One class's operating points from the highest score down, tied scores taken together:
    (score, true positives, false positives) when everything scoring >= score is called positive."""
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order].double(), targets[order].double()
    last = torch.cat([torch.nonzero(s[1:] != s[:-1]).flatten(), torch.tensor([len(s) - 1], device=s.device)])
    tps = y.cumsum(0)[last]
    return s[last], tps, (last + 1).double() - tps


def average_precision(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(classes,) AP = sum over operating points of (recall step) x precision, as
    sklearn.metrics.average_precision_score; NaN for a class without positives."""
    ap = torch.full((probs.shape[1],), float("nan"), dtype=torch.float64)
    for c in range(probs.shape[1]):
        if targets[:, c].sum() == 0:
            continue
        _, tps, fps = ranked(probs[:, c], targets[:, c])
        recall = tps / tps[-1]
        steps = recall - torch.cat([recall.new_zeros(1), recall[:-1]])
        ap[c] = float((steps * tps / (tps + fps)).sum())
    return ap


def tune_thresholds(probs: torch.Tensor, targets: torch.Tensor, min_positives: int = MIN_POSITIVES) -> torch.Tensor:
    """(classes,) thresholds maximising each class's F1 on these scores: among the operating points,
    the one with the best F1 (the highest score on a tie, i.e. fewer false positives), placed halfway
    down to the next lower score so that nearby new scores fall on the same side. A class with fewer
    than `min_positives` positives keeps DEFAULT_THRESHOLD: an F1 from so few is noise."""
    thresholds = torch.full((probs.shape[1],), DEFAULT_THRESHOLD, dtype=torch.float64)
    for c in range(probs.shape[1]):
        positives = float(targets[:, c].sum())
        if positives < min_positives:
            continue
        s, tps, fps = ranked(probs[:, c], targets[:, c])
        best = int(torch.argmax(2 * tps / (tps + fps + positives)))  # first maximum: the highest score
        below = float(s[best + 1]) if best + 1 < len(s) else 0.0
        thresholds[c] = (float(s[best]) + below) / 2
    return thresholds


def evaluate(probs: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor) -> tuple[dict, dict]:
    """(metrics, per_class): mAP (mean AP over classes with positives), micro and macro F1 at
    `thresholds` (macro over the same classes); per class AP, precision, recall, F1, support."""
    probs, targets = probs.double().cpu(), targets.double().cpu()
    predicted = (probs >= thresholds.double().cpu()).double()
    tp, fp = (predicted * targets).sum(0), (predicted * (1 - targets)).sum(0)
    support = targets.sum(0)
    fn = support - tp
    f1 = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1e-12), torch.zeros_like(tp))
    present = support > 0
    ap = average_precision(probs, targets)
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()).clamp(min=1e-12)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    metrics = {"mAP": float(ap[present].mean()) if present.any() else float("nan"),
               "f1_micro": float(micro),
               "f1_macro": float(f1[present].mean() if present.any() else nan)}
    per_class = {"ap": ap, "f1": f1, "support": support,
                 "precision": torch.where(tp + fp > 0, tp / (tp + fp).clamp(min=1), torch.zeros_like(tp)),
                 "recall": torch.where(present, tp / support.clamp(min=1), nan.expand_as(tp))}
    return metrics, per_class
