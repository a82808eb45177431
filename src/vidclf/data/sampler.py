"""Which training items each epoch draws: a function of (seed, epoch) alone, optionally class-balanced."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Optional, Union

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """Draws each epoch's training items from (seed, epoch) alone and yields (epoch, index, draw)
    keys, so the order and augmentation of every epoch are a function of the seed.

    `repeats` clips of every video per epoch, shuffled; or, with `weights` (one per video), as many
    draws with replacement in proportion to them (a class-balanced epoch). Under DDP, Lightning shards
    this order between processes; every process draws the same order, so their shares are disjoint.
    `epoch` is asked for when an epoch's iterator is made, which with worker processes happens
    before Lightning's set_epoch call.
    """

    def __init__(self, size: int, seed: int, epoch: Callable[[], int], repeats: int = 1,
                 weights: Optional[Sequence[float]] = None):
        self.size, self.seed, self.epoch, self.repeats = size, seed, epoch, repeats
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)

    def __len__(self) -> int:
        return self.size * self.repeats

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        epoch = self.epoch()
        rng = torch.Generator().manual_seed(self.seed + epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, len(self), replacement=True, generator=rng).tolist()
        else:
            order = (torch.randperm(len(self), generator=rng) % self.size).tolist()
        return iter([(epoch, index, draw) for draw, index in enumerate(order)])


def balanced_weights(labels: Union[list[int], torch.Tensor]) -> list[float]:
    """Draw weights that give every class an equal share: 1 / videos of the class. Multi-label
    (a 0/1 tensor): a video weighs as its rarest class (videos with no label as one more class)."""
    if isinstance(labels, list):
        counts = Counter(labels)
        return [1.0 / counts[label] for label in labels]
    empty = labels.sum(1) == 0
    per_class = 1.0 / labels.sum(0).clamp(min=1)
    weights = (labels * per_class).amax(1)
    return torch.where(empty, 1.0 / empty.sum().clamp(min=1), weights).tolist()
