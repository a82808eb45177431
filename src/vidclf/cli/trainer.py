"""VidclfTrainer: its methods are the subcommands; LightningCLI reads their signatures, commands/ holds their bodies."""

from __future__ import annotations

from typing import Literal, Optional

import pytorch_lightning as pl

from vidclf.cli.before_labels import BeforeLabels
from vidclf.commands import export as ex
from vidclf.commands import predict as pr
from vidclf.models.backbones import scratch_note
from vidclf.ranges import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from vidclf.runtimes import Runtime, check_precision
from vidclf.runtimes.swap import UseRuntime
from vidclf.tuning.batch_size import find_batch_size
from vidclf.tuning.lr import find_lr


class VidclfTrainer(BeforeLabels, pl.Trainer):
    """Training: epochs, devices, precision, logging (Lightning's Trainer; vidclf's subcommands are its methods)."""

    def fit(self, model, train_dataloaders=None, val_dataloaders=None, datamodule=None, ckpt_path: Optional[str] = None,
            weights_only: Optional[bool] = None, lr_find_steps: PositiveInt = 100,
            batch_size_max: Optional[PositiveInt] = None):
        """Train the model, validating after every epoch.

        Args:
            ckpt_path: Resume from this checkpoint (a run folder: its checkpoints/last.ckpt; `last`: the
                newest run's last.ckpt under --trainer.default_root_dir), continuing its run directory.
            weights_only: Load the checkpoint with torch's weights_only (Lightning's default when unset).
            lr_find_steps: Training steps of the learning-rate search that --model.lr auto runs first.
            batch_size_max: The largest batch --data.batch_size auto tries (needed on the CPU, where
                running out of memory is not caught). Default: no limit but the GPU's memory.
        """
        note = scratch_note(model.hparams.backbone, model.hparams.pretrained) if ckpt_path is None else None
        if note and self.is_global_zero:
            print(f"vidclf: {note}")
        if datamodule is not None and datamodule.hparams.get("batch_size") == "auto":
            find_batch_size(self, model, datamodule, batch_size_max)  # first: the best rate depends on the batch
        if getattr(model.hparams, "lr", None) == "auto":
            find_lr(self, model, datamodule, lr_find_steps)
        return super().fit(model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only)

    def validate(self, model=None, dataloaders=None, ckpt_path: Optional[str] = None, verbose: bool = True,
                 datamodule=None, weights_only: Optional[bool] = None, runtime: Runtime = "torch",
                 precision: Literal["fp32", "bf16"] = "fp32"):
        """Evaluate a trained model on validation videos: metrics per clip and per video, per-class files.

        Args:
            ckpt_path: The vidclf checkpoint to evaluate (a run folder: its checkpoints/best.ckpt).
            verbose: Print the metrics table.
            weights_only: Load the checkpoint with torch's weights_only (Lightning's default when unset).
            runtime: What runs the model: torch (the metrics as trained), or the runtime predict would use
                (auto, onnxruntime, openvino; CPU) to measure it.
            precision: fp32, or bf16 (OpenVINO on a CPU with bf16 instructions).
        """
        return self._in_runtime(runtime, precision, lambda: super(VidclfTrainer, self).validate(
            model, dataloaders, ckpt_path, verbose, datamodule, weights_only))

    def test(self, model=None, dataloaders=None, ckpt_path: Optional[str] = None, verbose: bool = True,
             datamodule=None, weights_only: Optional[bool] = None, runtime: Runtime = "torch",
             precision: Literal["fp32", "bf16"] = "fp32"):
        """Evaluate a trained model on held-out test videos, once, when the model is final.

        Args:
            ckpt_path: The vidclf checkpoint to test (a run folder: its checkpoints/best.ckpt).
            verbose: Print the metrics table.
            weights_only: Load the checkpoint with torch's weights_only (Lightning's default when unset).
            runtime: What runs the model: torch (the metrics as trained), or auto, onnxruntime, openvino (CPU).
            precision: fp32, or bf16 (OpenVINO on a CPU with bf16 instructions).
        """
        return self._in_runtime(runtime, precision, lambda: super(VidclfTrainer, self).test(
            model, dataloaders, ckpt_path, verbose, datamodule, weights_only))

    def _in_runtime(self, runtime: str, precision: str, run, model_file: Optional[str] = None):
        """`run` (predict, validate or test) with the model in `runtime` once its weights are loaded (or
        the exported `model_file` in its own runtime)."""
        check_precision(runtime, precision)
        swap = UseRuntime(runtime, precision, model_file)
        self.callbacks.append(swap)
        try:
            return run()
        finally:
            self.callbacks.remove(swap)

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
                overwrite: bool = False, runtime: Runtime = "auto", precision: Literal["fp32", "bf16"] = "fp32",
                model_file: Optional[str] = None, output_format: Literal["auto", "labelstudio"] = "auto",
                labelstudio_root: Optional[str] = None, live: bool = False, events: Optional[str] = None,
                smooth: PositiveInt = 1, min_duration: NonNegativeFloat = 0.0, duration: Optional[PositiveFloat] = None,
                print: bool = False, reconnect: NonNegativeInt = 5, rtsp_transport: Literal["tcp", "udp"] = "tcp"):
        """Predict the class of every video and write one row per video to a CSV or JSON Lines file.

        Live sources (rtsp://, rtmp://, srt://, udp://, tcp://, an HLS .m3u8, /dev/videoN, or - for standard
        input) are scored as they play: every --stride seconds the last --window seconds, each row flushed
        to --timeline (and standard output with --print true) at once; the main output gets one row per
        source when it ends (the stream's end, --duration, Ctrl-C or SIGTERM).

        Args:
            ckpt_path: The vidclf checkpoint to predict with (a run folder: its checkpoints/best.ckpt).
            output: Where to write predictions (.csv, or .jsonl for JSON Lines).
            top_k: How many ranked labels with probabilities each row lists. Default: 5; for a
                multi-label model every class's probability (prob_<class> columns) instead.
            timeline: Also write a prediction per time window of each video to this file
                (path,start,end,label,prob,...); the main file's row then combines all windows.
            window: Timeline window length in seconds. Default: the model's clip length.
            stride: Seconds between timeline window starts. Default: the window length.
            overwrite: Replace existing output files (otherwise predict refuses to start).
            runtime: What runs the model: auto (on a CPU the fastest installed: openvino, onnxruntime, then
                torch; torch on a GPU), torch, onnxruntime or openvino. The checkpoint is converted once
                and kept in ~/.cache/vidclf/runtimes; rows equal torch's (probabilities within 1e-4).
            precision: fp32, or bf16 (OpenVINO on a CPU with bf16 instructions: faster, probabilities
                within about 1e-2). INT8: vidclf export --precision int8 (measured on your videos).
            model_file: Run this export of `vidclf export` (model.onnx or model.xml, its sidecar beside it)
                instead of a checkpoint: classes, clip settings, views and thresholds come from the sidecar.
            output_format: auto (by --output's suffix: .csv, .jsonl) or labelstudio: Label Studio tasks (.json)
                with pre-annotations, a `choices` result for the video and `timelinelabels` ranges from the
                timeline windows (--window, --stride), and the matching labelling config printed.
            labelstudio_root: Label Studio's local-files document root: videos under it become
                /data/local-files/?d= paths (else the path or URL as given).
            live: Read every --data.predict input as a live source (a file then plays in real time); live
                sources are otherwise recognised by their scheme or device.
            events: Live: also write a row per label run (source,start,end,label,prob) to this CSV or JSON
                Lines file, when the run ends.
            smooth: Live: a window's label from the mean probabilities of the last N windows.
            min_duration: Live: seconds a label must last to be an event (shorter runs are flicker).
            duration: Live: stop after this many seconds of stream.
            print: Live: also print every window, gap and event as a JSON line on standard output.
            reconnect: Live: attempts to open a source again after it fails or drops (backoff from 0.5 s,
                doubling, 10 s at most); a gap row marks each drop.
            rtsp_transport: RTSP over tcp (interleaved: works through firewalls) or udp (RTP datagrams).
        """
        from vidclf.commands.live import live_sources, predict_live

        sources = live_sources(datamodule.hparams.predict if datamodule is not None else None, live)
        if sources:
            return predict_live(self, model, datamodule, sources, ckpt_path, model_file, runtime, precision, output,
                                timeline, events, window, stride, smooth, min_duration, duration, reconnect,
                                rtsp_transport, print, top_k, overwrite)

        def run():
            return super(VidclfTrainer, self).predict(model, dataloaders, datamodule, return_predictions, ckpt_path)

        # the runtime swaps in before the writer starts its clock
        return self._in_runtime(runtime, precision,
                                lambda: pr.predict(self, datamodule, run, output, top_k, timeline, window, stride, overwrite,
                                                   output_format, labelstudio_root),
                                model_file)

    def export(self, model: pl.LightningModule, datamodule=None, ckpt_path: Optional[str] = None,
               format: ex.Format = "onnx", output: Optional[str] = None,
               tolerance: NonNegativeFloat = 1e-3, overwrite: bool = False,
               precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32", calibration_clips: PositiveInt = 64,
               max_accuracy_drop: NonNegativeFloat = 1.0) -> dict:
        """Export a trained model (ONNX, OpenVINO IR, TorchScript or torch.export) with a JSON sidecar, and check it.

        Args:
            ckpt_path: The vidclf checkpoint to export (a run folder: its checkpoints/best.ckpt).
            format: onnx (run by onnxruntime), openvino (model.xml + model.bin), torchscript (.pt) or pt2
                (torch.export program).
            output: File to write. Default: model.onnx / model.xml / model.pt / model.pt2 in the checkpoint's run.
            tolerance: Largest allowed difference between exported and checkpoint logits (fp32).
            overwrite: Replace `output` and its sidecar if they exist.
            precision: fp32; int8 (post-training quantization calibrated on your videos: NNCF for openvino,
                ONNX Runtime's static QDQ for onnx); fp16 (openvino: fp16 weights) or bf16 (openvino: computed
                in bf16). Anything but fp32 is measured against the checkpoint on --data.val first.
            calibration_clips: int8: clips to calibrate on, spread over --data.predict (else --data.val).
            max_accuracy_drop: A reduced-precision export whose accuracy (multi-label: mAP) on --data.val is
                more than this many points below the checkpoint's is an error, and nothing is written.
        """
        return ex.export(model, datamodule, ckpt_path, format, output, tolerance, overwrite, precision,
                         calibration_clips, max_accuracy_drop)

    def data(self, model: pl.LightningModule, datamodule=None, output: str = "data_summary",
             overwrite: bool = False) -> dict:
        """Look at the data before training: classes, durations, formats, bad files and duplicates per split.

        Per split: samples per class with their duration, resolutions, frame rates, codecs, unreadable
        or missing files, and the same content in two splits; writes summary.csv, files.csv,
        duplicates.csv and class_balance.png into `output`.

        Args:
            output: Folder for the tables and the figure.
            overwrite: Replace the files of an earlier look in `output` (otherwise data refuses to start).
        """
        from vidclf.commands.data_look import look

        return look(datamodule, output, overwrite)

    def serve(self, model: pl.LightningModule, datamodule=None, ckpt_path: Optional[str] = None,
              host: str = "127.0.0.1", port: int = 8000, max_batch_size: PositiveInt = 8,
              batch_timeout: NonNegativeFloat = 0.05, workers: PositiveInt = 1, decode_threads: Optional[PositiveInt] = None,
              max_upload_mb: PositiveFloat = 200.0, read_timeout: PositiveFloat = 30.0, timeout: PositiveFloat = 120.0,
              shutdown_timeout: NonNegativeFloat = 30.0, top_k: Optional[PositiveInt] = None, runtime: Runtime = "auto",
              precision: Literal["fp32", "bf16"] = "fp32", model_file: Optional[str] = None,
              labelstudio_url: Optional[str] = None, streams: Optional[list[str]] = None) -> None:
        """Serve a trained model over HTTP (LitServe): POST /predict, GET /info, GET /health, a web page at /.

        Answers are the rows `vidclf predict` writes for the same file (views and thresholds from the
        checkpoint, --data.num_clips / --data.num_crops to change them).

        Args:
            ckpt_path: The vidclf checkpoint to serve (a run folder: its checkpoints/best.ckpt).
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
            runtime: What runs the model in the workers: auto (on a CPU the fastest installed: openvino,
                onnxruntime, then torch; torch on a GPU), torch, onnxruntime or openvino (converted once,
                cached in ~/.cache/vidclf/runtimes).
            precision: fp32, or bf16 (OpenVINO on a CPU with bf16 instructions).
            model_file: Serve this export of `vidclf export` (model.xml or model.onnx, its sidecar beside it)
                instead of a checkpoint, in its own runtime.
            labelstudio_url: Also be a Label Studio ML backend (give Label Studio http://HOST:PORT/labelstudio):
                /predict answers its tasks with pre-annotations (choices and timeline ranges), fetching each
                task's video from this Label Studio only, with the API token in LABEL_STUDIO_API_KEY.
            streams: Live sources to classify as they play (RTSP cameras, network streams: see vidclf predict),
                fixed here: GET /streams/events streams their window rows and events (server-sent events)
                and the web page shows them; no client can make the server open a URL.
        """
        from vidclf.commands.serve import serve

        serve(self, model, datamodule, ckpt_path, host, port, max_batch_size, batch_timeout, workers, decode_threads,
              max_upload_mb, read_timeout, timeout, shutdown_timeout, top_k, runtime, precision, model_file, labelstudio_url,
              streams)
