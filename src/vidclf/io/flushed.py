"""Rows appended and flushed one at a time: files a reader can follow while a stream plays (tail -f)."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

from vidclf.io.secrets import redact_values


class FlushedRows:
    """CSV (header `columns`) or JSON Lines (a .jsonl path); every row on disk as soon as it is added, from
    any thread. A list value is `;`-joined in CSV; URLs are written without their secrets."""

    def __init__(self, path: str, columns: list[str]):
        self.path, self.columns = Path(path), columns
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.path.suffix.lower() == ".jsonl"
        self.file = open(self.path, "w", newline="", encoding="utf-8",
                         errors="backslashreplace" if self.jsonl else "surrogateescape")
        self.lock = threading.Lock()
        self.count = 0
        if not self.jsonl:
            self.csv = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore")
            self.csv.writeheader()
            self.file.flush()

    def add(self, row: dict) -> None:
        row = redact_values(row)
        with self.lock:
            if self.jsonl:
                self.file.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                self.csv.writerow({c: ";".join(v) if isinstance(v, list) else row.get(c, "")
                                   for c, v in ((c, row.get(c, "")) for c in self.columns)})
            self.file.flush()
            self.count += 1

    def close(self) -> None:
        with self.lock:
            self.file.close()
