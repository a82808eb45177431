"""Where videos come from: a class-per-folder tree, a CSV list, a single file or a folder to predict.

Pure functions, no torch. Paths are returned as strings; labels as class-name strings.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from vidclf.data.decode import not_regular
from vidclf.errors import VidclfError

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .ts .wmv .flv .3gp .gif".split())

LABELLED_HELP = ("pass a folder with one subfolder per class, or a CSV/TSV/JSONL list with path,label "
                 "(or path,labels) columns")
LABEL_SEPARATORS = ";|"  # between the labels of one video in a `labels` cell
LIST_SUFFIXES = (".csv", ".tsv", ".jsonl")
SPLIT_NAMES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "validate"),
               "test": ("test", "testing")}


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def looks_like_video(path: Path) -> bool:
    """Whether the first bytes are those of a video container (for files without a video extension)."""
    try:
        with open(path, "rb") as f:
            head = f.read(192)
    except OSError:
        return False
    return (head[4:8] == b"ftyp" or head.startswith((b"\x1a\x45\xdf\xa3", b"GIF87a", b"GIF89a", b"FLV",
                                                      b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3",
                                                      b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"))
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI ") or (len(head) > 188 and head[0] == head[188] == 0x47))


@dataclass
class Listing:
    """Videos found in a source, and the files passed over with the reason (for the data report)."""

    items: list = field(default_factory=list)  # (path, label) or paths
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def labelled_videos(source: str, split: Optional[str] = None, videos_root: Optional[str] = None,
                    multi_label: Optional[bool] = False, allow_empty: bool = False) -> Listing:
    """(path, class name) pairs from a class-per-folder tree or a path,label list (CSV, TSV or
    JSON Lines). A list with a `split` column contributes its rows whose split is `split`.

    Multi-label (a `labels` column, or `multi_label` True): (path, sorted tuple of class names)
    pairs. A `labels` cell separates labels with `;` or `|` (one of them in the whole list); in JSON
    Lines it may be an array. `multi_label` None: decided by the list (a `labels` column).

    Example:
        >>> labelled_videos("data/train").items  # data/train/<class>/*.mp4
        [('data/train/jump/a.mp4', 'jump'), ...]
    """
    root = _existing(source, LABELLED_HELP)
    if root.is_dir():
        splits = _split_folders(root)
        if splits:  # a data set root: ROOT/<split>/<class>/..., as Kinetics ships
            wanted = split or "train"
            if wanted not in splits:
                raise VidclfError(f"{source} holds split folders {sorted(p.name for p in splits.values())} but none "
                                  f"for {wanted} ({' or '.join(SPLIT_NAMES[wanted])}); pass --data.{wanted} PATH")
            root = splits[wanted]
        listing = _from_class_folders(root)
        if multi_label:
            listing.items = [(p, (label,)) for p, label in listing.items]
    else:
        rows = _read_list(root, need_label=True, videos_root=videos_root)
        if split and any(r.get("split") for r in rows):
            rows = [r for r in rows if r.get("split") == split]
        column = "labels" if rows and "labels" in rows[0] else "label"
        if column == "labels" and multi_label is False:
            raise VidclfError(f"{source}: a labels column (several labels per video) in a single-label run; "
                              f"pass --data.multi_label true when training, or give one label per row in a "
                              f"label column")
        if column == "labels" or multi_label:
            sets = label_sets(rows, column, str(root), allow_empty)
            listing = Listing([(r["path"], labels) for r, labels in zip(rows, sets)])
        else:
            odd = next((r for r in rows if not isinstance(r["label"], str)), None)
            if odd:
                raise VidclfError(f"{root}:{odd['line']}: label {json.dumps(odd['label'])} is not one class name; "
                                  f"for several labels per video use a labels column")
            listing = Listing([(r["path"], r["label"]) for r in rows])
    if not listing.items:
        raise VidclfError(f"{source}: no videos found{f' for split {split!r}' if split else ''}; {LABELLED_HELP}")
    _no_duplicates(source, [p for p, _ in listing.items])
    return listing


def label_sets(rows: list[dict], column: str, source: str, allow_empty: bool) -> list[tuple[str, ...]]:
    """The labels of each row's `column` cell as a sorted tuple: a JSON array, or text split at the
    list's one separator (`;` or `|`). An empty set needs `allow_empty` (a video showing no class)."""
    first: dict[str, int] = {}  # separator -> first line using it
    sets = []
    for row in rows:
        cell, line = row[column], row["line"]
        if isinstance(cell, list):
            if not all(isinstance(x, str) for x in cell):
                raise VidclfError(f"{source}:{line}: {column} {json.dumps(cell)} must be an array of class names")
            parts = cell
        else:
            used = [sep for sep in LABEL_SEPARATORS if sep in (cell or "")]
            for sep in used:
                first.setdefault(sep, line)
            if len(first) > 1:
                a, b = sorted(first, key=first.get)
                raise VidclfError(f"{source}:{line}: labels separated by {b!r} here but by {a!r} on line {first[a]}; "
                                  f"separate labels with one of ; or | in the whole list")
            parts = (cell or "").split(used[0]) if used else [cell or ""]
        labels = tuple(sorted({p.strip() for p in parts if p.strip()}))
        if not labels and not allow_empty:
            raise VidclfError(f"{source}:{line}: no label for {row['path']}; give at least one, or pass "
                              f"--data.allow_empty_labels true if the video shows none of the classes")
        sets.append(labels)
    return sets


