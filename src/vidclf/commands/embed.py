"""`vidclf embed`: one vector per video, segment or time window (the features before the head), to
Parquet or .npy, every input with its row and status."""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np
import pytorch_lightning as pl
import torch

from vidclf.commands.predict import gathered, run_with
from vidclf.data.segments import split
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.files import check_output, write_rows
from vidclf.models.features import Embedded, Embedder, class_vectors
from vidclf.runtimes import check_precision, choose
from vidclf.runtimes.swap import runtime_net
from vidclf.version import __version__

FORMATS = (".parquet", ".npy")


def outputs(output: str) -> list[str]:
    """The files `output` means: Parquet alone, or .npy with its index CSV beside it."""
    suffix = Path(output).suffix
    if suffix not in FORMATS:
        raise VidclfError(f"--output {output}: write embeddings to .parquet (a table with the vectors) or .npy "
                          f"(the vectors, with an index .csv beside it)")
    return [output] if suffix == ".parquet" else [output, str(Path(output).with_suffix(".csv"))]


def classes_file(output: str) -> str:
    """Where a video-text model's class vectors go: OUTPUT's name with .classes.parquet."""
    return str(Path(output).with_suffix(".classes.parquet"))


def embed(trainer, model, datamodule, run: Callable[[], object], output: str, window: Optional[float],
          stride: Optional[float], overwrite: bool, source: str, runtime: str = "torch", precision: str = "fp32") -> None:
    """Check the outputs, then `run` Lightning's predict loop with the model giving features."""
    files = outputs(output)
    words = class_vectors(model.net) is not None and model.hparams.get("class_names") is not None
    for path in files + ([classes_file(output)] if words else []):
        check_output(path, overwrite)
    if window is not None or stride is not None:
        datamodule.timeline = (window, stride)
    check_precision(runtime, precision)
    run_with(trainer, EmbeddingWriter(output, source, runtime, precision), run, model, "features")


