"""Kinetics 400/600/700 annotation CSV: `label,youtube_id,time_start,time_end,split` (and K400's
`is_cc`), split train / validate / test. Videos as the common downloaders name them:
`<id>_<start:06d>_<end:06d>.<ext>` (trimmed; in `<split>/<class>/`, `<class>/` or flat under the
videos root), or the untrimmed `<id>.<ext>`, read from time_start to time_end."""

from __future__ import annotations

import csv
from pathlib import Path

from vidclf.data.segments import segment
from vidclf.data.sources.formats.common import index_videos, shape_error
from vidclf.errors import VidclfError

SPLITS = {"train": "train", "validate": "val", "val": "val", "validation": "val", "test": "test"}


def read(path: Path, root: Path, split_number: int) -> list[dict]:
    videos = index_videos(root)
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"label", "youtube_id", "time_start", "time_end"} <= set(reader.fieldnames or []):
            raise shape_error(path, "Kinetics", "columns label,youtube_id,time_start,time_end,split")
        for number, row in enumerate(reader, start=2):
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError:
                raise VidclfError(f"{path}:{number}: time_start {row['time_start']!r}, time_end {row['time_end']!r} "
                                  f"are not numbers") from None
            vid, split = row["youtube_id"], SPLITS.get((row.get("split") or "").strip())
            trimmed = f"{vid}_{start:06d}_{end:06d}"
            if trimmed in videos:
                sample = videos[trimmed]
            elif vid in videos:
                sample = segment(videos[vid], start, end)
            else:
                rows.append({"path": str(root / f"{trimmed}.mp4"), "missing": f"missing: no {trimmed}.* or {vid}.* "
                             f"under {root}", "split": split, "line": number})
                continue
            rows.append({"path": sample, "label": row["label"], "split": split, "line": number})
    return rows
