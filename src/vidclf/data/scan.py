"""Check every video before training: it opens, has a video stream and a duration, and its first
frame decodes. Results are remembered by path, size and mtime, so a second run checks nothing."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from vidclf.data.decode import VideoReader, failure

DEFAULT_STORE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "vidclf" / "scan.json"


def probe(path: str) -> Optional[str]:
    """None if `path` is a usable video, else the reason it is not."""
    try:
        with VideoReader(path) as reader:
            if not reader.info.duration > 0:
                return "no duration"
            reader.clips(np.zeros((1, 1)), short_side=16)
    except Exception as err:  # any exception: the file is reported, the scan goes on
        return failure(err)
    return None


def scan(paths: list[str], store: Path = DEFAULT_STORE, workers: Optional[int] = None) -> dict[str, str]:
    """{path: reason} for the unusable videos among `paths`; progress bar for the ones not remembered."""
    known = _load(store)
    keys = {p: _key(p) for p in paths}
    todo = [p for p in paths if keys[p] not in known]
    if todo:
        # PyAV releases the GIL while demuxing and decoding, so threads run in parallel
        with ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
            results = list(tqdm(pool.map(probe, todo), total=len(todo), desc="vidclf: checking videos",
                                unit="video", disable=len(todo) < 20))
        known.update({keys[p]: reason or "" for p, reason in zip(todo, results)})
        _save(store, known)
    return {p: known[keys[p]] for p in paths if known[keys[p]]}


def _key(path: str) -> str:
    try:
        stat = os.stat(path)
    except OSError:
        return f"{path}|missing"
    return f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


def _load(store: Path) -> dict[str, str]:
    try:
        return json.loads(store.read_text())
    except (OSError, ValueError):
        return {}


def _save(store: Path, known: dict[str, str]) -> None:
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, store)
    except OSError:
        pass  # a read-only cache folder only costs a rescan next time
