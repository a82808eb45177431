"""Number ranges the options accept. Declared in the signatures, they show in --help and the parser
refuses anything else in one line before any work (`--data.frames 0`, `--model.lr -0.1`)."""

from __future__ import annotations

import copy

from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    restricted_number_type,
)

__all__ = ["DEPTHS", "WIDTHS", "ClosedUnitInterval", "Depth", "HoldOut", "NonNegativeFloat", "NonNegativeInt",
           "OpenUnitInterval", "PositiveFloat", "PositiveInt", "Width", "store_plain"]

HoldOut = restricted_number_type("HoldOut", float, [(">=", 0), ("<", 1)])  # a fraction in [0, 1)
WIDTHS, DEPTHS = (8, 128), (2, 6)  # the small networks: channels of the first block, blocks
Width = restricted_number_type("Width", int, [(">=", WIDTHS[0]), ("<=", WIDTHS[1])])
Depth = restricted_number_type("Depth", int, [(">=", DEPTHS[0]), ("<=", DEPTHS[1])])


def plain(value):
    """The parsed value with int/float subclasses (PositiveInt, ...) as plain numbers."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if type(value) is dict:
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value) if type(value) in (list, tuple) else value
    return value


def store_plain(obj) -> None:
    """Keep `obj`'s saved hyper-parameters plain numbers: checkpoints load with weights_only=True,
    which refuses jsonargparse's number classes."""
    for key, value in obj.hparams.items():
        obj.hparams[key] = plain(value)
    obj._hparams_initial = copy.deepcopy(obj.hparams)
