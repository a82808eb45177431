"""What the format readers share: JSON reading, the shape error, the index of videos under a root."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from vidclf.data.sources.kinds import VIDEO_EXTENSIONS
from vidclf.errors import VidclfError
from vidclf.io import storage


def load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as err:
        raise VidclfError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise VidclfError(f"{path}: cannot read it ({err.strerror})") from None


def shape_error(path: Path, fmt: str, expected: str) -> VidclfError:
    return VidclfError(f"{path}: not the {fmt} layout vidclf reads ({expected}); pass --data.format NAME if it "
                       f"is another format, or see docs/data.md 'Data sets as they ship'")


@functools.lru_cache(maxsize=8)
def index_videos(root: Path) -> dict[str, str]:
    """{file name without extension: path} of every video under `root` (searched once per process,
    recursively: a split's rows, its val and test rows and the scan all use the one listing); a URL
    folder is listed remotely."""
    found: dict[str, str] = {}
    if storage.is_remote(str(root)):
        for parts, url in storage.files_below(str(root)):
            stem, dot, ext = parts[-1].rpartition(".")
            if dot and f".{ext.lower()}" in VIDEO_EXTENSIONS:
                found.setdefault(stem, url)
        return found
    for folder, _, files in sorted(os.walk(root, followlinks=True)):
        for name in sorted(files):
            stem, dot, ext = name.rpartition(".")
            if dot and f".{ext.lower()}" in VIDEO_EXTENSIONS:
                found.setdefault(stem, str(Path(folder) / name))
    return found
