"""`vidclf predict` of live sources (cameras, network streams, a pipe): rows as the windows happen.

Each source is read in its own thread (vidclf.data.live) and scored in another (scoring.SourceScorer); the
model runs one window at a time under a lock. Rows go to --timeline, events to --events and, with
--print, to standard output as JSON Lines, each flushed as it is made. The run ends when every source
has ended, after --duration seconds of stream, or on Ctrl-C / SIGTERM (exit 0, every row written); the
main output then gets one row per source.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Optional

import torch

from vidclf.commands.live.scoring import WINDOW_COLUMNS, SourceScorer
from vidclf.commands.predict import score_fields
from vidclf.data.live import LiveSource, is_live
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.checkpoints import load_weights
from vidclf.io.files import check_output, write_rows
from vidclf.io.flushed import FlushedRows

EVENT_COLUMNS = ["source", "start", "end", "label", "prob"]
SUMMARY_COLUMNS = ["windows", "skipped", "gaps", "seconds", "ended"]


def live_sources(predict, live: bool) -> list[str]:
    """The sources of --data.predict when they are live (all of them, or `live` forces it); [] for files."""
    sources = [predict] if isinstance(predict, str) else list(predict or [])
    found = [s for s in sources if is_live(str(s))]
    if live:
        if not sources:
            raise VidclfError("--live true needs --data.predict: a stream URL, a capture device or - (standard input)")
        return [str(s) for s in sources]
    if found and len(found) < len(sources):
        raise VidclfError(f"--data.predict mixes live sources ({found[0]}) and files ({next(s for s in sources if s not in found)}); "
                          f"predict them in separate commands, or pass --live true to read the files as live sources")
    return found


def predict_live(trainer, model, datamodule, sources: list[str], ckpt_path: Optional[str], model_file: Optional[str],
                 runtime: str, precision: str, output: str, timeline: Optional[str], events: Optional[str],
                 window: Optional[float], stride: Optional[float], smooth: int, min_duration: float,
                 duration: Optional[float], reconnect: int, transport: str, print_rows: bool,
                 top_k: Optional[int], overwrite: bool) -> None:
    """Score `sources` live until they end; see the module's docstring."""
    for option, path in (("--output", output), ("--timeline", timeline), ("--events", events)):
        if path and storage.is_remote(path):
            raise VidclfError(f"{option} {path}: live rows are written as they happen, to a local file; name one here")
        if path:
            check_output(path, overwrite)
    clip = datamodule.clip
    window = window or (stride if stride else clip.seconds)
    stride = stride or window
    ran = prepare(trainer, model, clip, ckpt_path, model_file, runtime, precision)
    dummy = score_fields(torch.full((len(model.class_names),), 1 / len(model.class_names)), model, top_k)
    columns = WINDOW_COLUMNS + [f for f in dummy if f not in WINDOW_COLUMNS + ["warning"]]
    sinks = {"window": FlushedRows(timeline, columns) if timeline else None,
             "gap": None, "event": FlushedRows(events, EVENT_COLUMNS) if events else None}
    sinks["gap"] = sinks["window"]
    said = threading.Lock()

    def emit(kind: str, row: dict) -> None:
        if sinks[kind] is not None:
            sinks[kind].add(row)
        if print_rows:
            with said:
                print(json.dumps({"kind": kind, **row}, ensure_ascii=False), flush=True)

    stop, lock = threading.Event(), threading.Lock()
    keep = max(window, clip.seconds) + stride + 2.0
    readers = [LiveSource(s, max(clip.resize, clip.crop), keep, reconnect, transport, paced=not is_live(s))
               for s in sources]
    scorers = [SourceScorer(r, model, clip, window, stride, smooth, min_duration, top_k, emit, lock, duration, stop)
               for r in readers]
    threads = [threading.Thread(target=s.run, name=f"vidclf-score-{s.source.name}", daemon=True) for s in scorers]
    print(f"vidclf: live: {len(sources)} source(s) with {ran}, a {window:g} s window every {stride:g} s"
          + (f" -> {timeline}" if timeline else "") + (f", events -> {events}" if events else "")
          + "; Ctrl-C or SIGTERM stops", file=sys.stderr, flush=True)
    with stopping_on_signals(stop):
        for reader, thread in zip(readers, threads):
            reader.start()
            thread.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
    for reader in readers:
        reader.stop()
    for sink in {id(s): s for s in sinks.values() if s is not None}.values():
        sink.close()
    finish(scorers, output, list(dummy))


def prepare(trainer, model, clip, ckpt_path: Optional[str], model_file: Optional[str], runtime: str,
            precision: str) -> str:
    """The model ready to score (weights, device, runtime); returns what runs it, in words."""
    from vidclf.runtimes.swap import swap_in

    if model_file:
        from vidclf.runtimes.model_file import take_file

        return f"{take_file(model, model_file, None)} running {model_file}"
    if ckpt_path:
        load_weights(model, ckpt_path)
    gpu = trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
    model.eval().to(torch.device("cuda" if gpu else "cpu"))
    ran, _ = swap_in(model, clip, runtime, precision)
    return f"runtime {ran}"


class stopping_on_signals:
    """Ctrl-C and SIGTERM set `stop` (the sources close, the rows are written) instead of killing the run."""

    def __init__(self, stop: threading.Event):
        self.stop = stop

    def __enter__(self):
        def handler(signum, frame):
            if not self.stop.is_set():
                print(f"vidclf: {signal.Signals(signum).name}: stopping; writing the rows", file=sys.stderr, flush=True)
            self.stop.set()

        self.previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self.previous.items():
            signal.signal(s, previous)


def finish(scorers: list[SourceScorer], output: str, fields: list[str]) -> None:
    """One row per source in the main output; one line saying what happened; an error if none connected."""
    rows = [s.summary() for s in scorers]
    columns = ["path", *[f for f in fields if f != "warning"], *SUMMARY_COLUMNS]
    write_rows(output, [{c: row.get(c, "") for c in columns} for row in rows])
    failed = [r for r in rows if r["status"].startswith("error")]
    windows = sum(s.windows for s in scorers)
    print(f"vidclf: live: {windows} windows from {len(rows) - len(failed)} source(s), {len(failed)} failed "
          f"-> {output}", file=sys.stderr, flush=True)
    if failed and len(failed) == len(rows):
        raise VidclfError(f"no live source could be read: {'; '.join(r['status'][7:] for r in failed)}; check the "
                          f"address and that the source is sending")
    for row in failed:
        print(f"vidclf: {row['path']}: {row['status']}", file=sys.stderr, flush=True)
