"""One live source scored as it plays: every `stride` seconds of stream, its last `window` seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Optional

import numpy as np
import torch

from vidclf.commands.live.events import Events, Smoother
from vidclf.commands.predict import score_fields
from vidclf.data.clips import clip_times
from vidclf.data.live import LiveSource
from vidclf.data.transforms import center_crop

WINDOW_COLUMNS = ["source", "start", "end", "stream_pts", "wall_time", "lag", "skipped", "status"]


def wall_time() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class SourceScorer:
    """Scores `source`'s windows with `model` (one centred clip of `clip` settings each, as predict's
    timeline does) and hands every row to `emit(kind, row)` as soon as it exists: kind "window", "gap"
    or "event". When the model falls behind, windows are skipped to the newest complete one (each row
    says how many were skipped since the one before); nothing queues.
    """

    def __init__(self, source: LiveSource, model, clip, window: float, stride: float, smooth: int,
                 min_duration: float, top_k: Optional[int], emit: Callable[[str, dict], None],
                 model_lock: threading.Lock, duration: Optional[float], stop: threading.Event):
        self.source, self.model, self.clip = source, model, clip
        self.window, self.stride, self.top_k, self.emit = window, stride, top_k, emit
        self.smoother, self.events = Smoother(smooth), Events(source.name, min_duration)
        self.model_lock, self.duration, self.stop = model_lock, duration, stop
        self.offset = max(0.0, (window - clip.seconds) / 2)  # the clip sits in the middle of its window
        self.windows = self.skipped = 0
        self.logit_sum: Optional[torch.Tensor] = None
        self.prob_sum: Optional[torch.Tensor] = None
        self.seconds = 0.0  # of stream scored
        self.ended = ""

    def run(self) -> None:
        source, seen_gaps, next_start, epoch, skipped = self.source, 0, None, self.source.epoch, 0
        while not self.stop.is_set():
            if len(source.gaps) > seen_gaps:  # the source came back after a drop: a row for the gap
                for gap in source.gaps[seen_gaps:]:
                    self._emit_events(self.events.close())
                    self.emit("gap", {"source": source.name, "start": round(gap.at, 3),
                                      "end": round(gap.at + gap.seconds, 3), "wall_time": wall_time(),
                                      "status": f"gap: {gap.why or 'the stream ended'}; back after {gap.seconds:.1f} s"})
                seen_gaps, next_start, epoch = len(source.gaps), None, source.epoch
                self.smoother.reset()
            newest = source.newest()
            if newest is None or source.epoch != epoch:
                if source.ended:
                    break
                source.wait(0.0, epoch)
                continue
            if next_start is None:  # the first window of this connection starts at its first frame
                with source.changed:
                    next_start = source.frames[0].time if source.frames else newest.time
            if self.duration is not None and next_start + self.window > self.duration + 1e-6:
                self.ended = "--duration"
                break
            times = clip_times([next_start + self.offset], self.clip.frames, self.clip.interval)[0]
            due = max(next_start + self.window, times[-1])
            if newest.time < due:
                if source.ended:  # the stream ended within this window: score it if it is the only one
                    if self.windows == 0 and source.epoch == epoch:
                        self._score(next_start, times, due, skipped)
                    break
                source.wait(due, epoch)
                continue
            behind = int((newest.time - due) // self.stride)  # complete windows after this one: jump to the newest
            if behind > 0:
                skipped += behind
                next_start += behind * self.stride
                continue
            self._score(next_start, times, due, skipped)
            skipped = 0
            next_start += self.stride
        self._emit_events(self.events.close())
        if not self.ended:
            self.ended = "stopped" if self.stop.is_set() else (f"lost: {source.error}" if source.error else "stream end")

    def _score(self, start: float, times: np.ndarray, due: float, skipped: int) -> None:
        images, after = self.source.pick(times, due)
        video = center_crop(torch.from_numpy(images).permute(3, 0, 1, 2), self.clip.crop)  # (C, T, crop, crop)
        with self.model_lock, torch.inference_mode():
            logits = self.model.clip_logits(video[None, None].to(self.model.device))[0, 0].float().cpu()
        probs = self.model.probs(logits)
        self.logit_sum = logits if self.logit_sum is None else self.logit_sum + logits
        self.prob_sum = probs if self.prob_sum is None else self.prob_sum + probs
        self.windows += 1
        self.skipped += skipped
        end = start + self.window
        self.seconds = max(self.seconds, end)
        smoothed = self.smoother(probs)
        fields = score_fields(smoothed, self.model, self.top_k)
        row = {"source": self.source.name, "start": round(start, 3), "end": round(end, 3),
               "stream_pts": None if after.pts is None else round(after.pts, 3), "wall_time": wall_time(),
               "lag": round(max(0.0, time.time() - after.arrived), 3), "skipped": skipped,
               **{k: v for k, v in fields.items() if k != "warning"}}
        self.emit("window", row)
        names = fields["labels"] if "labels" in fields else [fields["label"]]
        present = {n: float(smoothed[self.model.class_names.index(n)]) for n in names}
        self._emit_events(self.events.add(start, end, present))

    def _emit_events(self, events: list[dict]) -> None:
        for event in events:
            self.emit("event", event)

    def summary(self) -> dict:
        """The source's row in the main output: all its windows combined, as predict combines a timeline's."""
        model, source = self.model, self.source
        counts = {"windows": self.windows, "skipped": self.skipped, "gaps": len(source.gaps),
                  "seconds": round(self.seconds, 3), "ended": self.ended}
        if not self.windows:
            why = source.error or ("no frames came" if source.connected else f"cannot open {source.name}")
            return {"path": source.name, "status": f"error: {why}", **counts}
        if model.hparams.aggregate == "logit":
            probs = model.probs(self.logit_sum / self.windows)
        else:
            probs = self.prob_sum / self.windows
        return {"path": source.name, **score_fields(probs, model, self.top_k), **counts}