def has_split(source: Optional[str], split: str) -> bool:
    """Whether `source` (a data set root folder, or a list with a split column) holds `split` videos."""
    path = Path(source).expanduser() if source else None
    if path is None or not path.exists():
        return False
    if path.is_dir():
        return split in _split_folders(path)
    if path.suffix.lower() not in LIST_SUFFIXES:
        return False
    return any(r.get("split") == split for r in _read_list(path, need_label=False))


def _split_folders(root: Path) -> dict[str, Path]:
    """{split: folder} when every subfolder of `root` is named for a split (train/, val/, test/ ...)."""
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    named = {split: p for p in folders for split, names in SPLIT_NAMES.items() if p.name.lower() in names}
    return named if folders and len(named) == len(folders) else {}


def unlabelled_videos(sources: Union[str, list[str]], videos_root: Optional[str] = None) -> Listing:
    """Video paths to predict on, in the order given: each source is a file, a folder searched
    recursively, a glob pattern (quoted, e.g. 'clips/**/*.mp4') or a CSV with a path column."""
    listing = Listing()
    for source in [sources] if isinstance(sources, str) else sources:
        if glob.has_magic(source) and not Path(source).exists():
            matches = sorted(glob.glob(source, recursive=True))
            if not matches:
                raise VidclfError(f"{source}: the pattern matches no files; check it, or quote it for the shell")
            found = Listing([m for m in matches if Path(m).is_file()],
                            [(m, not_regular(m)) for m in matches if not Path(m).is_dir() and not_regular(m)])
        else:
            found = _unlabelled(source, videos_root)
        listing.items += found.items
        listing.ignored += found.ignored
    return listing


def _unlabelled(source: str, videos_root: Optional[str]) -> Listing:
    root = _existing(source, "pass a video file, a folder of videos, a glob or a CSV with a path column")
    if root.is_dir():
        videos, ignored = _walk(root)
        if not videos:
            raise VidclfError(f"{source}: no video files found (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
        return Listing([str(p) for p in videos], ignored)
    if root.suffix.lower() in LIST_SUFFIXES:
        return Listing([r["path"] for r in _read_list(root, need_label=False, videos_root=videos_root)])
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
            odd = not_regular(str(path))  # never opened: reading a named pipe or socket blocks forever
            if not odd and (is_video_name(path) or (not name.startswith(".") and looks_like_video(path))):
                videos.append(path)
            else:
                reason = odd or ("hidden file" if name.startswith(".") else
                                 f"not a video file name ({path.suffix or 'no extension'})")
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


def _read_list(path: Path, need_label: bool, videos_root: Optional[str] = None) -> list[dict]:
    """Rows {path, label or labels, split, line} of a CSV/TSV with a header or of JSON Lines objects,
    needing `path` (and `label` or `labels` when labels are needed). Relative paths are taken relative
    to `videos_root`, else to the list's folder."""
    if not_regular(str(path)):  # reading a named pipe could block forever
        raise VidclfError(f"{path}: {not_regular(str(path))}; pass a CSV/TSV/JSONL file")
    with open(path, newline="", encoding="utf-8-sig") as f:
        if path.suffix.lower() == ".jsonl":
            try:
                records = [(n, json.loads(line)) for n, line in enumerate(f, start=1) if line.strip()]
            except json.JSONDecodeError as err:
                raise VidclfError(f"{path}:{err.lineno}: not a JSON object per line ({err.msg})") from None
            columns = sorted({k for _, r in records for k in r})
        else:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            columns = reader.fieldnames or []
            records = list(enumerate(reader, start=2))
    label = [c for c in ("label", "labels") if c in columns]
    if "path" not in columns or (need_label and not label):
        raise VidclfError(f"{path}: list has columns {columns}, needs {['path', 'label'] if need_label else ['path']}; "
                          f"add a header line like 'path,label' (or 'path,labels' for several labels per video)")
    if len(label) > 1:
        raise VidclfError(f"{path}: list has both label and labels columns; keep one (labels: several per video)")
    unknown = [c for c in columns if c not in ("path", "label", "labels", "split")]
    if unknown:
        raise VidclfError(f"{path}: unknown column(s) {unknown}; allowed: path, label (or labels), split")
    base = Path(videos_root) if videos_root else path.parent
    rows = []
    for line, row in records:
        if not row.get("path") or (need_label and label == ["label"] and not row.get("label")):
            raise VidclfError(f"{path}:{line}: empty path or label; fill it in or delete the line")
        rows.append({"path": str(base / str(row["path"])), **{c: row.get(c) for c in label},
                     "split": row.get("split"), "line": line})
    return rows


def _no_duplicates(source: str, paths: list[str]) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise VidclfError(f"{source}: {path} is listed twice; keep one entry per video")
        seen.add(path)


def check_disjoint(splits: dict[str, list[str]]) -> None:
    """One video in two splits would leak training data into evaluation: refuse, naming it."""
    owner: dict[str, str] = {}
    for name, paths in splits.items():
        for path in paths:
            real = os.path.realpath(path)
            if real in owner and owner[real] != name:
                raise VidclfError(f"{path} is in both {owner[real]} and {name}; a video belongs to one split")
            owner[real] = name
