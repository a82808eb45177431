"""Smoothing window probabilities and turning labels over time into events (start, end, label, prob)."""

from __future__ import annotations

from collections import deque
from typing import Optional

import torch


class Smoother:
    """The mean of the last `n` windows' probabilities (1: the window's own); `reset` after a gap."""

    def __init__(self, n: int):
        self.last: deque[torch.Tensor] = deque(maxlen=n)

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        self.last.append(probs)
        return torch.stack(list(self.last)).mean(0)

    def reset(self) -> None:
        self.last.clear()


class Events:
    """Runs of a label over consecutive windows: an event is written when its run ends (the label went,
    a gap, or the stream ended), if it lasted `min_duration` seconds or more (a shorter run, a one-window
    flicker, is no event). Multi-label: each label present has its own runs.
    """

    def __init__(self, source: str, min_duration: float):
        self.source, self.min_duration = source, min_duration
        self.open: dict[str, list] = {}  # label -> [start, end, sum of its probability, windows]

    def add(self, start: float, end: float, present: dict[str, float]) -> list[dict]:
        """The window [start, end] shows the labels `present` (label -> probability): events that ended."""
        done = self.close([label for label in self.open if label not in present])
        for label, prob in present.items():
            run = self.open.setdefault(label, [start, end, 0.0, 0])
            run[1], run[2], run[3] = end, run[2] + prob, run[3] + 1
        return done

    def close(self, labels: Optional[list[str]] = None) -> list[dict]:
        """End the runs of `labels` (default: all): their events, where long enough."""
        done = []
        for label in list(self.open) if labels is None else labels:
            start, end, total, count = self.open.pop(label)
            if end - start >= self.min_duration:
                done.append({"source": self.source, "start": round(start, 3), "end": round(end, 3), "label": label,
                             "prob": round(total / count, 6)})
        return sorted(done, key=lambda e: e["start"])
