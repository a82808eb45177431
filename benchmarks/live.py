"""Live streams: latency from a window's last frame arriving to its row, and how many 25 fps streams one
machine keeps in real time, per model and inference runtime; then memory over a long stream.

Each stream is ffmpeg sending a real clip of ../shared/videos (340x256, re-encoded once at 25 fps with a
keyframe a second, looped) in real time as MPEG-TS over TCP on 127.0.0.1; `vidclf predict` reads N of them
at once for --seconds of stream. A setting keeps real time when no window was skipped and the 95th
percentile latency is under the stride. N doubles until it does not; the table gives the largest N that
did, with the torch runtime as the baseline in the same run.

Models: the demo recipe's (X3D-XS, 8 frames at 64 px) and X3D-S at its published input (13 frames at
160 px); one short `vidclf fit` each (weights do not change the speed).

    .venv/bin/python benchmarks/live.py [--seconds 20] [--streams 1 2 4 8 16 32] [--backbones demo x3d_s]
        [--runtimes torch onnxruntime openvino] [--memory 3600]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import checkpoint, free_port, tree_rss_mb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared/videos/labeled_actions/arm_wrestling/k400_mmaction2_demo.mp4"


def stream_file(tmp: Path) -> Path:
    """The clip at 25 fps with a keyframe every second, as an IP camera sends."""
    out = tmp / "camera25.ts"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(CLIP), "-r", "25", "-c:v", "libx264",
                    "-g", "25", "-an", "-f", "mpegts", str(out)], check=True)
    return out


def senders(video: Path, count: int) -> tuple[list[subprocess.Popen], list[str]]:
    ports = [free_port() for _ in range(count)]
    procs = [subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i",
                               str(video), "-c", "copy", "-f", "mpegts", f"tcp://127.0.0.1:{p}?listen=1"],
                              stderr=subprocess.DEVNULL) for p in ports]
    time.sleep(0.5)
    return procs, [f"tcp://127.0.0.1:{p}" for p in ports]


def run(ckpt: str, video: Path, count: int, runtime: str, seconds: float, tmp: Path) -> dict:
    procs, urls = senders(video, count)
    timeline = tmp / "timeline.csv"
    try:
        done = subprocess.run([sys.executable, "-m", "vidclf", "predict", "--ckpt_path", ckpt, "--data.predict",
                               urls[0] if count == 1 else "[" + ",".join(urls) + "]", "--output", str(tmp / "live.csv"),
                               "--timeline", str(timeline), "--duration", str(seconds), "--runtime", runtime,
                               "--reconnect", "0", "--overwrite", "true"], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
    finally:
        for p in procs:
            p.kill()
            p.wait()
    with open(timeline) as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "ok"]
    lags = sorted(float(r["lag"]) for r in rows)
    stride = float(rows[0]["end"]) - float(rows[0]["start"]) if rows else 1.0
    skipped = sum(int(r["skipped"] or 0) for r in rows)
    p95 = lags[min(len(lags) - 1, int(0.95 * len(lags)))] if lags else float("inf")
    silent = count - len({r["source"] for r in rows})  # streams that gave no window (never connected, in time)
    return {"windows": len(rows), "skipped": skipped, "p50": statistics.median(lags) if lags else float("inf"),
            "p95": p95, "real_time": skipped == 0 and p95 < stride and not silent, "stride": stride, "silent": silent}


def memory(ckpt: str, video: Path, seconds: float, tmp: Path) -> None:
    """Resident memory of one `vidclf predict` reading one stream for `seconds`, sampled every 10 s."""
    procs, urls = senders(video, 1)
    live = subprocess.Popen([sys.executable, "-m", "vidclf", "predict", "--ckpt_path", ckpt, "--data.predict", urls[0],
                             "--output", str(tmp / "mem.csv"), "--timeline", str(tmp / "mem_timeline.csv"),
                             "--duration", str(seconds), "--reconnect", "100", "--overwrite", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, began = [], time.time()
    try:
        while live.poll() is None:
            samples.append((time.time() - began, tree_rss_mb(live.pid)))
            time.sleep(10)
    finally:
        for p in procs:
            p.kill()
    samples = [s for s in samples if s[1] > 0]
    settled = next((s for s in samples if s[0] >= 60), samples[0])
    peak = max(s[1] for s in samples)
    print(f"memory over {seconds:.0f} s of one stream (demo model, runtime auto): {settled[1]:.0f} MB at "
          f"{settled[0]:.0f} s, {samples[-1][1]:.0f} MB at {samples[-1][0]:.0f} s "
          f"({samples[-1][1] - settled[1]:+.0f} MB), peak {peak:.0f} MB; {len(samples)} samples")
    with open(tmp / "mem.csv") as f:
        row = next(csv.DictReader(f))
    print(f"  the stream: {row['windows']} windows, {row['skipped']} skipped, {row['gaps']} gaps, {row['seconds']} s, "
          f"ended: {row['ended']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--backbones", nargs="*", default=["demo", "x3d_s"], help="none: only the memory run")
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnxruntime", "openvino"])
    parser.add_argument("--memory", type=float, default=0, help="seconds of the memory run (0: skip)")
    args = parser.parse_args()
    from vidclf.cores import core_count

    print(f"{core_count()} cores; streams of {CLIP.name} at 25 fps, {args.seconds:g} s each run")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        video = stream_file(tmp)
        for backbone in args.backbones:
            (tmp / backbone).mkdir()
            ckpt = checkpoint(tmp / backbone, None if backbone == "demo" else backbone)
            kept = {}
            for runtime in args.runtimes:
                kept[runtime] = 0
                for count in args.streams:
                    r = run(ckpt, video, count, runtime, args.seconds, tmp)
                    silent = f", {r['silent']} stream(s) gave no window" if r["silent"] else ""
                    print(f"{backbone:<6} {runtime:<11} streams {count:>2}: {r['windows']:>4} windows, "
                          f"{r['skipped']:>3} skipped, latency p50 {r['p50'] * 1000:7.1f} ms, p95 "
                          f"{r['p95'] * 1000:7.1f} ms (stride {r['stride']:.2f} s){silent}: "
                          f"{'real time' if r['real_time'] else 'BEHIND'}", flush=True)
                    if not r["real_time"]:
                        break
                    kept[runtime] = count
            base = kept.get("torch") or None
            for runtime, count in kept.items():
                ratio = f" ({count / base:.1f}x torch)" if base and runtime != "torch" else ""
                print(f"{backbone}: {runtime} keeps {count} stream(s) of 25 fps in real time{ratio}", flush=True)
        if args.memory:
            memory(checkpoint(tmp / "mem", None), video, args.memory, tmp)


if __name__ == "__main__":
    main()
