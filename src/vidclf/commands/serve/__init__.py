"""`vidclf serve`: a trained model behind HTTP, on LitServe (batching, worker processes, devices).

The main process starts LitServe's inference workers (vidclf.commands.serve.api, the model) and HTTP server
processes (vidclf.commands.serve.http in front of LitServe's app), then waits. SIGTERM or Ctrl-C stops it
gracefully: the HTTP servers stop accepting, finish the requests in flight (up to
`shutdown_timeout`), then the workers stop and the process exits 0.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Optional

from vidclf.commands.predict import views
from vidclf.commands.serve import streams as live
from vidclf.cores import core_count
from vidclf.errors import VidclfError
from vidclf.io.checkpoints import load_weights
from vidclf.models.features import class_vectors

HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds: loopback, or every interface


def serve(trainer, model, datamodule, ckpt_path: Optional[str], host: str, port: int, max_batch_size: int,
          batch_timeout: float, workers: int, decode_threads: Optional[int], max_upload_mb: float,
          read_timeout: float, timeout: float, shutdown_timeout: float, top_k: Optional[int], runtime: str = "auto",
          precision: str = "fp32", model_file: Optional[str] = None, labelstudio_url: Optional[str] = None,
          streams: Optional[list[str]] = None) -> None:
    """Check the address, describe the model (GET /info), then run the server until it is stopped.
    `model_file`: an export with its sidecar in place of the checkpoint (see vidclf.runtimes.model_file)."""
    from vidclf.commands.serve.api import VideoAPI
    from vidclf.runtimes import check_precision, choose
    from vidclf.runtimes.model_file import take_sidecar
    from vidclf.runtimes.swap import convert

    zero_shot = not ckpt_path and not model_file and class_vectors(model.net) is not None  # a head from words
    if not ckpt_path and not model_file and not zero_shot:
        raise VidclfError("serve needs a trained model; pass --ckpt_path RUN/checkpoints/best.ckpt (or --model_file "
                          "model.xml of vidclf export)")
    check_address(host, port)
    check_precision(runtime, precision)
    hp = model.hparams
    gpu = trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
    clip = datamodule.clip
    if model_file:  # the sidecar's thresholds and the file's runtime, for the model card
        runtime, precision = take_sidecar(model, model_file), "as exported"
    else:
        if ckpt_path:
            load_weights(model, ckpt_path)  # the thresholds the workers will use, for the model card
        asked, runtime = runtime, choose(runtime, "cuda" if gpu else "cpu")
        check_precision(runtime, precision)
        if runtime != "torch" and convert(model, clip, runtime, asked, precision) is None:  # converted once, here:
            runtime = "torch"  # the workers find it in the cache
    thresholds = model.active_thresholds().tolist() if hp.multi_label else None
    scoring = views(model, datamodule)
    batching = {"max_batch_size": max_batch_size, "batch_timeout": batch_timeout, "workers": workers}
    upload_dir = make_upload_dir()
    if zero_shot:  # the workers load the model as built here, from a checkpoint removed with the upload folder
        ckpt_path = os.path.join(upload_dir, ".zero_shot.ckpt")
        model.save_plain(ckpt_path)
    info = model_card(model, clip, model_file or ckpt_path, scoring, batching, thresholds,
                      "model_file_sha256" if model_file else "checkpoint_sha256")
    info["runtime"] = {"name": runtime, "precision": precision}
    info["zero_shot"] = zero_shot  # the head from --model.classes, no training
    threads = decode_threads or core_count()
    api = VideoAPI(ckpt_path, {"aggregate": hp.aggregate, "threshold": hp.threshold}, clip,
                   upload_dir, top_k, threads, max_batch_size, batch_timeout, runtime, precision,
                   1 if gpu else workers, model_file, {k: v for k, v in hp.items() if not k.startswith("_")})
    info["streams"] = live.names(streams or [])
    decoding = {"clip": clip, "num_clips": scoring["num_clips"], "num_crops": scoring["num_crops"],
                "decode_threads": threads, "labelstudio_url": labelstudio_url, "streams": bool(streams)}
    scorer = live.start_scoring(streams, upload_dir, ["--model_file", model_file] if model_file else
                                ["--ckpt_path", ckpt_path], runtime, precision if precision != "as exported" else "fp32") \
        if streams else None
    try:
        run_server(api, info, decoding, host, port, upload_dir, max_upload_mb, read_timeout, timeout,
                   shutdown_timeout, accelerator="cuda" if gpu else "cpu", devices=trainer.num_devices if gpu else 1,
                   workers=workers)
    finally:
        live.stop_scoring(scorer)


def check_address(host: str, port: int) -> None:
    """One clear line before any work when the address cannot be served."""
    if host not in HOSTS:
        raise VidclfError(f"--host {host}: serve binds 127.0.0.1 (this machine only, the default), 0.0.0.0 or :: "
                          f"(every interface: an explicit choice; put a reverse proxy in front)")
    if not 1024 <= port <= 65535:
        raise VidclfError(f"--port {port}: pick a port from 1024 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            why = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be bound ({err.strerror})"
            raise VidclfError(f"--port {port} on {host} {why}; pick another --port") from None


def run_server(api, info: dict, decoding: dict, host: str, port: int, upload_dir: str, max_upload_mb: float,
               read_timeout: float, timeout: float, shutdown_timeout: float, accelerator: str, devices: int,
               workers: int) -> None:
    """Serve `api` until SIGTERM or Ctrl-C; `upload_dir` (private, made by the caller) is removed after.
    `decoding`: clip, num_clips, num_crops and decode_threads of the HTTP side (vidclf.commands.serve.http)."""
    import litserve as ls

    from vidclf.commands.serve.http import VidclfHTTP

    middleware = (VidclfHTTP, {"upload_dir": upload_dir, "max_upload_bytes": int(max_upload_mb * (1 << 20)),
                               "read_timeout": read_timeout, "info": info, **decoding})
    logging.getLogger("litserve.server").addFilter(SHUTDOWN_RACE)  # once: a logger keeps a filter once
    server = ls.LitServer(api, accelerator=accelerator, devices=devices, workers_per_device=workers,
                          timeout=timeout, middlewares=[middleware], disable_openapi_url=True)
    server.uvicorn_graceful_timeout = shutdown_timeout

    main = os.getpid()

    def stop(signum, frame):
        if os.getpid() != main:  # an HTTP server process (forked) that has already shut down gracefully
            raise SystemExit(0)
        raise KeyboardInterrupt  # LitServe's own graceful path, as for Ctrl-C

    previous = signal.signal(signal.SIGTERM, stop)
    print(f"vidclf: serving {info['backbone']} ({len(info['classes'])} classes) at http://{_url_host(host)}:{port}/ "
          f"(web page), POST /predict, GET /info, GET /health"
          + (f"; live sources {', '.join(info['streams'])} at GET /streams/events" if info.get("streams") else "")
          + (f"; a Label Studio ML backend at http://{_url_host(host)}:{port}/labelstudio (videos from "
             f"{decoding['labelstudio_url']} only)" if decoding.get("labelstudio_url") else "")
          + "; Ctrl-C or SIGTERM stops", file=sys.stderr, flush=True)
    try:
        server.run(host=host, port=port, log_level="warning", generate_client_file=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(upload_dir, ignore_errors=True)
    print("vidclf: server stopped", file=sys.stderr, flush=True)


class ShutdownRace(logging.Filter):
    """Drops one record: LitServe's monitor thread polls a multiprocessing manager that LitServe's own
    graceful shutdown has already stopped, and logs the lost connection as "Monitoring worker crashed"
    with a traceback (about 1 stop in 4 here); every request has been answered by then."""

    def filter(self, record: logging.LogRecord) -> bool:
        lost = record.exc_info and issubclass(record.exc_info[0], (ConnectionError, EOFError))
        return not (lost and record.getMessage().startswith("Monitoring worker crashed"))


SHUTDOWN_RACE = ShutdownRace()


def make_upload_dir() -> str:
    """A new folder only this user can read, for the uploads being scored."""
    return tempfile.mkdtemp(prefix="vidclf-uploads-")


def _url_host(host: str) -> str:
    return "[::]" if host == "::" else host


def model_card(model, clip, checkpoint: str, views: dict, batching: dict, thresholds: Optional[list[float]],
               sha_key: str = "checkpoint_sha256") -> dict:
    """GET /info: what the server runs; `sha_key` names the sha256 of `checkpoint` (or of the export served)."""
    from vidclf.io.checkpoints import sha256
    from vidclf.version import __version__

    card = {"vidclf_version": __version__, "backbone": model.hparams.backbone, "classes": list(model.class_names),
            "multi_label": bool(model.hparams.multi_label),
            "clip": {"frames": clip.frames, "rate": clip.rate, "crop": clip.crop, "resize": clip.resize,
                     "frame_interval_seconds": clip.interval, "seconds": clip.seconds},
            "video": views, "batching": batching, sha_key: sha256(checkpoint)}
    if thresholds is not None:
        card["thresholds"] = dict(zip(model.class_names, thresholds))
    return card
