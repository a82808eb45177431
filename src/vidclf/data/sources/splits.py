"""Splits: the names of split folders, a held-out validation split, and no video in two splits."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from vidclf.data.segments import file_of
from vidclf.errors import VidclfError
from vidclf.io import storage

SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "validate"),
               "test": ("test", "testing")}


def hmdb51_source(sample: str, label: str) -> str:
    """The source video of an HMDB51 clip, `<title>_<action>_<tags>_<n>.avi`: its title (the part before
    `_<action>_`), so clips cut from one film stay in one split."""
    name = Path(file_of(sample)).stem
    return name.split(f"_{label}_", 1)[0] if f"_{label}_" in name else name


def check_disjoint(splits: dict[str, list[str]], shared_videos: bool = False) -> None:
    """One video in two splits would leak training data into evaluation: refuse, naming it. Segments
    of one video count as that video (they share its scene and people), unless `shared_videos`."""
    owner: dict[str, tuple[str, str]] = {}
    for name, samples in splits.items():
        for sample in samples:
            video = file_of(sample)
            real = video if storage.is_remote(video) else os.path.realpath(video)
            if real in owner and owner[real][0] != name:
                first = owner[real][1]
                if sample == video and first == video:
                    raise VidclfError(f"{sample} is in both {owner[real][0]} and {name}; a video belongs to one split")
                if not shared_videos:
                    raise VidclfError(f"{video}: segments of this video are in both {owner[real][0]} ({first}) and "
                                      f"{name} ({sample}); segments of one video share its scene and people, so "
                                      f"evaluating on them measures memory: keep each video in one split, or pass "
                                      f"--data.shared_videos true to allow it")
            owner.setdefault(real, (name, sample))


def stratified_split(items: list[tuple[str, str]], fraction: float, seed: int,
                     source: Optional[Callable[[str, str], str]] = None) -> tuple[list, list]:
    """Split (path, label) items into (train, val), holding out `fraction` of each class (at least
    one video of any class that has two or more), the same way for the same seed. Multi-label items
    are grouped by their set of labels; the segments of one video stay together, grouped by the
    video's most frequent label; so do the clips of one source video when `source(path, label)`
    names it (HMDB51: `hmdb51_source`)."""
    rng = random.Random(seed)
    videos: dict[str, list] = {}
    for item in items:
        videos.setdefault(source(*item) if source else file_of(item[0]), []).append(item)
    kind = {video: Counter(label for _, label in members).most_common(1)[0][0] for video, members in videos.items()}
    train, val = [], []
    for label in sorted(set(kind.values())):
        members = sorted(video for video in videos if kind[video] == label)
        rng.shuffle(members)
        k = min(max(round(len(members) * fraction), 1), len(members) - 1) if len(members) > 1 else 0
        val += [item for video in members[:k] for item in videos[video]]
        train += [item for video in members[k:] for item in videos[video]]
    return sorted(train), sorted(val)
