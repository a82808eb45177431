"""Inference runtimes on the CPU: torch against ONNX Runtime and OpenVINO, at fp32, bf16 and int8.

Three parts, each measured in one run, with the threads vidclf picks:

  models    ms per forward pass of one video's clips for X3D-S (3 clips, 13 x 160 px), VideoMAE ViT-B
            (1 clip, 16 x 224 px) and timm ConvNeXt-T per frame (3 clips, 8 x 224 px), random weights at
            their real sizes (weights do not change the speed): torch (channels_last_3d for X3D, as
            vidclf runs it), ONNX Runtime fp32 and int8 (static QDQ), OpenVINO f32, bf16 and int8 (NNCF);
            max abs logit difference against torch
  accuracy  a trained model (make demo's X3D-XS, --run) exported at every precision, each measured by
            `vidclf export` on --val (accuracy of the export and of the checkpoint, top-1 agreement)
  batches   X3D-S at 4 / 16 / 32 clips per pass: torch against OpenVINO's LATENCY and THROUGHPUT hints
  predict   `vidclf predict` end to end (decoding included) over ../shared/videos/labeled_actions with
            X3D-S at its native input, 4 clips per video, --runtime torch / onnxruntime / openvino

    .venv/bin/python benchmarks/runtimes.py [--parts models batches accuracy predict] [--limit 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = sorted((ROOT.parent / "shared" / "videos" / "labeled_actions").glob("*/*.mp4"))


def timed(run, repeats: int) -> float:
    """Median ms of `repeats` calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - begin))
    return statistics.median(times)


