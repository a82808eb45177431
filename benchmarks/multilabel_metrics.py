"""Multi-label metric time on a Kinetics-700-size evaluation: AP of every class and the tuned thresholds,
vidclf's all-classes-at-once code against the one-class-at-a-time loop it replaced (the same rule, kept
here as the baseline) and scikit-learn's average_precision_score per class, on the same scores.

    python benchmarks/multilabel_metrics.py [--videos 34825] [--classes 700]
"""

from __future__ import annotations

import argparse
import time

import torch

from vidclf.metrics.multilabel import DEFAULT_THRESHOLD, MIN_POSITIVES, average_precision, ranked, tune_thresholds


def loop_ap(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The per-class loop vidclf ran before (the baseline)."""
    ap = torch.full((probs.shape[1],), float("nan"), dtype=torch.float64)
    for c in range(probs.shape[1]):
        if targets[:, c].sum() == 0:
            continue
        _, tps, fps = ranked(probs[:, c], targets[:, c])
        recall = tps / tps[-1]
        ap[c] = float(((recall - torch.cat([recall.new_zeros(1), recall[:-1]])) * tps / (tps + fps)).sum())
    return ap


def loop_thresholds(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    thresholds = torch.full((probs.shape[1],), DEFAULT_THRESHOLD, dtype=torch.float64)
    for c in range(probs.shape[1]):
        positives = float(targets[:, c].sum())
        if positives < MIN_POSITIVES:
            continue
        s, tps, fps = ranked(probs[:, c], targets[:, c])
        best = int(torch.argmax(2 * tps / (tps + fps + positives)))
        thresholds[c] = (float(s[best]) + (float(s[best + 1]) if best + 1 < len(s) else 0.0)) / 2
    return thresholds


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=34_825)  # Kinetics-700's validation set
    parser.add_argument("--classes", type=int, default=700)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    targets = (torch.rand(args.videos, args.classes, generator=generator) < 3 / args.classes).float()
    probs = (0.6 * targets + 0.7 * torch.rand(args.videos, args.classes, generator=generator)).clamp(max=1)
    probs = (probs * 1000).round() / 1000  # scores with ties, as float32 probabilities have
    print(f"{args.videos} videos x {args.classes} classes, torch threads {torch.get_num_threads()}")
    t_ap, ap = timed(average_precision, probs, targets)
    t_th, th = timed(tune_thresholds, probs, targets)
    t_loop_ap, ap_loop = timed(loop_ap, probs, targets)
    t_loop_th, th_loop = timed(loop_thresholds, probs, targets)
    from sklearn.metrics import average_precision_score

    present = [c for c in range(args.classes) if targets[:, c].any()]
    t_sk, sk = timed(lambda: [average_precision_score(targets[:, c].numpy(), probs[:, c].numpy()) for c in present])
    assert torch.allclose(ap[present], ap_loop[present], atol=1e-12) and torch.equal(th, th_loop)
    assert max(abs(float(ap[c]) - s) for c, s in zip(present, sk)) < 1e-9
    print(f"AP:          all classes at once {t_ap:.3f} s | per-class loop {t_loop_ap:.3f} s "
          f"({t_loop_ap / t_ap:.1f}x) | sklearn per class {t_sk:.3f} s ({t_sk / t_ap:.1f}x)")
    print(f"thresholds:  all classes at once {t_th:.3f} s | per-class loop {t_loop_th:.3f} s ({t_loop_th / t_th:.1f}x)")
    print(f"metric time of one validation (AP + thresholds): {t_ap + t_th:.3f} s (loop: {t_loop_ap + t_loop_th:.3f} s)")


if __name__ == "__main__":
    main()
