"""List files (CSV, TSV, JSON Lines) of path,label or path,labels rows, local or remote, with optional split and segment columns."""

from __future__ import annotations

import csv
import functools
import io
import json
import sys
from pathlib import Path
from typing import Optional, Union

from vidclf.data.segments import parse_time, segment
from vidclf.data.sources.listing import Listing
from vidclf.data.sources.splits import SPLIT_NAMES
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.sniff import not_regular

LABEL_SEPARATORS = ";|"  # between the labels of one video in a `labels` cell


LIST_SUFFIXES = (".csv", ".tsv", ".jsonl")


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


def read_list(path: Union[Path, str], need_label: bool, videos_root: Optional[str] = None,
              split_column: str = "split") -> list[dict]:
    """Rows {path, label or labels, split, line} of a CSV/TSV with a header or of JSON Lines objects,
    needing `path` (and `label` or `labels` when labels are needed); the split is read from
    `split_column`, its usual names (training, validation, ...) as train, val, test. Relative paths are
    taken relative to `videos_root`, else to the list's folder (a remote list's too); URLs are kept as
    they are. Other columns are kept out of the rows, named once on the console."""
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
    if split_column != "split" and split_column not in columns:
        raise VidclfError(f"{path}: --data.split_column {split_column}: no such column (the list has {columns})")
    extra = tuple(c for c in columns if c not in ("path", "label", "labels", split_column, "start", "end"))
    if extra:
        _say_unread(str(path), extra, split_column)
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
        rows.append({"path": sample, **{c: row.get(c) for c in label}, "split": _split_name(row.get(split_column)),
                     "line": line})
    return rows


def _split_name(cell) -> Optional[str]:
    """A split cell as train, val or test when it is one of their usual names, else as written."""
    text = str(cell).strip() if cell is not None else ""
    return next((s for s, names in SPLIT_NAMES.items() if text.lower() in names), text or None)


@functools.lru_cache(maxsize=None)
def _say_unread(path: str, extra: tuple[str, ...], split_column: str) -> None:
    """Once per list: the columns vidclf does not read."""
    hint = "; --data.split_column NAME reads the split from another column" if split_column == "split" else ""
    print(f"vidclf: warning: {path}: column(s) {', '.join(extra)} not read (vidclf reads path, label or labels, "
          f"{split_column}, start, end){hint}", file=sys.stderr)


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
