"""`vidclf predict`: the predictions file, one row per input video in input order, whatever happened to it."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch

from vidclf.data.segments import split
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.files import check_output, write_json, write_rows


def predict(trainer, datamodule, run: Callable[[], object], output: str, top_k: Optional[int],
            timeline: Optional[str], window: Optional[float], stride: Optional[float], overwrite: bool,
            output_format: str = "auto", labelstudio_root: Optional[str] = None):
    """Check the outputs, then `run` Lightning's predict loop with a PredictionWriter attached."""
    for path in filter(None, (output, timeline)):
        check_output(path, overwrite)
    studio = output_format == "labelstudio"
    if studio and Path(output).suffix.lower() != ".json":
        raise VidclfError(f"--output {output}: Label Studio imports tasks from a .json file; name it tasks.json")
    if (timeline or studio) and datamodule is not None:  # Label Studio's timeline ranges come from the windows
        datamodule.timeline = (window, stride)
    with storage.written_locally(output, timeline or "") as (local, local_timeline):  # URLs: uploaded after
        writer = PredictionWriter(local, top_k, local_timeline or None, (labelstudio_root or "") if studio else None)
        return run_with(trainer, writer, run)


def run_with(trainer, callback: pl.Callback, run: Callable[[], object], model=None, outputs: str = "scores"):
    """`run` (Lightning's predict loop) with `callback` attached and `model` giving `outputs` (scores,
    features, or both: see VideoClassifier.predict_step); both undone after."""
    trainer.callbacks.append(callback)
    if model is not None:
        model.predict_outputs = outputs
    try:
        return run()
    finally:
        trainer.callbacks.remove(callback)
        if model is not None:
            model.predict_outputs = "scores"


def gathered(trainer, share) -> Optional[list]:
    """Every process's `share` (each scored its own part of the videos) on the first process, its own
    first; None on the others. One process: [share]."""
    if trainer.world_size == 1:
        return [share]
    shares = [None] * trainer.world_size
    torch.distributed.all_gather_object(shares, share)
    return shares if trainer.is_global_zero else None


def views(model, datamodule) -> dict:
    """How a whole video is scored: clips spread over it, crops per clip, and how their scores combine."""
    return {"num_clips": datamodule.hparams.num_clips, "num_crops": datamodule.hparams.num_crops,
            "aggregate": model.hparams.aggregate}


