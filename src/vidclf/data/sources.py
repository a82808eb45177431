"""Where videos come from: a class-per-folder tree, a CSV list, a single file or a folder to predict.

Pure functions, no torch. Paths are returned as strings; labels as class-name strings.
"""

from __future__ import annotations

import csv
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from vidclf.errors import VidclfError

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .ts .wmv .flv .3gp .gif".split())

LABELLED_HELP = "pass a folder with one subfolder per class, or a CSV file with path,label columns"


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


@dataclass
class Listing:
    """Videos found in a source, and the files passed over with the reason (for the data report)."""

    items: list = field(default_factory=list)  # (path, label) or paths
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def labelled_videos(source: str) -> Listing:
    """(path, class name) pairs from a class-per-folder tree or a `path,label` CSV.

    Example:
        >>> labelled_videos("data/train").items  # data/train/<class>/*.mp4
        [('data/train/jump/a.mp4', 'jump'), ...]
    """
    root = _existing(source, LABELLED_HELP)
    if root.is_dir():
        listing = _from_class_folders(root)
    else:
        listing = Listing([(path, label) for path, label in _read_csv(root, need_label=True)])
    if not listing.items:
        raise VidclfError(f"{source}: no videos found; {LABELLED_HELP}")
    return listing


def unlabelled_videos(sources: Union[str, list[str]]) -> Listing:
    """Video paths to predict on, in the order given: each source is a file, a folder searched
    recursively, a glob pattern (quoted, e.g. 'clips/**/*.mp4') or a CSV with a path column."""
    listing = Listing()
    for source in [sources] if isinstance(sources, str) else sources:
        if glob.has_magic(source) and not Path(source).exists():
            matches = sorted(glob.glob(source, recursive=True))
            if not matches:
                raise VidclfError(f"{source}: the pattern matches no files; check it, or quote it for the shell")
            found = Listing([m for m in matches if Path(m).is_file()])
        else:
            found = _unlabelled(source)
        listing.items += found.items
        listing.ignored += found.ignored
    return listing


def _unlabelled(source: str) -> Listing:
    root = _existing(source, "pass a video file, a folder of videos, a glob or a CSV with a path column")
    if root.is_dir():
        videos, ignored = _walk(root)
        if not videos:
            raise VidclfError(f"{source}: no video files found (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
        return Listing([str(p) for p in videos], ignored)
    if root.suffix.lower() == ".csv":
        return Listing([path for path, _ in _read_csv(root, need_label=False)])
    return Listing([str(root)])


def _walk(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files below `folder`, symlinked folders followed (each real folder once), sorted; split into
    videos and (path, reason) for hidden or non-video files."""
    videos, ignored, seen = [], [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if is_video_name(path):
                videos.append(path)
            else:
                reason = "hidden file" if name.startswith(".") else f"not a video file name ({path.suffix or 'no extension'})"
                ignored.append((str(path), reason))
    return videos, ignored


def _existing(source: str, fix: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise VidclfError(f"{source}: no such file or folder; {fix}")
    return path


def _from_class_folders(root: Path) -> Listing:
    listing = Listing()
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            listing.ignored.append((str(entry), "not inside a class folder"))
            continue
        videos, ignored = _walk(entry)
        if not videos:
            raise VidclfError(f"{entry}: class folder holds no videos; add videos or remove the folder")
        listing.items += [(str(v), entry.name) for v in videos]
        listing.ignored += ignored
    return listing


def _read_csv(path: Path, need_label: bool) -> list[tuple[str, Optional[str]]]:
    """Rows of a CSV with a header holding `path` (and `label` when labels are needed).

    Relative paths are taken relative to the CSV's folder.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        wanted = ["path", "label"] if need_label else ["path"]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise VidclfError(f"{path}: CSV has columns {columns}, needs {wanted}; "
                              f"add a header line like 'path,label'")
        unknown = [c for c in columns if c not in ("path", "label", "split")]
        if unknown:
            raise VidclfError(f"{path}: unknown CSV column(s) {unknown}; allowed: path, label, split")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row["path"] or (need_label and not row["label"]):
                raise VidclfError(f"{path}:{line}: empty path or label; fill it in or delete the line")
            rows.append((str(path.parent / row["path"]), row.get("label")))
    return rows