def videomae_b(folder: Path) -> str:
    """hf:FOLDER of a VideoMAE ViT-B (16 frames, 224 px) with random weights, as save_pretrained writes it."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    VideoMAEForVideoClassification(VideoMAEConfig(num_labels=5)).save_pretrained(folder)
    VideoMAEImageProcessor().save_pretrained(folder)
    return f"hf:{folder}"


def models(tmp: Path, repeats: int) -> None:
    import onnxruntime  # noqa: F401  (fail early if missing)
    import openvino as ov

    from vidclf.models.backbones import build_backbone
    from vidclf.runtimes.convert import openvino_model, write_onnx
    from vidclf.runtimes.engines import open_engine
    from vidclf.runtimes.quantize import onnx_int8, openvino_int8

    cases = [("x3d_s", 3, (13, 160)), (videomae_b(tmp / "videomae_b"), 1, (16, 224)), ("timm:convnext_tiny", 3, (8, 224))]
    threads = torch.get_num_threads()
    print(f"models: ms per forward pass of one video's clips, median of {repeats}, {threads} threads")
    for name, clips, (frames, size) in cases:
        torch.manual_seed(0)
        net = build_backbone(name, 5).eval()
        x = torch.randn(clips, 3, frames, size, size)
        calibration = [torch.randn(1, 3, frames, size, size).numpy() for _ in range(8)]
        onnx, xml = str(tmp / "m.onnx"), str(tmp / "m.xml")
        example = torch.cat([x[:1], x[:1]])
        write_onnx(net, example, onnx)
        model = openvino_model(net, example, str(tmp))
        ov.save_model(model, xml, compress_to_fp16=False)
        openvino_int8(model, str(tmp / "q.xml"), calibration)
        onnx_int8(onnx, str(tmp / "q.onnx"), calibration)
        if name.startswith("x3d"):
            net = net.to(memory_format=torch.channels_last_3d)
            x_torch = x.contiguous(memory_format=torch.channels_last_3d)
        else:
            x_torch = x
        with torch.inference_mode():
            expected = net(x_torch).numpy()
            base = timed(lambda: net(x_torch), repeats)
        label = name if not name.startswith("hf:") else "hf VideoMAE ViT-B"
        print(f"  {label} ({clips} x {frames} x {size} px): torch {base:.0f} ms", flush=True)
        arms = [("onnxruntime fp32", onnx, "onnxruntime", "fp32"), ("onnxruntime int8", str(tmp / "q.onnx"), "onnxruntime", "fp32"),
                ("openvino fp32", xml, "openvino", "fp32"), ("openvino bf16", xml, "openvino", "bf16"),
                ("openvino int8", str(tmp / "q.xml"), "openvino", "int8")]
        array = x.numpy()
        for arm, path, runtime, precision in arms:
            engine = open_engine(path, runtime, threads, precision)
            ms = timed(lambda: engine(array), repeats)
            diff = float(np.abs(engine(array) - expected).max())
            print(f"    {arm:<17} {ms:7.0f} ms  {base / ms:5.2f}x torch   max |logit diff| {diff:.1e}", flush=True)


def batches(tmp: Path, repeats: int) -> None:
    """X3D-S at 4, 16 and 32 clips per pass: torch (channels_last_3d) against OpenVINO f32 with its
    LATENCY and THROUGHPUT hints (why vidclf compiles for LATENCY)."""
    import openvino as ov

    from vidclf.models.backbones import build_backbone
    from vidclf.runtimes.convert import openvino_model

    torch.manual_seed(0)
    net = build_backbone("x3d_s", 5).eval()
    xml = str(tmp / "batches.xml")
    ov.save_model(openvino_model(net, torch.zeros(2, 3, 13, 160, 160), str(tmp)), xml, compress_to_fp16=False)
    net = net.to(memory_format=torch.channels_last_3d)
    threads = torch.get_num_threads()
    print(f"batches: X3D-S 13 x 160 px, ms per pass, median of {repeats}, {threads} threads")
    for clips in (4, 16, 32):
        x = torch.randn(clips, 3, 13, 160, 160)
        x_torch = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode():
            base = timed(lambda: net(x_torch), repeats)
        cells = [f"torch {base:.0f}"]
        for hint in ("LATENCY", "THROUGHPUT"):
            compiled = ov.Core().compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": hint,
                                                            "INFERENCE_NUM_THREADS": threads})
            request = compiled.create_infer_request()
            ms = timed(lambda: request.infer({0: x.numpy()}), repeats)
            cells.append(f"OpenVINO {hint} {ms:.0f} ({base / ms:.2f}x)")
        print(f"  {clips:>2} clips: " + ", ".join(cells), flush=True)


def accuracy(run: str, val: str, tmp: Path) -> None:
    print(f"accuracy: {run} exported at each precision, measured on {val} by vidclf export")
    for fmt, precision in (("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "fp16"),
                           ("openvino", "bf16"), ("openvino", "int8")):
        out = tmp / f"{fmt}_{precision}" / ("model.xml" if fmt == "openvino" else "model.onnx")
        done = subprocess.run([sys.executable, "-m", "vidclf", "export", "--ckpt_path", run, "--format", fmt,
                               "--precision", precision, "--output", str(out), "--data.val", val,
                               "--max_accuracy_drop", "100"], capture_output=True, text=True)
        if done.returncode:
            print(f"  {fmt} {precision}: FAILED {done.stderr.strip().splitlines()[-1:]}")
            continue
        info = json.loads(Path(f"{out}.json").read_text())
        measured = info.get("accuracy")
        size = sum(p.stat().st_size for p in out.parent.glob("model.*") if p.suffix != ".json") / 2**20
        text = (f"accuracy {measured['export']:.3f} (checkpoint {measured['checkpoint']:.3f}), agreement "
                f"{measured['agreement']:.3f} on {measured['videos']} videos" if measured else
                f"max |logit diff| {info['check']['max_abs_diff']:.1e} (fp32: checked, not measured)")
        print(f"  {fmt:<8} {precision}: {size:5.1f} MB, {text}", flush=True)


def x3d_s_checkpoint(tmp: Path) -> str:
    """A vidclf checkpoint of X3D-S at its own input (one short fit on rendered videos)."""
    from vidclf.synthetic import render_dataset

    render_dataset(str(tmp / "train"), per_class=2, seed=0)
    subprocess.run([sys.executable, "-m", "vidclf", "fit", "--config", str(ROOT / "configs/demo.yaml"),
                    "--model.backbone", "x3d_s", *(a for k in ("frames", "rate", "crop", "resize", "train_resize")
                                                   for a in (f"--data.{k}", "null")),
                    "--data.train", str(tmp / "train"), "--data.val", "null", "--trainer.max_epochs", "1",
                    "--trainer.default_root_dir", str(tmp / "runs"), "--trainer.enable_progress_bar", "false"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(tmp / "runs/version_0/checkpoints/last.ckpt")


def predict(tmp: Path, limit: int) -> None:
    ckpt = x3d_s_checkpoint(tmp)
    listing = tmp / "videos"  # links to the first `limit` videos
    listing.mkdir()
    for video in VIDEOS[:limit]:
        (listing / f"{video.parent.name}_{video.name}").symlink_to(video)
    print(f"predict: vidclf predict of {min(limit, len(VIDEOS))} videos of ../shared/videos/labeled_actions, X3D-S "
          f"13 x 160 px, 4 clips each")
    seconds = {}
    warm = [sys.executable, "-m", "vidclf", "predict", "--ckpt_path", ckpt, "--data.predict", str(VIDEOS[0]),
            "--output", str(tmp / "warm.csv"), "--overwrite", "true"]
    for name in ("openvino", "onnxruntime"):  # the conversions (once per checkpoint) are not timed
        subprocess.run([*warm, "--runtime", name], check=True, capture_output=True)
    for arm in ("torch", "onnxruntime", "openvino", "openvino bf16"):
        runtime, *precision = arm.split()
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vidclf", "predict", "--ckpt_path", ckpt, "--data.predict", str(listing),
                        "--data.num_clips", "4", "--output", str(tmp / f"{arm}.csv"), "--runtime", runtime,
                        "--precision", *(precision or ["fp32"]), "--trainer.enable_progress_bar", "false"],
                       check=True, capture_output=True)
        seconds[arm] = time.perf_counter() - begin
        print(f"  {arm:<14} {seconds[arm]:6.1f} s  {seconds['torch'] / seconds[arm]:.2f}x torch", flush=True)
    print(f"  decoding alone (the same clips, predict's 2 loader workers, no model): {decoding(ckpt, listing):.1f} s; "
          f"starting a vidclf process: {startup():.1f} s")


def decoding(ckpt: str, folder: Path) -> float:
    """Seconds to decode every clip predict decodes for the videos in `folder`, in 2 DataLoader workers."""
    from torch.utils.data import DataLoader

    from vidclf.data.collate import collate
    from vidclf.data.datamodule import VideoDataModule
    from vidclf.data.datasets import VideoClips

    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    data = saved["datamodule_hyper_parameters"]
    clip = VideoDataModule(backbone=saved["hyper_parameters"]["backbone"], **{k: data[k] for k in (
        "frames", "rate", "crop", "resize", "train_resize")}).clip
    paths = sorted(str(p) for p in folder.iterdir())
    begin = time.perf_counter()
    for _ in DataLoader(VideoClips(paths, None, clip, num_clips=4), batch_size=8, num_workers=2, collate_fn=collate):
        pass
    return time.perf_counter() - begin


def startup() -> float:
    """Seconds for `vidclf --help`: the imports every command pays."""
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vidclf", "--help"], check=True, capture_output=True)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["models", "accuracy", "predict"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--run", default=str(ROOT / "runs/demo/version_0"), help="a trained run (make demo's)")
    parser.add_argument("--val", default=str(ROOT / "data/demo/val"), help="its labelled videos")
    parser.add_argument("--limit", type=int, default=40, help="videos for the predict part")
    args = parser.parse_args()
    from vidclf.cores import compute_threads

    threads = compute_threads(1)
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        if "models" in args.parts:
            models(Path(tmp), args.repeats)
        if "batches" in args.parts:
            batches(Path(tmp), args.repeats)
        if "accuracy" in args.parts:
            accuracy(args.run, args.val, Path(tmp))
        if "predict" in args.parts:
            predict(Path(tmp), args.limit)


if __name__ == "__main__":
    main()
