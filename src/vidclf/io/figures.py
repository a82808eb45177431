"""Figures as PNG files: matplotlib without a display, each file written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path


def pyplot():
    """matplotlib.pyplot drawing to files (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write a figure as PNG, whole or not at all."""
    tmp = path.with_name(f".tmp-{path.name}")
    fig.savefig(tmp, format="png")
    pyplot().close(fig)
    os.replace(tmp, path)
