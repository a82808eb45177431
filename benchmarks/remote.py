"""Training clips read from an S3 server vs the same files on local disk, uncached and from the
frame cache; requests per clip; and the read strategy for large objects.

The S3 server is moto's (the one the tests use) in its own process on 127.0.0.1, counting the
requests it answers; it shares this machine's cores, and its bandwidth (a Python server) is far
below a real store's while its latency is far lower, so the ratios say what vidclf's own reading
costs, not what a data centre gives. Videos: every mp4/avi under ../shared/videos/labeled_actions and
dataset_typing_vs_exercise (real clips, 0.2-3 MB). Clips are drawn as training draws them
(`VideoClips(train=True)`, single process, the threads vidclf chooses), the same clips in every arm;
the frame cache is filled first (not timed). The strategy table reads one clip of a
3, 10 and 60 s video (960x540, 12 Mb/s: 5, 16 and 91 MB) fetched whole vs in ranged blocks of
several sizes (the last 32 MiB of blocks kept).

    python benchmarks/remote.py [--clips 150] [--out runs/bench_remote]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import torch

from vidclf.cores import compute_threads
from vidclf.data.cache import FrameCache
from vidclf.data.clips import ClipSettings, clip_times
from vidclf.data.datasets import VideoClips
from vidclf.data.decode import VideoReader
from vidclf.data.sources import labelled_videos
from vidclf.io import remote_video, storage

SHARED = Path(__file__).resolve().parents[2] / "shared" / "videos"
LATENCY, BANDWIDTH = 0.03, 90e6  # a cloud object store seen from a machine in its region (assumed)
CLIP = ClipSettings(frames=16, rate=4, crop=160, resize=182, train_resize=(182, 228))


def serve(port: int) -> None:
    """Run moto's S3 server on 127.0.0.1:port, answering GET /__requests with "requests bytes" (answered
    so far, and the bytes of their bodies)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app, count = DomainDispatcherApplication(create_backend_app), [0, 0]

    def counted(environ, start_response):
        if environ["PATH_INFO"] == "/__requests":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"{count[0]} {count[1]}".encode()]
        count[0] += 1

        def start(status, headers, *rest):
            count[1] += int(dict((k.lower(), v) for k, v in headers).get("content-length", 0))
            return start_response(status, headers, *rest)

        return app(environ, start)

    make_server("127.0.0.1", port, counted, threaded=True, request_handler=MotoRequestHandler).serve_forever()


class Server:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)],
                                        stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self.requests()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the S3 server did not start")

    def requests(self) -> np.ndarray:
        """(requests, bytes) answered so far."""
        return np.array(urllib.request.urlopen(f"{self.endpoint}/__requests", timeout=5).read().split(), dtype=np.int64)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def upload(server: Server, files: dict[str, Path]) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint)
    client.create_bucket(Bucket="bench")
    for key, path in files.items():
        client.upload_file(str(path), "bench", key)


