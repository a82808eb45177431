"""A Trainer whose extra methods are vidclf's extra subcommands (LightningCLI reads their signatures)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import pytorch_lightning as pl
import torch

from vidclf import export as ex
from vidclf.batch_size import find_batch_size
from vidclf.checkpoint import read_checkpoint
from vidclf.data import storage
from vidclf.data.dataset import VideoClips
from vidclf.data.sources import unlabelled_videos
from vidclf.errors import VidclfError
from vidclf.lr_find import find_lr
from vidclf.ranges import NonNegativeFloat, PositiveFloat, PositiveInt
from vidclf.reports.files import check_output, write_json
from vidclf.reports.predictions import PredictionWriter


class VidclfTrainer(pl.Trainer):
    def fit(self, model, train_dataloaders=None, val_dataloaders=None, datamodule=None, ckpt_path: Optional[str] = None,
            weights_only: Optional[bool] = None, lr_find_steps: PositiveInt = 100,
            batch_size_max: Optional[PositiveInt] = None):
        """Train the model, validating after every epoch.

        Args:
            ckpt_path: Resume from this checkpoint (`last`: the newest run's last.ckpt under
                --trainer.default_root_dir), continuing its run directory.
            weights_only: Load the checkpoint with torch's weights_only (Lightning's default when unset).
            lr_find_steps: Training steps of the learning-rate search that --model.lr auto runs first.
            batch_size_max: The largest batch --data.batch_size auto tries (needed on the CPU, where
                running out of memory is not caught). Default: no limit but the GPU's memory.
        """
        if datamodule is not None and datamodule.hparams.get("batch_size") == "auto":
            find_batch_size(self, model, datamodule, batch_size_max)  # first: the best rate depends on the batch
        if getattr(model.hparams, "lr", None) == "auto":
            find_lr(self, model, datamodule, lr_find_steps)
        return super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only)

    def pretrain(self, model: pl.LightningModule, datamodule=None, ckpt_path: Optional[str] = None,
                 weights_only: Optional[bool] = None):
        """Pretrain a VideoMAE encoder on unlabelled videos (masked-video autoencoding), for `fit` to fine-tune.

        Writes RUN/encoder (fine-tune it: vidclf fit --model.backbone hf:RUN/encoder --model.pretrained
        true) and RUN/reconstructions/epoch_NNN.png after every epoch, checkpoints like fit.

        Args:
            ckpt_path: Resume from this pretraining checkpoint (`last`: the newest run's last.ckpt under
                --trainer.default_root_dir), continuing its run directory.
            weights_only: Load the checkpoint with torch's weights_only (Lightning's default when unset).
        """
        return pl.Trainer.fit(self, model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=weights_only)

    def predict(self, model=None, dataloaders=None, datamodule=None, return_predictions: Optional[bool] = None,
                ckpt_path: Optional[str] = None, output: str = "predictions.csv", top_k: Optional[PositiveInt] = None,
                timeline: Optional[str] = None, window: Optional[PositiveFloat] = None,
                stride: Optional[PositiveFloat] = None,
                overwrite: bool = False):
        """Predict the class of every video and write one row per video to a CSV or JSON Lines file.

        Args:
            output: Where to write predictions (.csv, or .jsonl for JSON Lines).
            top_k: How many ranked labels with probabilities each row lists. Default: 5; for a
                multi-label model every class's probability (prob_<class> columns) instead.
            timeline: Also write a prediction per time window of each video to this file
                (path,start,end,label,prob,...); the main file's row then combines all windows.
            window: Timeline window length in seconds. Default: the model's clip length.
            stride: Seconds between timeline window starts. Default: the window length.
            overwrite: Replace existing output files (otherwise predict refuses to start).
        """
        if self.world_size > 1:
            raise VidclfError("predict runs in one process; pass --trainer.devices 1 and drop --trainer.strategy ddp")
        for path in filter(None, (output, timeline)):
            check_output(path, overwrite)
        if timeline and datamodule is not None:
            datamodule.timeline = (window, stride)
        with storage.written_locally(output, timeline or "") as (local, local_timeline):  # URLs: uploaded after
            writer = PredictionWriter(local, top_k, local_timeline or None)
            self.callbacks.append(writer)
            try:
                return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path)
            finally:
                self.callbacks.remove(writer)

    def export(self, model: pl.LightningModule, datamodule=None, ckpt_path: Optional[str] = None,
               format: ex.Format = "onnx", output: Optional[str] = None,
               tolerance: NonNegativeFloat = 1e-3, overwrite: bool = False) -> dict:
        """Export a trained model (ONNX, TorchScript or torch.export) with a JSON sidecar, and check it.

        Args:
            ckpt_path: The vidclf checkpoint to export.
            format: onnx (run by onnxruntime), torchscript (.pt) or pt2 (torch.export program).
            output: File to write. Default: model.onnx / model.pt / model.pt2 in the checkpoint's run.
            tolerance: Largest allowed difference between exported and checkpoint logits.
            overwrite: Replace `output` and its sidecar if they exist.
        """
        if not ckpt_path:
            raise VidclfError("export needs a trained model; pass --ckpt_path RUN/checkpoints/best.ckpt")
        run = ckpt_path.rsplit("/", 2)[0] if storage.is_remote(ckpt_path) else str(Path(ckpt_path).parent.parent)
        output = output or f"{run}/model{ex.SUFFIX[format]}"
        check_output(output, overwrite)
        check_output(f"{output}.json", overwrite)
        checkpoint = read_checkpoint(ckpt_path)
        model.load_state_dict(checkpoint["state_dict"])
        model.eval()
        clip = datamodule.clip
        clip_x, source = _sample_clip(model, datamodule)
        x = torch.cat([clip_x, clip_x.flip(-1)])  # a batch of 2, so the batch axis stays dynamic
        with torch.no_grad():
            expected = model(x).numpy()
        info_path = f"{output}.json"
        views = {"num_clips": datamodule.hparams.num_clips, "num_crops": datamodule.hparams.num_crops,
                 "aggregate": model.hparams.aggregate}
        thresholds = model.active_thresholds().tolist() if model.hparams.multi_label else None
        info = ex.sidecar(model.hparams.backbone, model.class_names, clip, ckpt_path, format, views, thresholds)
        with storage.written_locally(output, info_path) as (local, local_info):  # URLs: uploaded after
            ex.export_model(model.net, x, local, format)
            got = ex.run_exported(local, format, torch.cat([x, x[:1]]))  # run at another batch size
            diff = float(np.abs(got - np.concatenate([expected, expected[:1]])).max())
            info["check"] = {"sample": source, "max_abs_diff": diff, "tolerance": tolerance}
            write_json(local_info, info)
        print(f"vidclf: exported {format} -> {output} (sidecar {info_path}); "
              f"max abs difference vs checkpoint on {source}: {diff:.2e}")
        if not diff <= tolerance:
            raise VidclfError(f"exported model differs from the checkpoint by {diff:.2e} > tolerance {tolerance}; "
                              f"try the other --format")
        return info


    def data(self, model: pl.LightningModule, datamodule=None, output: str = "data_summary") -> dict:
        """Look at the data before training: per split, samples per class with their duration,
        resolutions, frame rates, codecs, unreadable or missing files, and the same content in two
        splits; writes summary.csv, files.csv, duplicates.csv and class_balance.png into `output`.

        Args:
            output: Folder for the tables and the figure.
        """
        from vidclf.reports.data_summary import summarize

        splits = datamodule.listed_splits()
        return summarize(splits, {k: v for k, v in datamodule.ignored.items() if k[0] in splits}, Path(output))

    def serve(self, model: pl.LightningModule, datamodule=None, ckpt_path: Optional[str] = None,
              host: str = "127.0.0.1", port: int = 8000, max_batch_size: PositiveInt = 8,
              batch_timeout: NonNegativeFloat = 0.05, workers: PositiveInt = 1, decode_threads: Optional[PositiveInt] = None,
              max_upload_mb: PositiveFloat = 200.0, read_timeout: PositiveFloat = 30.0, timeout: PositiveFloat = 120.0,
              shutdown_timeout: NonNegativeFloat = 30.0, top_k: Optional[PositiveInt] = None) -> None:
        """Serve a trained model over HTTP (LitServe): POST /predict, GET /info, GET /health, a web page at /.

        Answers are the rows `vidclf predict` writes for the same file (views and thresholds from the
        checkpoint, --data.num_clips / --data.num_crops to change them).

        Args:
            ckpt_path: The vidclf checkpoint to serve.
            host: 127.0.0.1 (this machine only), or 0.0.0.0 / :: (every interface; put a reverse proxy in front).
            port: TCP port (1024-65535).
            max_batch_size: Requests from different clients taken as one batch, at most (1: no batching): one
                forward pass on a GPU; on a CPU one pass per video (per-clip cost grows with batch size there).
            batch_timeout: Seconds a request waits for others to fill a batch.
            workers: Model worker processes per device.
            decode_threads: Uploads decoded at once (per HTTP server process; also timelines per model
                worker). Default: the cores this process may use.
            max_upload_mb: Larger uploads get HTTP 413.
            read_timeout: Seconds an upload may stall before HTTP 408.
            timeout: Seconds a request may wait for the model before HTTP 504.
            shutdown_timeout: On SIGTERM or Ctrl-C, seconds to finish requests in flight before stopping.
            top_k: Ranked labels per answer. Default: 5; multi-label: every class's probability.
        """
        from vidclf.serve import check_address, make_upload_dir, model_card, run_server
        from vidclf.serve.api import VideoAPI

        if not ckpt_path:
            raise VidclfError("serve needs a trained model; pass --ckpt_path RUN/checkpoints/best.ckpt")
        check_address(host, port)
        checkpoint = read_checkpoint(ckpt_path)
        hp = model.hparams
        thresholds = None
        if hp.multi_label:
            stored = checkpoint["state_dict"]["thresholds"]
            thresholds = [hp.threshold] * len(stored) if hp.threshold is not None else stored.tolist()
        views = {"num_clips": datamodule.hparams.num_clips, "num_crops": datamodule.hparams.num_crops,
                 "aggregate": hp.aggregate}
        batching = {"max_batch_size": max_batch_size, "batch_timeout": batch_timeout, "workers": workers}
        info = model_card(model, datamodule.clip, ckpt_path, views, batching, thresholds)
        del checkpoint
        upload_dir = make_upload_dir()
        threads = decode_threads or len(os.sched_getaffinity(0))
        api = VideoAPI(ckpt_path, {"aggregate": hp.aggregate, "threshold": hp.threshold}, datamodule.clip,
                       upload_dir, top_k, threads, max_batch_size, batch_timeout)
        decoding = {"clip": datamodule.clip, "num_clips": views["num_clips"], "num_crops": views["num_crops"],
                    "decode_threads": threads}
        gpu = self.accelerator.__class__.__name__ == "CUDAAccelerator"
        run_server(api, info, decoding, host, port, upload_dir, max_upload_mb, read_timeout, timeout,
                   shutdown_timeout, accelerator="cuda" if gpu else "cpu", devices=self.num_devices if gpu else 1,
                   workers=workers)


def _sample_clip(model, datamodule) -> tuple[torch.Tensor, str]:
    """A clip decoded from the first --data.predict video as predict would (else seeded noise),
    normalised, (1, C, T, H, W)."""
    clip = datamodule.clip
    if datamodule.hparams.predict:
        path = unlabelled_videos(datamodule.hparams.predict).items[0]
        item = VideoClips([path], None, clip, num_clips=1)[0]
        if "error" in item:
            raise VidclfError(f"{path}: cannot decode a sample clip for the export check ({item['error']})")
        return model.normalize(item["video"]), path
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (1, 3, clip.frames, clip.crop, clip.crop), generator=generator)
    return model.normalize(noise), "a random clip"
