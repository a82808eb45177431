"""Writing the files people read: checked before any work, written whole or not at all.

File names are written as the file system gave them. A name that is not valid UTF-8 (Python holds
its bytes as surrogates) is written byte for byte in CSV files (read them back with
errors="surrogateescape", or as bytes) and as a \\udcXX escape in JSON (Python's json.loads and
os.fsencode give the bytes back), so no name is lost or stops a run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.secrets import redact_values

MIN_FREE_BYTES = 1 << 20


def check_output(path: str, overwrite: bool) -> None:
    """Fail before any work if `path` exists (unless overwrite) or its folder cannot be written."""
    if storage.is_remote(path):
        return _check_remote_output(path, overwrite)
    target = Path(path)
    if target.exists() and not overwrite:
        raise VidclfError(f"{path} already exists; choose another --output or pass --overwrite true")
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vidclf-probe-"):
            pass
    except OSError as err:
        raise VidclfError(f"cannot write {path}: {err.strerror or err}; choose a writable --output") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise VidclfError(f"cannot write {path}: only {free // 1024} KiB free on that disk; free space "
                          f"or choose another --output")


def _check_remote_output(url: str, overwrite: bool) -> None:
    """As check_output, for a URL: a small probe object is written next to it and deleted."""
    try:
        if storage.kind(url) != "missing" and not overwrite:
            raise VidclfError(f"{url} already exists; choose another --output or pass --overwrite true")
        fs, path = storage.filesystem(url)
        probe = f"{path.rsplit('/', 1)[0]}/.vidclf-probe-{os.getpid()}"
        storage.retrying(lambda: fs.pipe_file(probe, b""))
        storage.retrying(lambda: fs.rm_file(probe))
    except OSError as err:
        raise VidclfError(f"cannot write {url}: {storage.reason(err)}") from None


def write_rows(path: str, rows: list[dict]) -> None:
    """Write rows as CSV, or JSON Lines for a .jsonl path, to a temporary name then rename it,
    so an interrupted run never leaves a half-written file under the final name. A list value
    (multi-label labels) is a JSON array in JSON Lines, `;`-joined in CSV. URLs are written without
    their secrets (io/secrets.py)."""
    rows = [redact_values(row) for row in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        jsonl = path.suffix.lower() == ".jsonl"
        with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace" if jsonl else "surrogateescape") as f:
            if jsonl:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            else:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path"])
                writer.writeheader()
                writer.writerows({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()} for row in rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file vidclf or Lightning wrote (names that are not UTF-8 kept as written)."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def write_json(path: str, data: dict) -> None:
    """Write `data` as indented JSON, whole or not at all (names that are not UTF-8 as escapes; URLs
    without their secrets)."""
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    tmp.write_text(json.dumps(redact_values(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8", errors="backslashreplace")
    os.replace(tmp, path)


def save_in_config(run, section: str, key: str, value) -> None:
    """Replace `auto` by the value found in RUN/config.yaml (a rerun of that config is exact)."""
    config = Path(run or ".") / "config.yaml"
    if config.is_file():
        text = yaml.safe_load(config.read_text())
        text.setdefault(section, {})[key] = value
        config.write_text(yaml.safe_dump(text, sort_keys=False))
