"""Where videos come from: a class-per-folder tree, a CSV list, a single file or a folder to predict.

Pure functions, no torch. Paths are returned as strings; labels as class-name strings.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

from vidclf.errors import VidclfError

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .ts .wmv .flv .3gp .gif".split())

LABELLED_HELP = "pass a folder with one subfolder per class, or a CSV file with path,label columns"


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def labelled_videos(source: str) -> list[tuple[str, str]]:
    """(path, class name) pairs from a class-per-folder tree or a `path,label` CSV.

    Example:
        >>> labelled_videos("data/train")  # data/train/<class>/*.mp4
        [('data/train/jump/a.mp4', 'jump'), ...]
    """
    root = _existing(source, LABELLED_HELP)
    if root.is_dir():
        items = _from_class_folders(root)
    else:
        items = [(path, label) for path, label in _read_csv(root, need_label=True)]
    if not items:
        raise VidclfError(f"{source}: no videos found; {LABELLED_HELP}")
    return items


def unlabelled_videos(source: str) -> list[str]:
    """Video paths to predict on: one file, a folder searched recursively, or a CSV with a path column."""
    root = _existing(source, "pass a video file, a folder of videos or a CSV with a path column")
    if root.is_dir():
        paths = sorted(str(p) for p in root.rglob("*") if p.is_file() and is_video_name(p))
        if not paths:
            raise VidclfError(f"{source}: no video files found (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
        return paths
    if root.suffix.lower() == ".csv":
        return [path for path, _ in _read_csv(root, need_label=False)]
    return [str(root)]


def _existing(source: str, fix: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise VidclfError(f"{source}: no such file or folder; {fix}")
    return path


def _from_class_folders(root: Path) -> list[tuple[str, str]]:
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = sorted(p for p in folder.rglob("*") if p.is_file() and is_video_name(p))
        if not videos:
            raise VidclfError(f"{folder}: class folder holds no videos; add videos or remove the folder")
        items += [(str(v), folder.name) for v in videos]
    return items


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
