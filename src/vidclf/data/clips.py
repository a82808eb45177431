"""Clip planning: the clip settings a backbone implies, where clips start in a video, and the times of their frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from vidclf.data.failures import DecodeError


def clip_times(starts, frames: int, interval: float) -> np.ndarray:
    """(N, frames) timestamps: clip n starts at starts[n], frames `interval` seconds apart."""
    return np.asarray(starts, dtype=np.float64)[:, None] + np.arange(frames) * interval


def uniform_starts(duration: float, clip_seconds: float, num_clips: int) -> list[float]:
    """`num_clips` clip starts spread evenly so the clips cover the whole video."""
    last = max(0.0, duration - clip_seconds)
    if num_clips == 1:
        return [last / 2]
    return [last * i / (num_clips - 1) for i in range(num_clips)]


@dataclass(frozen=True)
class ClipSettings:
    """How clips are cut from a video (defaults come from the backbone spec)."""

    frames: int
    rate: int  # one frame every `rate` frames of 30 fps video
    crop: int
    resize: int  # eval short side
    train_resize: tuple[int, int]  # train short side range

    @property
    def interval(self) -> float:
        return self.rate / 30.0

    @property
    def seconds(self) -> float:
        return self.frames * self.interval


def within(duration: float, start: Optional[float], end: Optional[float],
           tolerance: float = 1e-3) -> tuple[float, float, str]:
    """(first, last, note): the part of a video of `duration` s a sample covers: all of it, or its
    segment clipped to the video (the note says so, unless it ends within `tolerance` after the
    video); a segment starting after the end is an error."""
    if start is None:
        return 0.0, duration, ""
    if start >= duration:
        raise DecodeError(f"the segment starts at {start:g} s, after the video ends ({duration:.2f} s)")
    if end > duration + tolerance:
        return start, duration, f"segment ends at {end:g} s, after the video ({duration:.2f} s): clipped to it"
    return start, min(end, duration), ""
