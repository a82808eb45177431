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


CHUNK = 1 << 22  # scores handled at once (videos x classes): memory stays ~100 MB however many classes


def ranked(scores: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One class's operating points from the highest score down, tied scores taken together:
    (score, true positives, false positives) when everything scoring >= score is called positive."""
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order].double(), targets[order].double()
    last = torch.cat([torch.nonzero(s[1:] != s[:-1]).flatten(), torch.tensor([len(s) - 1], device=s.device)])
    tps = y.cumsum(0)[last]
    return s[last], tps, (last + 1).double() - tps


def _positives(probs: torch.Tensor, targets: torch.Tensor):
    """Every class at once, in chunks of classes. An operating point that can matter is the score of a
    positive (a lower score only adds false positives), so each video's score is only placed among its
    class's positive scores (no full sort): yields (first class, scores (classes, videos), positives'
    scores ascending (+inf padding), which are real, positives scoring >= each, videos scoring >= each,
    positives per class)."""
    n = probs.shape[0]
    step = max(1, CHUNK // max(n, 1))
    for first in range(0, probs.shape[1], step):
        scores = probs[:, first:first + step].T.contiguous()  # (classes, videos): a class per row
        positive = targets[:, first:first + step].T > 0.5
        counts = positive.sum(1)
        width = max(int(counts.max()), 1)
        row, _ = torch.nonzero(positive, as_tuple=True)  # the positives, class by class
        column = torch.arange(len(row)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        chosen = torch.full((len(counts), width), float("inf"), dtype=scores.dtype)  # padding sorts last
        chosen[row, column] = scores[positive]
        ranked_up = torch.sort(chosen, dim=1).values
        # a video scores >= the j-th positive exactly when more than j positives score <= it
        place = torch.searchsorted(ranked_up, scores, side="right")  # (classes, videos) in 0..width
        rows = torch.arange(len(counts)).unsqueeze(1) * (width + 1)
        histogram = torch.bincount((place + rows).flatten(), minlength=len(counts) * (width + 1))
        above = torch.flip(torch.cumsum(torch.flip(histogram.view(len(counts), width + 1), [1]), 1), [1])
        at_least = above[:, 1:]  # videos with a place > j
        hits = counts.unsqueeze(1) - torch.searchsorted(ranked_up, ranked_up, side="left")
        real = torch.arange(width).unsqueeze(0) < counts.unsqueeze(1)  # the padding (+inf) sorts last
        yield first, scores, ranked_up, real, hits.double(), at_least.double(), counts.double()


def average_precision(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(classes,) AP = sum over operating points of (recall step) x precision, as
    sklearn.metrics.average_precision_score; NaN for a class without positives. Every class at once:
    each positive adds, over the class's positives, the precision at its own score (ties included)."""
    ap = torch.full((probs.shape[1],), float("nan"), dtype=torch.float64)
    for first, _, _, real, hits, at_least, counts in _positives(probs, targets):
        total = torch.where(real, hits / at_least.clamp(min=1), torch.zeros_like(hits)).sum(1)
        ap[first:first + len(counts)] = torch.where(counts > 0, total / counts.clamp(min=1),
                                                    torch.full_like(total, float("nan")))
    return ap


def tune_thresholds(probs: torch.Tensor, targets: torch.Tensor, min_positives: int = MIN_POSITIVES) -> torch.Tensor:
    """(classes,) thresholds maximising each class's F1 on these scores: among the operating points,
    the one with the best F1 (the highest score on a tie, i.e. fewer false positives), placed halfway
    down to the next lower score so that nearby new scores fall on the same side. A class with fewer
    than `min_positives` positives keeps DEFAULT_THRESHOLD: an F1 from so few is noise."""
    thresholds = torch.full((probs.shape[1],), DEFAULT_THRESHOLD, dtype=torch.float64)
    if probs.shape[0] == 0:
        return thresholds
    for first, scores, ranked_up, real, hits, at_least, counts in _positives(probs, targets):
        f1 = torch.where(real, 2 * hits / (at_least + counts.unsqueeze(1)), torch.full_like(hits, -1.0))
        top = f1.max(1, keepdim=True).values
        best = torch.where((f1 == top) & real, ranked_up, torch.full_like(ranked_up, float("-inf"))).max(1).values
        below = torch.where(scores < best.unsqueeze(1), scores, torch.full_like(scores, float("-inf"))).max(1).values
        below = torch.where(torch.isinf(below), torch.zeros_like(below), below)  # nothing lower: 0
        tuned = (best.double() + below.double()) / 2
        kept = thresholds[first:first + len(counts)]
        thresholds[first:first + len(counts)] = torch.where(counts >= min_positives, tuned, kept)
    return thresholds


def evaluate(probs: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor) -> tuple[dict, dict]:
    """(metrics, per_class): mAP (mean AP over classes with positives), micro and macro F1 at
    `thresholds` (macro over the same classes); per class AP, precision, recall, F1, support."""
    scores, labels = probs.cpu(), targets.cpu()
    probs, targets = probs.double().cpu(), targets.double().cpu()
    predicted = (probs >= thresholds.double().cpu()).double()
    tp, fp = (predicted * targets).sum(0), (predicted * (1 - targets)).sum(0)
    support = targets.sum(0)
    fn = support - tp
    f1 = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1e-12), torch.zeros_like(tp))
    present = support > 0
    ap = average_precision(scores, labels)  # as given: float32 scores sort faster, with the same ties
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()).clamp(min=1e-12)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    metrics = {"mAP": float(ap[present].mean()) if present.any() else float("nan"),
               "f1_micro": float(micro),
               "f1_macro": float(f1[present].mean() if present.any() else nan)}
    per_class = {"ap": ap, "f1": f1, "support": support,
                 "precision": torch.where(tp + fp > 0, tp / (tp + fp).clamp(min=1), torch.zeros_like(tp)),
                 "recall": torch.where(present, tp / support.clamp(min=1), nan.expand_as(tp))}
    return metrics, per_class
