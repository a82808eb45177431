"""ActivityNet 1.3 JSON: `database.<id>` = {subset: training|validation|testing, annotations: [{segment:
[start, end], label}]}; each annotation is a segment of video `v_<id>.<ext>` or `<id>.<ext>` under the
videos root (the downloaders' names)."""

from __future__ import annotations

from pathlib import Path

from vidclf.data.segments import segment
from vidclf.data.sources.formats.common import index_videos, load_json, shape_error

SUBSETS = {"training": "train", "validation": "val", "testing": "test"}


def read(path: Path, root: Path, split_number: int) -> list[dict]:
    data = load_json(path)
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise shape_error(path, "ActivityNet", "an object with a database of videos")
    videos = index_videos(root)
    rows = []
    for vid, entry in database.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations", []), list):
            raise shape_error(path, "ActivityNet", f"database.{vid} with subset and annotations")
        found = videos.get(f"v_{vid}") or videos.get(vid)
        notes = [a for a in entry.get("annotations", []) if isinstance(a, dict)]
        if notes and found is None:
            rows.append({"path": str(root / f"v_{vid}.mp4"), "missing": f"missing: no v_{vid}.* or {vid}.* under "
                         f"{root}", "split": SUBSETS.get(entry.get("subset")), "line": f"database.{vid}"})
            continue
        for number, note in enumerate(notes):
            start, end = (float(t) for t in note["segment"])
            rows.append({"path": segment(found, start, end), "label": note["label"],
                         "split": SUBSETS.get(entry.get("subset")), "line": f"database.{vid}.annotations[{number}]"})
    return rows
