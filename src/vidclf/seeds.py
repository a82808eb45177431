"""Seeds derived from several integer keys, so that randomness is a function of (seed, epoch, item, ...)."""

from __future__ import annotations

import numpy as np


def derived_seed(*keys: int) -> int:
    """A well-mixed 32-bit seed from integer keys, e.g. (seed, epoch, index)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])
