"""`vidclf embed` throughput (videos/s) with each inference runtime, in one run: torch, ONNX Runtime and
OpenVINO (fp32, and bf16 where the CPU has it) on the same videos, from a checkpoint of real size.

    .venv/bin/python benchmarks/embed.py [--backbone x3d_s] [--videos data/demo] [--clips 3]

The checkpoint holds random weights (nothing is downloaded); speed does not depend on them. The time is
the one embed prints: decoding and the model over every video, after the model is converted (conversions
are cached, and the first run of each runtime converts once, outside the timed loop).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]


def checkpoint(backbone: str, path: Path) -> None:
    from vidclf.models.classifier import VideoClassifier

    VideoClassifier(backbone, class_names=["a", "b", "c"]).save_plain(str(path))


def embed(ckpt: Path, videos: str, clips: int, runtime: str, precision: str, out: Path) -> tuple[int, float]:
    done = subprocess.run([sys.executable, "-m", "vidclf", "embed", "--ckpt_path", str(ckpt), "--data.predict", videos,
                           "--data.num_clips", str(clips), "--output", str(out), "--overwrite", "true",
                           "--runtime", runtime, "--precision", precision, "--trainer.enable_progress_bar", "false"],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    found = re.search(r"embedded (\d+) videos .* in ([\d.]+) s", done.stderr)
    return int(found[1]), float(found[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="x3d_s")
    parser.add_argument("--videos", default=str(REPO / "data/demo"))
    parser.add_argument("--clips", type=int, default=3, help="views per video (--data.num_clips)")
    options = parser.parse_args()
    if not Path(options.videos).exists():
        subprocess.run([sys.executable, "-m", "vidclf.synthetic", options.videos], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.ckpt"
        checkpoint(options.backbone, ckpt)
        base = None
        print(f"{options.backbone}, {options.clips} clips per video, {options.videos}:")
        for runtime, precision in RUNS:
            embed(ckpt, options.videos, options.clips, runtime, precision, Path(tmp) / "warm.parquet")  # converts once
            count, seconds = embed(ckpt, options.videos, options.clips, runtime, precision, Path(tmp) / "e.parquet")
            rate = count / seconds
            base = base or rate
            print(f"  {runtime:<12} {precision}: {count} videos in {seconds:6.1f} s = {rate:5.2f} videos/s, "
                  f"{rate / base:.2f}x torch")


if __name__ == "__main__":
    main()
