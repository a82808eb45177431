"""Charades: `Charades_v1_train.csv` / `_test.csv` (columns id, ..., actions = `c092 11.90 21.20;c147
0.00 12.60`) with `Charades_v1_classes.txt` beside (`c092 Holding a phone`); videos `<id>.mp4`
under the videos root. `charades`: every video with its set of actions (multi-label, the standard
task); `charades_segments`: every action a labelled segment."""

from __future__ import annotations

import csv
from pathlib import Path

from vidclf.data.segments import segment
from vidclf.data.sources.formats.common import index_videos, shape_error
from vidclf.errors import VidclfError


def _actions(path: Path, root: Path):
    """(row number, video file or None, [(class name, start, end)]) per row, and the video index."""
    classes_file = path.with_name("Charades_v1_classes.txt")
    if not classes_file.is_file():
        raise VidclfError(f"{path}: Charades needs Charades_v1_classes.txt beside it; put it at {classes_file}")
    names = dict(line.split(" ", 1) for line in classes_file.read_text().splitlines() if line.strip())
    videos = index_videos(root)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"id", "actions"} <= set(reader.fieldnames or []):
            raise shape_error(path, "Charades", "columns id,...,actions")
        for number, row in enumerate(reader, start=2):
            actions = []
            for action in filter(None, (a.strip() for a in (row["actions"] or "").split(";"))):
                parts = action.split()
                if len(parts) != 3 or parts[0] not in names:
                    raise VidclfError(f"{path}:{number}: action {action!r}: expected `cNNN START END` with a class of "
                                      f"{classes_file.name}")
                actions.append((names[parts[0]].strip(), float(parts[1]), float(parts[2])))
            yield number, row["id"], videos.get(row["id"]), actions


def _found(path: Path, root: Path, missing: list):
    """(row number, video, actions) of the rows whose video is on disk; the others go to `missing`
    as rows saying so."""
    for number, vid, video, actions in _actions(path, root):
        if video is None:
            missing.append({"path": str(root / f"{vid}.mp4"), "missing": f"missing: no {vid}.* under {root}",
                            "split": None, "line": number})
        else:
            yield number, video, actions


def read_videos(path: Path, root: Path, split_number: int) -> list[dict]:
    missing: list = []
    rows = [{"path": video, "labels": sorted({a[0] for a in actions}), "split": None, "line": number}
            for number, video, actions in _found(path, root, missing)]
    return rows + missing


def read_segments(path: Path, root: Path, split_number: int) -> list[dict]:
    missing: list = []
    rows = [{"path": segment(video, start, max(end, start + 0.01)), "label": label, "split": None, "line": number}
            for number, video, actions in _found(path, root, missing) for label, start, end in actions]
    return rows + missing
