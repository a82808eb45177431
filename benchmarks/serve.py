"""Serving throughput and latency: `vidclf serve` with batching on and off, against a plain handler.

The demo recipe's model (X3D-XS, 8 frames at 64 px, 3 clips per video; one short `vidclf fit` on
rendered videos: weights do not change the speed) is served four ways on 127.0.0.1, one at a time:

  baseline       a plain threaded HTTP handler that, per request, decodes the upload with vidclf's decoder
                 and runs one forward pass (what a Flask/Gradio wrapper does: no batching)
  serve b=1      `vidclf serve --max_batch_size 1`
  serve b=8      `vidclf serve --max_batch_size 8 --batch_timeout 0.05`
  serve b=8 w=2  the same with two model worker processes (`--workers 2`)
  r=RUNTIME      with `--runtime RUNTIME` (torch, onnxruntime, openvino; unset: auto)
  p=PRECISION    with `--precision PRECISION` (fp32, bf16)

N concurrent clients (--clients, default 1 4 16) post the real clips of ../shared/videos/labeled_actions
(340x256, 10 s) as raw bodies: requests/s and p50/p95 latency, with ratios against the baseline at the
same N. Then twice --memory requests to the last server, with the resident memory of all its processes
before and after each. --backbone NAME serves that backbone at its published input instead (e.g.
x3d_s: 13 frames at 160 px, where the model, not decoding, takes most of the time).

    .venv/bin/python benchmarks/serve.py [--requests 48] [--clients 1 4 16] [--memory 500] [--backbone x3d_s]
        [--kinds baseline "serve b=1 r=torch" "serve b=8 r=openvino"]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = sorted((ROOT.parent / "shared" / "videos" / "labeled_actions").glob("*/*.mp4"))


KINDS = ["baseline", "serve b=1 r=torch", "serve b=8 r=torch", "serve b=1 r=openvino", "serve b=8 r=openvino",
         "serve b=8 w=2 r=openvino"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baseline_server(ckpt: str, port: int) -> None:
    """The plain handler: decode, then one forward per request, in the request's own thread."""
    import torch

    from vidclf.commands.predict import score_fields
    from vidclf.cores import compute_threads
    from vidclf.data.datamodule import VideoDataModule
    from vidclf.data.datasets import VideoClips
    from vidclf.models.classifier import VideoClassifier

    torch.set_num_threads(compute_threads(1) or torch.get_num_threads())
    model = VideoClassifier.load_from_checkpoint(ckpt, map_location="cpu").eval()
    data = torch.load(ckpt, map_location="cpu", weights_only=True)["datamodule_hyper_parameters"]
    clip = VideoDataModule(backbone=model.hparams.backbone, **{k: data[k] for k in (
        "frames", "rate", "crop", "resize", "train_resize")}).clip

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
                f.write(self.rfile.read(int(self.headers["Content-Length"])))
                f.flush()
                item = VideoClips([f.name], None, clip, num_clips=data["num_clips"], num_crops=data["num_crops"])[0]
            with torch.inference_mode():
                answer = score_fields(model.video_probs(model.clip_logits(item["video"][None]))[0], model)
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.request_queue_size = 128  # socketserver's default backlog (5) resets a burst of 16
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def start(kind: str, ckpt: str, port: int) -> subprocess.Popen:
    if kind == "baseline":
        args = [sys.executable, __file__, "--baseline", ckpt, str(port)]
    else:  # "serve b=B [w=W] [r=RUNTIME]"
        knobs = dict(part.split("=") for part in kind.split()[1:])
        args = [sys.executable, "-m", "vidclf", "serve", "--ckpt_path", ckpt, "--port", str(port),
                "--max_batch_size", knobs["b"], "--batch_timeout", "0.05", "--workers", knobs.get("w", "1"),
                "--runtime", knobs.get("r", "auto"), "--precision", knobs.get("p", "fp32")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            post(port, VIDEOS[0])
            return proc
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{kind} did not start")


def post(port: int, video: Path) -> float:
    """Seconds from sending the video to the whole answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=video.read_bytes(),
                                     headers={"Content-Type": "video/mp4"})
    begin = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        json.loads(response.read())
    return time.perf_counter() - begin


def load(port: int, clients: int, requests: int) -> tuple[float, float, float, int]:
    """(answered requests/s, p50 s, p95 s, failed requests) of `requests` posts from `clients`
    concurrent clients."""

    def one(i: int):
        try:
            return post(port, VIDEOS[i % len(VIDEOS)])
        except OSError:
            return None

    begin = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - begin
    latencies = sorted(t for t in results if t is not None)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    return len(latencies) / wall, statistics.median(latencies), p95, requests - len(latencies)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def checkpoint(tmp: Path, backbone: str | None) -> str:
    from vidclf.synthetic import render_dataset

    render_dataset(str(tmp / "train"), per_class=2, seed=0)
    # another backbone at its own published input instead of the demo's small one
    other = ["--model.backbone", backbone, *(a for k in ("frames", "rate", "crop", "resize", "train_resize")
                                             for a in (f"--data.{k}", "null"))] if backbone else []
    subprocess.run([sys.executable, "-m", "vidclf", "fit", "--config", str(ROOT / "configs/demo.yaml"), *other,
                    "--data.train", str(tmp / "train"), "--data.val", "null", "--trainer.max_epochs", "1",
                    "--trainer.default_root_dir", str(tmp / "runs"), "--trainer.enable_progress_bar", "false"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(tmp / "runs/version_0/checkpoints/last.ckpt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48, help="requests per (server, clients) cell")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--memory", type=int, default=500, help="requests for the memory check (0: skip)")
    parser.add_argument("--backbone", help="serve this backbone at its own input instead of the demo model")
    parser.add_argument("--kinds", nargs="+", default=KINDS, help="servers to measure, in order (the first is the "
                        "baseline; the memory check runs on the last)")
    parser.add_argument("--baseline", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        return baseline_server(args.baseline[0], int(args.baseline[1]))
    from vidclf.cores import core_count

    print(f"{len(VIDEOS)} videos from ../shared/videos/labeled_actions, {args.requests} requests per cell, "
          f"{core_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint(Path(tmp), args.backbone)
        results: dict[tuple[str, int], tuple[float, float, float, int]] = {}
        for kind in args.kinds:
            port = free_port()
            proc = start(kind, ckpt, port)
            try:
                for clients in args.clients:
                    results[kind, clients] = load(port, clients, args.requests)
                    rate, p50, p95, failed = results[kind, clients]
                    base = results["baseline", clients][0]
                    print(f"{kind:<13} clients {clients:>2}: {rate:6.2f} req/s ({rate / base:.2f}x baseline), "
                          f"p50 {p50:6.2f} s, p95 {p95:6.2f} s{f', {failed} FAILED' if failed else ''}", flush=True)
                if kind == args.kinds[-1] and args.memory:
                    sizes = [tree_rss_mb(proc.pid)]
                    for _ in range(2):
                        load(port, max(args.clients), args.memory)
                        sizes.append(tree_rss_mb(proc.pid))
                    print(f"{kind}: resident memory of all its processes {sizes[0]:.0f} MB, after {args.memory} more "
                          f"requests {sizes[1]:.0f} MB ({sizes[1] - sizes[0]:+.0f}), after {args.memory} more "
                          f"{sizes[2]:.0f} MB ({sizes[2] - sizes[1]:+.0f})")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=120)


if __name__ == "__main__":
    main()