class EmbeddingWriter(pl.Callback):
    """Rows (path, start, end, status, embedding) in input order: a video's views averaged into one
    vector; a timeline's windows one row each; a file that failed `error: ...` and no vector."""

    def __init__(self, output: str, source: str, runtime: str = "torch", precision: str = "fp32"):
        self.output, self.source, self.runtime, self.precision = output, source, runtime, precision
        self.kept = None

    def on_predict_start(self, trainer, pl_module) -> None:
        self._swap_in(trainer, pl_module)
        self.started = time.perf_counter()
        self.vectors: dict[int, list[tuple[Optional[float], torch.Tensor]]] = defaultdict(list)
        self.failed: dict[int, str] = {}

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        for index, reason in outputs["failed"]:
            self.failed[index] = f"error: {reason}"
        if outputs["embeddings"] is None:
            return
        vectors = outputs["embeddings"].float().cpu()
        for row, index in enumerate(outputs["index"].tolist()):
            if outputs["starts"] is None:
                self.vectors[index].append((None, vectors[row].mean(0)))  # the video's views combined
            else:
                self.vectors[index] += list(zip(outputs["starts"][row].tolist(), vectors[row]))

    def _swap_in(self, trainer, model) -> None:
        """The features computed in `runtime` (converted once, cached as predict's models are)."""
        runtime = choose(self.runtime, model.device.type)
        if runtime == "torch":
            print(f"vidclf: runtime torch ({model.device.type}, {torch.get_num_threads()} threads)", file=sys.stderr)
            return
        clip = trainer.datamodule.clip
        try:
            engine = runtime_net(Embedder(model.net), (3, clip.frames, clip.crop, clip.crop), runtime, self.precision)
        except VidclfError as err:
            if self.runtime != "auto":
                raise
            print(f"vidclf: runtime torch: {model.hparams.backbone}: {err}", file=sys.stderr)
            return
        self.kept, model.net = model.net, Embedded(engine)
        print(f"vidclf: runtime {runtime} at {self.precision} ({torch.get_num_threads()} threads)", file=sys.stderr)

    def on_predict_end(self, trainer, pl_module) -> None:
        if self.kept is not None:
            pl_module.net, self.kept = self.kept, None
        shares = gathered(trainer, (dict(self.vectors), self.failed))
        if shares is None:
            return
        for vectors, failed in shares[1:]:
            self.failed.update(failed)
            for index, rows in vectors.items():
                self.vectors[index] += rows
        data = trainer.datamodule
        paths = data.paths("predict")
        window = getattr(data.datasets["predict"], "window", None)
        rows = []
        for index, sample in enumerate(paths):
            path, start, end = split(sample)
            if index in self.failed or not self.vectors.get(index):
                rows.append({"path": path, "start": start, "end": end, "status": self.failed.get(index, "error: no clip"),
                             "embedding": None})
                continue
            for at, vector in sorted(self.vectors[index], key=lambda r: -1 if r[0] is None else r[0]):
                place = (start, end) if at is None else (round(at, 3), round(at + window, 3))
                rows.append({"path": path, "start": place[0], "end": place[1], "status": "ok", "embedding": vector})
        ignored = [{"path": p, "start": None, "end": None, "status": why, "embedding": None}
                   for (split_, p), why in sorted(getattr(data, "ignored", {}).items()) if split_ == "predict"]
        rows += ignored  # files in the input that are not videos: listed, not dropped
        meta = {"backbone": pl_module.hparams.backbone, "source": self.source, "vidclf": __version__,
                "kind": "window" if window else "video", "dim": next((len(r["embedding"]) for r in rows
                                                                      if r["embedding"] is not None), 0)}
        with storage.written_locally(*outputs(self.output)) as local:
            write(local, rows, meta)
        classes = class_vectors(pl_module.net) if pl_module.hparams.get("class_names") is not None else None
        if classes is not None:
            with storage.written_locally(classes_file(self.output)) as (local,):
                write_classes(local, pl_module.class_names, classes, meta)
        errors = sum(r["status"].startswith("error") for r in rows)
        seconds = time.perf_counter() - self.started
        print(f"vidclf: embedded {len(paths)} videos ({len(paths) - errors} ok, {errors} error, {len(ignored)} ignored "
              f"file(s)) in {seconds:.1f} s: {len(rows) - errors - len(ignored)} vectors of {meta['dim']} -> {self.output}"
              + (f", class vectors -> {classes_file(self.output)}" if classes is not None else ""), file=sys.stderr)


def write(files: list[str], rows: list[dict], meta: dict) -> None:
    """Parquet (path, start, end, status, embedding as a fixed-size list of float32), or .npy of the ok
    rows' vectors plus an index CSV (path, start, end, status, row: the vector's row, empty without one)."""
    path = files[0]
    if len(files) == 2:
        ok = [r for r in rows if r["embedding"] is not None]
        np.save(path, np.stack([r["embedding"].numpy() for r in ok]) if ok else np.zeros((0, meta["dim"]), np.float32))
        numbers = iter(range(len(ok)))
        index = [{**{k: "" if r[k] is None else r[k] for k in ("path", "start", "end", "status")},
                  "row": next(numbers) if r["embedding"] is not None else ""} for r in rows]
        write_rows(files[1], index)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = pa.array([None if r["embedding"] is None else r["embedding"].numpy() for r in rows],
                       type=pa.list_(pa.float32(), meta["dim"]))
    table = pa.table({"path": [r["path"] for r in rows], "start": pa.array([r["start"] for r in rows], pa.float64()),
                      "end": pa.array([r["end"] for r in rows], pa.float64()), "status": [r["status"] for r in rows],
                      "embedding": vectors})
    pq.write_table(table.replace_schema_metadata({"vidclf": json.dumps(meta)}), path)


def write_classes(path: str, names: list[str], vectors: torch.Tensor, meta: dict) -> None:
    """The class vectors of a video-text model: class, embedding (normalised), as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"class": names, "embedding": pa.array(list(vectors.numpy()), type=pa.list_(pa.float32(), vectors.shape[1]))})
    pq.write_table(table.replace_schema_metadata({"vidclf": json.dumps(meta)}), path)