class PredictionWriter(pl.Callback):
    """One row per input video, in input order: label, probability, status (ok / error: reason /
    ignored: reason), warning (what of a damaged file did not decode; empty for a sound file), top-k
    (`top_k`, default 5). Multi-label: labels (those at or above their class's threshold, most
    probable first), status, warning, then every class's probability prob_<class> (or the top-k).

    With `timeline`, also one row per window of each video in that file; the video's row then
    combines all its windows.
    """

    def __init__(self, output: str, top_k: Optional[int] = None, timeline: Optional[str] = None,
                 labelstudio: Optional[str] = None):
        self.output, self.top_k, self.timeline = output, top_k, timeline
        self.labelstudio = labelstudio  # Label Studio tasks instead of rows: its local-files root ("" for none)

    def on_predict_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()
        self.rows: dict[int, dict] = {}
        self.windows: dict[int, list[tuple[float, torch.Tensor]]] = defaultdict(list)  # video -> (start, logits)
        self.warnings: dict[int, str] = {}

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        paths = trainer.datamodule.paths("predict")
        for index, warning in outputs["warnings"]:
            self.warnings.setdefault(index, warning)
        if "window_logits" in outputs:
            for index, starts, logits in zip(outputs["index"].tolist(), outputs["starts"], outputs["window_logits"]):
                self.windows[index] += list(zip(starts.tolist(), logits.float().cpu()))
        elif outputs["probs"] is not None:
            for index, probs in zip(outputs["index"].tolist(), outputs["probs"]):
                self.rows[index] = {"path": paths[index], **score_fields(probs, pl_module, self.top_k)}
        for index, reason in outputs["failed"]:
            self.rows[index] = {"path": paths[index], "status": f"error: {reason}"}
        bar = getattr(trainer.progress_bar_callback, "_predict_progress_bar", None)  # batches/s -> videos/s
        if bar is not None:
            done = len(self.rows.keys() | self.windows.keys())
            bar.set_postfix_str(f"{done / (time.perf_counter() - self.started):.2f} videos/s")

    def on_predict_end(self, trainer, pl_module) -> None:
        shares = gathered(trainer, (self.rows, dict(self.windows), self.warnings))
        if shares is None:
            return
        for rows, windows, warnings in shares[1:]:  # the first is this process's own
            self.rows.update(rows)
            self.warnings.update(warnings)
            for index, scored in windows.items():  # a long video's window chunks may be in several shares
                self.windows[index] += scored
        paths = trainer.datamodule.paths("predict")
        if self.labelstudio is not None:
            return self._write_tasks(trainer, pl_module, paths)
        segments = any(split(p)[1] is not None for p in paths)  # then rows say which part: start,end
        timeline = []
        for index, windows in sorted(self.windows.items()):
            length = trainer.datamodule.datasets["predict"].window
            video, rows = timeline_fields(windows, length, pl_module, self.top_k)
            self.rows.setdefault(index, {"path": paths[index], **video})
            timeline += [{**place(paths[index], segments, "segment_"), **row} for row in rows]
        for index, warning in self.warnings.items():
            self.rows[index]["warning"] = warning
        columns = next((list(r) for r in self.rows.values() if r["status"] == "ok"),
                       ["path", "labels", "status", "warning"] if pl_module.hparams.multi_label
                       else ["path", "label", "prob", "status", "warning"])
        columns = [*place("", segments), *columns[1:]]
        rows = [{c: {**self.rows[i], **place(self.rows[i]["path"], segments)}.get(c, "") for c in columns}
                for i in sorted(self.rows)]
        ignored = sorted((p, why) for (split_, p), why in getattr(trainer.datamodule, "ignored", {}).items()
                         if split_ == "predict")  # files in the input that are not videos: listed, not dropped
        rows += [{c: {"path": p, "status": why}.get(c, "") for c in columns} for p, why in ignored]
        write_rows(self.output, rows)
        if self.timeline:
            write_rows(self.timeline, timeline)
        errors = sum(r["status"].startswith("error") for r in rows)
        where = f"{self.output}" + (f" and {len(timeline)} windows -> {self.timeline}" if self.timeline else "")
        partly = f", {len(self.warnings)} of them partly decoded" if self.warnings else ""
        print(f"vidclf: predicted {len(rows) - len(ignored)} videos ({len(rows) - len(ignored) - errors} ok{partly}, "
              f"{errors} error), listed {len(ignored)} ignored file(s) -> {where}")


    def _write_tasks(self, trainer, module, paths: list[str]) -> None:
        """Every input as a Label Studio task, its prediction from its timeline windows; the config printed."""
        from vidclf.commands import labelstudio as ls
        from vidclf.io.checkpoints import sha256

        ckpt = trainer.ckpt_path
        version = f"{Path(ckpt).name}@{sha256(ckpt)[:12]}" if ckpt else f"{module.hparams.backbone} (zero-shot)"
        length = trainer.datamodule.datasets["predict"].window
        tasks, rates = [], []
        for index, sample in enumerate(paths):
            path = split(sample)[0]
            scored = sorted(self.windows.get(index, []), key=lambda w: w[0])
            if not scored:
                tasks.append(ls.task(path, self.labelstudio, self.rows.get(index, {}).get("status", "error: no clip"),
                                     None, [], module, version, None))
                continue
            rate = ls.frame_rate_of(path) if not storage.is_remote(path) else None
            rates += [rate] if rate else []
            video = module.video_probs(torch.stack([w[1] for w in scored])[None])[0]
            windows = [(start, start + length, module.probs(logits)) for start, logits in scored]
            tasks.append(ls.task(path, self.labelstudio, "ok", video, windows, module, version, rate))
        ignored = [p for (split_, p), _ in getattr(trainer.datamodule, "ignored", {}).items() if split_ == "predict"]
        tasks += [ls.task(p, self.labelstudio, why, None, [], module, version, None)
                  for (split_, p), why in sorted(getattr(trainer.datamodule, "ignored", {}).items()) if split_ == "predict"]
        write_json(self.output, tasks)
        ls.say_config(module.class_names, module.hparams.multi_label, rates, self.output)
        errors = sum(not t["predictions"] for t in tasks) - len(ignored)
        print(f"vidclf: predicted {len(paths)} videos ({len(paths) - errors} ok, {errors} error), listed "
              f"{len(ignored)} ignored file(s) -> {self.output} (Label Studio tasks)")


def place(sample: str, segments: bool, prefix: str = "") -> dict:
    """The leading fields of a sample's row: path; with `segments`, also the segment's start and end
    in seconds (empty for a whole video)."""
    path, start, end = split(sample)
    if not segments:
        return {"path": path}
    return {"path": path, f"{prefix}start": "" if start is None else start, f"{prefix}end": "" if end is None else end}


def score_fields(probs: torch.Tensor, module, top_k: Optional[int] = None) -> dict:
    """The fields of an ok row for one probability vector (K,): label, prob, top-k (default 5); for a
    multi-label model labels (at or above their thresholds, most probable first), then every
    class's probability, or the top-k when `top_k` is given."""
    names, probs = module.class_names, probs.float().cpu()
    top_p, top_i = probs.topk(min(top_k or 5, len(names)))
    if module.hparams.multi_label:
        thresholds = module.active_thresholds().cpu()
        present = sorted((i for i in range(len(names)) if probs[i] >= thresholds[i]), key=lambda i: -probs[i])
        row = {"labels": [names[i] for i in present], "status": "ok", "warning": ""}
        if top_k is None:
            return {**row, **{f"prob_{n}": round(float(p), 6) for n, p in zip(names, probs)}}
    else:
        row = {"label": names[top_i[0]], "prob": round(float(top_p[0]), 6), "status": "ok", "warning": ""}
    for rank, (p, i) in enumerate(zip(top_p.tolist(), top_i.tolist()), start=1):
        row[f"top{rank}_label"], row[f"top{rank}_prob"] = names[i], round(p, 6)
    return row


def timeline_fields(windows: list[tuple[float, torch.Tensor]], length: float, module,
                    top_k: Optional[int] = None) -> tuple[dict, list[dict]]:
    """From (start, logits) of a video's timeline windows: the video's fields (all windows combined
    as its views) and one row per window in time order (start, end, then its fields)."""
    windows = sorted(windows, key=lambda w: w[0])
    logits = torch.stack([w[1] for w in windows])  # (windows, K)
    video = score_fields(module.video_probs(logits[None])[0], module, top_k)
    rows = [{"start": round(start, 3), "end": round(start + length, 3),
             **score_fields(module.probs(window_logits), module, top_k)} for start, window_logits in windows]
    return video, rows
