"""The subcommands that work before (or between) labels: `vidclf embed` and `vidclf select`, on the Trainer."""

from __future__ import annotations

from typing import Literal, Optional

import pytorch_lightning as pl

from vidclf.ranges import PositiveFloat, PositiveInt
from vidclf.runtimes import Runtime


class BeforeLabels:
    """Methods of VidclfTrainer (a pl.Trainer): LightningCLI reads their signatures as subcommands."""

    def embed(self, model: pl.LightningModule, datamodule=None, ckpt_path: Optional[str] = None,
              output: str = "embeddings.parquet", window: Optional[PositiveFloat] = None,
              stride: Optional[PositiveFloat] = None, overwrite: bool = False, runtime: Runtime = "auto",
              precision: Literal["fp32", "bf16"] = "fp32") -> None:
        """Write one vector per video of --data.predict: the features before the head (views averaged).

        From a checkpoint, or from a backbone's pretrained weights (--model.pretrained true). Rows:
        path, start, end, status, embedding; a list with start/end gives one per segment, --window one per
        time window; a file that fails has its row with `error: ...` and no vector. A video-text model
        also writes its class vectors (--model.classes) to OUTPUT.classes.parquet, and `vidclf search
        OUTPUT 'words'` ranks the videos by a text.

        Args:
            ckpt_path: The vidclf checkpoint whose backbone embeds (a run folder: its checkpoints/best.ckpt).
            output: .parquet (the vectors as a fixed-size list column; pyarrow, pandas, DuckDB read it) or
                .npy (the vectors of the ok rows, with OUTPUT.csv indexing them).
            window: Seconds per vector along each video (default: one vector per video or segment).
            stride: Seconds between window starts. Default: the window length.
            overwrite: Replace existing output files (otherwise embed refuses to start).
            runtime: What computes the features: auto (on a CPU the fastest installed: openvino, onnxruntime,
                then torch), torch, onnxruntime or openvino (the features converted once, cached in
                ~/.cache/vidclf/runtimes; equal to torch's within 1e-4 at fp32).
            precision: fp32, or bf16 (OpenVINO on a CPU with bf16 instructions).
        """
        from vidclf.commands.embed import embed

        def run():
            return pl.Trainer.predict(self, model, datamodule=datamodule, return_predictions=False, ckpt_path=ckpt_path)

        if window is None and stride is not None:
            window = stride
        embed(self, model, datamodule, run, output, window, stride, overwrite, ckpt_path or model.hparams.backbone,
              runtime, precision)

    def select(self, model: pl.LightningModule, datamodule=None, ckpt_path: Optional[str] = None,
               budget: PositiveInt = 30, output: str = "next.json", strategy: Literal["margin", "entropy"] = "margin",
               labelstudio_root: Optional[str] = None, overwrite: bool = False) -> None:
        """Pick the videos of --data.predict most worth labelling next, as pre-annotated Label Studio tasks.

        Uncertain ones (a small margin between the two most probable classes, or a high entropy;
        multi-label: a class near its threshold), spread out: k-center greedy on their embeddings among the
        budget x 4 most uncertain, so the picks are not near-copies. Videos of --data.train are left out.
        Writes OUTPUT (tasks) and OUTPUT with .csv (rank, uncertainty, distance to the others chosen, labels).

        Args:
            ckpt_path: The vidclf checkpoint whose uncertainty counts (a run folder: its checkpoints/best.ckpt).
            budget: How many videos to propose.
            output: The tasks file (.json) to import into Label Studio.
            strategy: Single-label uncertainty: margin (1 - top1 + top2) or entropy (normalised).
            labelstudio_root: Label Studio's local-files document root (videos under it become
                /data/local-files/?d= paths).
            overwrite: Replace existing output files.
        """
        from vidclf.commands.select import select

        def run():
            return pl.Trainer.predict(self, model, datamodule=datamodule, return_predictions=False, ckpt_path=ckpt_path)

        select(self, model, datamodule, run, budget, output, strategy, labelstudio_root, overwrite)
