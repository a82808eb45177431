"""The annotation files data sets ship, read as they are: each format is a small parser that turns
its files into list rows {path, label or labels, split, line} (path: a video file, or a segment
FILE#t=START,END), as vidclf's own CSV lists give; a video the annotations name but the disk lacks
is a row {path, missing: reason, split, line}, to be reported, not to stop the run.

Formats and the layout each expects are documented in docs/data.md ("Data sets as they ship").
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from vidclf.data.sources.formats import activitynet, charades, kinetics, labelstudio, ssv2, ucf_hmdb
from vidclf.data.sources.formats.common import load_json
from vidclf.io import storage

READERS = {"ucf101": ucf_hmdb.read_ucf101, "hmdb51": ucf_hmdb.read_hmdb51, "kinetics": kinetics.read,
           "ssv2": ssv2.read, "activitynet": activitynet.read, "charades": charades.read_videos,
           "charades_segments": charades.read_segments, "labelstudio": labelstudio.read}
NAMES = ("auto", "list", *READERS)


def recognise(path: Path) -> Optional[str]:
    """The format of annotation file (or folder) `path`, from its name or content; None for vidclf's
    own lists, class folders and anything else."""
    if path.is_dir():
        return "hmdb51" if any(path.glob("*_test_split[0-9].txt")) else None
    name = path.name.lower()
    if ucf_hmdb.UCF_LIST.match(name) or (name.endswith(".txt") and ucf_hmdb.looks_like_ucf(path)):
        return "ucf101"
    if ucf_hmdb.HMDB_FILE.match(name):
        return "hmdb51"
    if name.endswith(".csv"):
        header = _first_line(path).lower().replace(" ", "").split(",")
        if {"label", "youtube_id", "time_start", "time_end"} <= set(header):
            return "kinetics"
        if {"id", "actions"} <= set(header):
            return "charades"
    if name.endswith(".json"):
        data = load_json(path)
        if isinstance(data, dict) and isinstance(data.get("database"), dict):
            return "activitynet"
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        if "template" in first and "id" in first or ("id" in first and set(first) == {"id"} and ssv2.labels_beside(path)):
            return "ssv2"
        if "data" in first and ("annotations" in first or "predictions" in first):
            return "labelstudio"
    return None


def read(name: str, path: Path, videos_root: Optional[str], split_number: int) -> list[dict]:
    """The rows of annotation file `path` in format `name`; a video the annotations name that is not
    on disk is a row with a "missing" reason. `videos_root` may be a URL (s3://...)."""
    if videos_root and storage.is_remote(videos_root):
        return READERS[name](path, storage.UrlFolder(videos_root), split_number)
    root = Path(videos_root) if videos_root else (path if path.is_dir() else path.parent)
    return READERS[name](path, root, split_number)


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return f.readline().strip()