def write_big(path: Path, seconds: int) -> None:
    """`seconds` of 960x540 noise scrolling sideways at 12 Mb/s (1.5 MB/s), keyframes every 2 s."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (540, 960, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 960, 540, "yuv420p", 12_000_000
        stream.options = {"preset": "ultrafast", "g": "60"}
        for i in range(30 * seconds):
            image = np.roll(base, i * 3, axis=1)
            image[::7] = rng.integers(0, 255, image[::7].shape, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())


def clips_per_second(samples: list[str], cache: FrameCache | None, count: int, server: Server) -> tuple:
    """(clips/s, requests per clip, MB per clip) over `count` training clips of `samples`."""
    dataset = VideoClips(samples, None, CLIP, train=True, seed=0, cache=cache)
    order = np.random.default_rng(1).integers(0, len(samples), count)
    if cache is not None:  # fill the cache first (not timed)
        for i in sorted(set(order.tolist())):
            dataset[(0, int(i), 0)]
    before, start = server.requests(), time.perf_counter()
    for draw, i in enumerate(order):
        assert "video" in dataset[(1, int(i), draw)], samples[i]
    seconds = time.perf_counter() - start
    requests, sent = (server.requests() - before) / count  # the count's own requests are not counted
    return count / seconds, requests, sent / 1e6


def strategy(url: str, server: Server, whole: bool, block: int, repeats: int = 3) -> tuple[float, float, float]:
    """(ms, requests, MB) to read one training clip (16 frames, 2 s, at 37% of the video) of `url`."""
    remote_video.WHOLE_MAX, remote_video.BLOCK = (1 << 40, block) if whole else (0, block)
    storage.info(url)  # known from a listing, as in a run
    times, moved = [], []
    for _ in range(repeats):
        before, start = server.requests(), time.perf_counter()
        with VideoReader(url) as reader:
            reader.clips(clip_times([reader.info.duration * 0.37], 16, 4 / 30), short_side=182)
        times.append(time.perf_counter() - start)
        moved.append(server.requests() - before)
    return 1000 * float(np.median(times)), float(moved[-1][0]), moved[-1][1] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=150, help="training clips timed per arm")
    parser.add_argument("--out", default="runs/bench_remote")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    threads = compute_threads()
    if threads:
        torch.set_num_threads(threads)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    server = Server()
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    try:
        videos = sorted(p for folder in ("labeled_actions", "dataset_typing_vs_exercise")
                        for p in (SHARED / folder).rglob("*") if p.suffix in (".mp4", ".avi"))
        files = {f"videos/{p.parent.name}/{p.name}": p for p in videos}
        for name, seconds in (("big.mp4", 60), ("mid.mp4", 10), ("small.mp4", 3)):
            write_big(out / name, seconds)
        upload(server, {**files, **{name: out / name for name in ("big.mp4", "mid.mp4", "small.mp4")}})
        remote = [url for url, _ in labelled_videos("s3://bench/videos").items]  # one listing: sizes, ETags
        local = [str(files[url.split("bench/", 1)[1]]) for url in remote]
        size = sum(p.stat().st_size for p in videos) / len(videos) / 1e6
        print(f"{len(videos)} videos, {size:.2f} MB on average; {args.clips} training clips per arm "
              f"({CLIP.frames} frames, rate {CLIP.rate}); {threads or torch.get_num_threads()} torch threads")
        results = {}
        for name, samples, cached in (("local disk, uncached", local, False), ("S3, uncached", remote, False),
                                      ("local disk, frame cache", local, True), ("S3, frame cache", remote, True)):
            cache = FrameCache(str(out / f"cache-{name.split(',')[0].replace(' ', '_')}"), CLIP.interval,
                               CLIP.train_resize[1]) if cached else None
            results[name] = clips_per_second(samples, cache, args.clips, server)
        base = results["local disk, uncached"][0]
        print("\n| source | clips/s | vs local uncached | requests per clip | MB per clip |\n|---|---|---|---|---|")
        for name, (rate, requests, mb) in results.items():
            print(f"| {name} | {rate:.1f} | {rate / base:.2f}x | {requests:.2f} | {mb:.2f} |")

        chosen = (remote_video.WHOLE_MAX, remote_video.BLOCK)
        names = ("small.mp4", "mid.mp4", "big.mp4")
        print(f"\nOne training clip of one object read each way: ms here (median of 3), requests, MB moved, and\n"
              f"the time those would take on a store {LATENCY * 1000:.0f} ms away at {BANDWIDTH / 1e6:.0f} MB/s per "
              f"stream (requests x latency + MB / bandwidth, a model, not a measurement):\n"
              "| read | " + " | ".join(f"{(out / n).stat().st_size / 1e6:.0f} MB video" for n in names) + " |\n|---|---|---|---|")
        print("| local disk | " + " | ".join(f"{local_ms(out / n):.0f} ms" for n in names) + " |")
        for whole, block in ((True, 0), (False, 1 << 20), (False, 2 << 20), (False, 4 << 20), (False, 8 << 20), (False, 16 << 20)):
            cells = [strategy(f"s3://bench/{n}", server, whole, block) for n in names]
            label = "whole object" if whole else f"ranged, {block >> 20} MiB blocks"
            print(f"| {label} | " + " | ".join(f"{ms:.0f} ms, {r:.0f} req, {mb:.1f} MB -> "
                                                f"{1000 * (r * LATENCY + mb * 1e6 / BANDWIDTH):.0f} ms"
                                                for ms, r, mb in cells) + " |")
        remote_video.WHOLE_MAX, remote_video.BLOCK = chosen
        print(f"\nvidclf reads objects up to {chosen[0] >> 20} MiB whole, larger ones in ranges with "
              f"{chosen[1] >> 20} MiB blocks")
        (out / "results.json").write_text(json.dumps({k: list(v) for k, v in results.items()}))
    finally:
        server.stop()


def local_ms(path: Path) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with VideoReader(str(path)) as reader:
            reader.clips(clip_times([reader.info.duration * 0.37], 16, 4 / 30), short_side=182)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


if __name__ == "__main__":
    main()
