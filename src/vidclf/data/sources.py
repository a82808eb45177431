"""Where videos come from: a class-per-folder tree, a CSV list, a single file or a folder to predict.

Pure functions, no torch. Paths are returned as strings; labels as class-name strings.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from vidclf.data import storage
from vidclf.data.decode import not_regular
from vidclf.data.segments import file_of, parse_time, segment
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
                    multi_label: Optional[bool] = False, allow_empty: bool = False, format: str = "auto",
                    split_number: int = 1) -> Listing:
    """(path, class name) pairs from a class-per-folder tree or a path,label list (CSV, TSV or
    JSON Lines). A list with a `split` column contributes its rows whose split is `split`.

    Multi-label (a `labels` column, or `multi_label` True): (path, sorted tuple of class names)
    pairs. A `labels` cell separates labels with `;` or `|` (one of them in the whole list); in JSON
    Lines it may be an array. `multi_label` None: decided by the list (a `labels` column).

    A data set's own annotation files (UCF101, HMDB51, Kinetics, Something-Something v2, ActivityNet,
    Charades, Label Studio; `format`, or recognised) give rows as a list does; videos they name that
    are missing are listed in `ignored` with the reason `missing: ...`.

    Example:
        >>> labelled_videos("data/train").items  # data/train/<class>/*.mp4
        [('data/train/jump/a.mp4', 'jump'), ...]
    """
    from vidclf.data import formats, remote_sources

    if storage.is_remote(source):
        listing = remote_sources.labelled_videos(source, split, videos_root, multi_label, allow_empty)
        _no_duplicates(source, [p for p, _ in listing.items])
        return listing
    root = _existing(source, LABELLED_HELP)
    fmt, missing = _format(root, format), []
    if fmt not in (None, "list"):
        rows = formats.read(fmt, root, videos_root, split_number)
        if split and any(r.get("split") for r in rows):
            rows = [r for r in rows if r.get("split") == split]
        missing = [(r["path"], r["missing"]) for r in rows if "missing" in r]
        listing = from_rows([r for r in rows if "missing" not in r], source, root, split, multi_label, allow_empty)
        if not listing.items and missing:
            raise VidclfError(f"{source}: none of the {len(missing)} videos it names{f' for {split}' if split else ''} "
                              f"is on disk ({missing[0][1]}); set --data.videos_root to the folder holding them")
    elif root.is_dir():
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
        listing = from_rows(read_list(root, need_label=True, videos_root=videos_root), source, root, split,
                             multi_label, allow_empty)
    listing.ignored += missing
    if not listing.items:
        raise VidclfError(f"{source}: no videos found{f' for split {split!r}' if split else ''}; {LABELLED_HELP}")
    _no_duplicates(source, [p for p, _ in listing.items])
    return listing


def _format(root: Path, given: str) -> Optional[str]:
    """The annotation format of `root`: `given`, or recognised (None: vidclf's own forms)."""
    from vidclf.data import formats

    if given != "auto":
        return given
    return formats.recognise(root)


def from_rows(rows: list[dict], source: str, root: Path, split: Optional[str], multi_label: Optional[bool],
               allow_empty: bool) -> Listing:
    """(path, label or label set) items of list rows, those of `split` when rows name splits."""
    if split and any(r.get("split") for r in rows):
        rows = [r for r in rows if r.get("split") == split]
    column = "labels" if rows and "labels" in rows[0] else "label"
    if column == "labels" and multi_label is False:
        raise VidclfError(f"{source}: a labels column (several labels per video) in a single-label run; "
                          f"pass --data.multi_label true when training, or give one label per row in a "
                          f"label column")
    if column == "labels" or multi_label:
        sets = label_sets(rows, column, str(root), allow_empty)
        return Listing([(r["path"], labels) for r, labels in zip(rows, sets)])
    unlabelled = next((r for r in rows if r["label"] is None), None)
    if unlabelled:  # an annotation file without labels (Something-Something v2's test.json)
        raise VidclfError(f"{root}:{unlabelled['line']}: {unlabelled['path']} has no label; a file without labels "
                          f"can be predicted on (--data.predict), not trained or evaluated on")
    odd = next((r for r in rows if not isinstance(r["label"], str)), None)
    if odd:
        raise VidclfError(f"{root}:{odd['line']}: label {json.dumps(odd['label'])} is not one class name; "
                          f"for several labels per video use a labels column")
    return Listing([(r["path"], r["label"]) for r in rows])


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


def has_split(source: Optional[str], split: str, format: str = "auto", videos_root: Optional[str] = None,
              split_number: int = 1) -> bool:
    """Whether `source` (a data set root folder, a list with a split column, or annotations naming
    splits) holds `split` videos."""
    from vidclf.data import formats, remote_sources

    if source and storage.is_remote(source):
        return remote_sources.has_split(source, split)
    path = Path(source).expanduser() if source else None
    if path is None or not path.exists():
        return False
    fmt = _format(path, format)
    if fmt not in (None, "list"):
        return any(r.get("split") == split for r in formats.read(fmt, path, videos_root, split_number))
    if path.is_dir():
        return split in _split_folders(path)
    if path.suffix.lower() not in LIST_SUFFIXES:
        return False
    return any(r.get("split") == split for r in read_list(path, need_label=False))


def _split_folders(root: Path) -> dict[str, Path]:
    """{split: folder} when every subfolder of `root` is named for a split (train/, val/, test/ ...)."""
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    named = {split: p for p in folders for split, names in SPLIT_NAMES.items() if p.name.lower() in names}
    return named if folders and len(named) == len(folders) else {}


def unlabelled_videos(sources: Union[str, list[str]], videos_root: Optional[str] = None) -> Listing:
    """Video paths to predict on, in the order given: each source is a file, a folder searched
    recursively, a glob pattern (quoted, e.g. 'clips/**/*.mp4') or a CSV with a path column; any of
    them may be a URL (s3://...)."""
    from vidclf.data import remote_sources

    listing = Listing()
    for source in [sources] if isinstance(sources, str) else sources:
        if storage.is_remote(source):
            found = remote_sources.unlabelled_videos(source, videos_root)
        elif glob.has_magic(source) and not Path(source).exists():
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
    from vidclf.data import formats

    root = _existing(source, "pass a video file, a folder of videos, a glob or a CSV with a path column")
    fmt = _format(root, "auto")
    if fmt:  # a data set's annotation file: its videos (or segments), labels unused
        rows = formats.read(fmt, root, videos_root, 1)
        return Listing([r["path"] for r in rows if "missing" not in r], [(r["path"], r["missing"]) for r in rows
                                                                         if "missing" in r])
    if root.is_dir():
        videos, ignored = _walk(root)
        if not videos:
            raise VidclfError(f"{source}: no video files found (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
        return Listing([str(p) for p in videos], ignored)
    if root.suffix.lower() in LIST_SUFFIXES:
        return Listing([r["path"] for r in read_list(root, need_label=False, videos_root=videos_root)])
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


def read_list(path: Union[Path, str], need_label: bool, videos_root: Optional[str] = None) -> list[dict]:
    """Rows {path, label or labels, split, line} of a CSV/TSV with a header or of JSON Lines objects,
    needing `path` (and `label` or `labels` when labels are needed). Relative paths are taken relative
    to `videos_root`, else to the list's folder (a remote list's too); URLs are kept as they are."""
    remote = storage.is_remote(str(path))
    if not remote and not_regular(str(path)):  # reading a named pipe could block forever
        raise VidclfError(f"{path}: {not_regular(str(path))}; pass a CSV/TSV/JSONL file")
    suffix = Path(str(path)).suffix.lower()
    with (io.StringIO(_remote_text(str(path)), newline="") if remote else
          open(path, newline="", encoding="utf-8-sig")) as f:
        if suffix == ".jsonl":
            try:
                records = [(n, json.loads(line)) for n, line in enumerate(f, start=1) if line.strip()]
            except json.JSONDecodeError as err:
                raise VidclfError(f"{path}:{err.lineno}: not a JSON object per line ({err.msg})") from None
            columns = sorted({k for _, r in records for k in r})
        else:
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            columns = reader.fieldnames or []
            records = list(enumerate(reader, start=2))
    label = [c for c in ("label", "labels") if c in columns]
    if "path" not in columns or (need_label and not label):
        raise VidclfError(f"{path}: list has columns {columns}, needs {['path', 'label'] if need_label else ['path']}; "
                          f"add a header line like 'path,label' (or 'path,labels' for several labels per video)")
    if len(label) > 1:
        raise VidclfError(f"{path}: list has both label and labels columns; keep one (labels: several per video)")
    unknown = [c for c in columns if c not in ("path", "label", "labels", "split", "start", "end")]
    if unknown:
        raise VidclfError(f"{path}: unknown column(s) {unknown}; allowed: path, label (or labels), split, start, end")
    if ("start" in columns) != ("end" in columns):
        raise VidclfError(f"{path}: a segment needs both start and end columns (seconds or HH:MM:SS.mmm); "
                          f"add the missing one, or remove both to use whole videos")
    base = videos_root or (str(path).rsplit("/", 1)[0] if remote else str(Path(path).parent))
    rows = []
    for line, row in records:
        if not row.get("path") or (need_label and label == ["label"] and not row.get("label")):
            raise VidclfError(f"{path}:{line}: empty path or label; fill it in or delete the line")
        sample = _resolve(base, str(row["path"]))
        if "start" in columns:
            sample = _segment(path, line, sample, row.get("start"), row.get("end"))
        rows.append({"path": sample, **{c: row.get(c) for c in label}, "split": row.get("split"), "line": line})
    return rows


def _segment(listing: Path, line: int, video: str, start, end) -> str:
    """The sample string of one list row's segment (no times: the whole video), or one line naming the row."""
    if not start and not end:
        return video
    try:
        times = [parse_time(t) for t in (start, end)]
    except ValueError:
        raise VidclfError(f"{listing}:{line}: start {start!r}, end {end!r}: give times as seconds (12.5) or "
                          f"HH:MM:SS.mmm (00:00:12.500)") from None
    if times[1] <= times[0]:
        raise VidclfError(f"{listing}:{line}: the segment ends ({end}) at or before it starts ({start}); "
                          f"fix the times or delete the line")
    return segment(video, *times)


def _no_duplicates(source: str, paths: list[str]) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise VidclfError(f"{source}: {path} is listed twice; keep one entry per video")
        seen.add(path)


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


def _resolve(base: str, path: str) -> str:
    """A list's `path` cell as a path or URL: URLs as they are, others relative to `base`."""
    if storage.is_remote(path):
        return path
    return storage.join(base, path) if storage.is_remote(base) else str(Path(base) / path)


def _remote_text(url: str) -> str:
    try:
        return storage.read_text(url)
    except OSError as err:
        raise VidclfError(f"{url}: {storage.reason(err)}") from None
    except UnicodeDecodeError:
        raise VidclfError(f"{url}: not a UTF-8 text list; pass a CSV/TSV/JSONL file") from None
