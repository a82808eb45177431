"""Labelled time ranges of videos: a sample is a video file, or a segment of one, `FILE#t=START,END`.

The segment form is the W3C Media Fragments time syntax, so a segment travels through the data
pipeline, the reports and the prediction files as one string, as a file does; only decoding, the
scan, the frame cache and the split check look inside it (they work per file, shared by all its
segments).
"""

from __future__ import annotations

import os
import re
from typing import Optional

FRAGMENT = re.compile(r"^(.*)#t=([0-9.]+),([0-9.]+)$")
CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")  # [HH:]MM:SS[.mmm]


def parse_time(text) -> float:
    """Seconds from `12.5`, `01:02.5` or `01:02:03.250`; ValueError for anything else."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        text = str(text).strip()
        clock = CLOCK.match(text)
        if clock:
            hours, minutes, seconds = clock.groups()
            if float(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
                raise ValueError(f"{text!r} is not a time")
            value = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        else:
            value = float(text)  # ValueError for words
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r} is not a time")
    return value


def segment(path: str, start: float, end: float) -> str:
    """The sample string of `path` from `start` to `end` seconds."""
    return f"{path}#t={_number(start)},{_number(end)}"


def split(sample: str) -> tuple[str, Optional[float], Optional[float]]:
    """(file, start, end) of a sample; start and end are None for a whole file (also for a file
    whose own name happens to end like a fragment)."""
    found = FRAGMENT.match(sample)
    if not found or os.path.exists(sample):
        return sample, None, None
    return found[1], float(found[2]), float(found[3])


def file_of(sample: str) -> str:
    return split(sample)[0]


def _number(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
