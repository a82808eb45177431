"""Check every video before training: it opens, has a video stream and a duration, and its first
frame decodes. What the check learns of each file (its error, duration, size, frame rate, codec;
`vidclf data` adds a content hash) is remembered by path, size and mtime, so a second run checks
nothing."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from filelock import FileLock
from tqdm import tqdm

from vidclf.cores import core_count
from vidclf.data.decode import VideoReader
from vidclf.data.failures import failure
from vidclf.data.segments import file_of
from vidclf.io import secrets, storage

DEFAULT_STORE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "vidclf" / "scan.json"
REMOTE_THREADS = 8  # scan threads per core when files are remote
HASHED = 64 * 1024  # bytes hashed from each end of a file (with its size): copies match, whatever the size


def probe(path: str) -> dict:
    """What a file is: {"error": reason or "", "duration", "width", "height", "fps", "codec"}."""
    facts: dict = {"error": ""}
    try:
        with VideoReader(path) as reader:
            facts.update(duration=reader.info.duration, width=reader.info.width, height=reader.info.height,
                         fps=round(1.0 / reader.frame_step, 3), codec=reader.stream.codec_context.name)
            if not reader.info.duration > 0:
                facts["error"] = "no duration"
            else:
                reader.clips(np.zeros((1, 1)), short_side=16)
    except Exception as err:  # any exception: the file is reported, the scan goes on
        facts["error"] = failure(err)
    return facts


def content_hash(path: str) -> str:
    """sha1 of the size and the first and last 64 KiB: the same for copies of a file, cheap on big ones."""
    digest = hashlib.sha1()
    try:
        size = storage.info(path)["size"] if storage.is_remote(path) else os.path.getsize(path)
        digest.update(str(size).encode())
        if storage.is_remote(path):  # the same bytes, in one or two ranged reads
            digest.update(storage.read_bytes(path, 0, size if size <= 2 * HASHED else HASHED))
            if size > 2 * HASHED:
                digest.update(storage.read_bytes(path, size - HASHED, size))
        else:
            with open(path, "rb") as f:
                digest.update(f.read(HASHED))
                if size > 2 * HASHED:
                    f.seek(-HASHED, os.SEEK_END)
                digest.update(f.read(HASHED))
    except OSError:
        return ""
    return digest.hexdigest()


def scan(samples: list[str], store: Path = DEFAULT_STORE, workers: Optional[int] = None) -> dict[str, str]:
    """{sample: reason} for the samples (files, or segments of files) whose video is unusable; each
    file is checked once however many segments it has; progress bar for the ones not remembered."""
    files = {sample: file_of(sample) for sample in samples}
    known = facts(list(files.values()), store, workers)
    return {sample: known[path]["error"] for sample, path in files.items() if known[path]["error"]}


def facts(paths: list[str], store: Path = DEFAULT_STORE, workers: Optional[int] = None,
          hashes: bool = False) -> dict[str, dict]:
    """{path: probe's facts} of each file (with "hash" when `hashes`), remembered in `store`."""
    known = _load(store)
    paths = list(dict.fromkeys(paths))
    keys = {p: _key(p) for p in paths}
    todo = [p for p in paths if not isinstance(known.get(keys[p]), dict) or (hashes and "hash" not in known[keys[p]])]
    if todo:
        def work(path: str) -> dict:
            entry = known.get(keys[path]) if isinstance(known.get(keys[path]), dict) else probe(path)
            return {**entry, "hash": content_hash(path)} if hashes else entry

        # PyAV releases the GIL while demuxing and decoding, so threads run in parallel; remote objects
        # mostly wait on the network, so more threads than cores keep the cores busy
        remote = any(storage.is_remote(p) for p in todo)
        with ThreadPoolExecutor(workers or core_count() * (REMOTE_THREADS if remote else 1)) as pool:
            results = list(tqdm(pool.map(work, todo), total=len(todo), desc="vidclf: checking videos",
                                unit="video", disable=len(todo) < 20))
        found = dict(zip(todo, results))
        new = {keys[p]: entry for p, entry in found.items() if keys[p]}
        known.update(new)
        _save(store, new)
        return {p: found.get(p) or known[keys[p]] for p in paths}
    return {p: known[keys[p]] for p in paths}


def _key(path: str) -> Optional[str]:
    """The file's identity (path, size, mtime; a remote object's ETag too); a file that does not exist or
    cannot be looked at is not remembered (it is probed again, cheaply, next time)."""
    try:
        return storage.identity(path)
    except OSError:
        return None


def _load(store: Path) -> dict:
    try:
        return json.loads(store.read_text())
    except (OSError, ValueError):
        return {}


def _save(store: Path, new: dict) -> None:
    """Add `new` entries to the store: under a lock, what other runs wrote meanwhile is read again and
    kept; the file is replaced whole (renamed), so a reader never sees half of it."""
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(store.with_name(f".{store.name}.lock")):  # released on exit, or when the process dies
            known = {**_load(store), **new}
            tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
            # keys and reasons may name a signed URL (a store written before redaction too): never kept
            tmp.write_text(json.dumps({secrets.redact_text(k): secrets.redact_values(v) for k, v in known.items()}))
            os.replace(tmp, store)
    except OSError:
        pass  # a read-only cache folder only costs a rescan next time
