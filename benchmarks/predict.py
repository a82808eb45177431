"""Whole-video prediction throughput: vidclf predict vs a straightforward pytorchvideo baseline.

Both score every video of the same corpus with the same model (X3D-XS, its zoo input: 4 frames,
one every 12th of 30 fps, 182 px short side, 160 px centre crop) from 5 clips spread over the
video, averaged. The baseline is what a Flash / pytorchvideo user writes: EncodedVideo (PyAV),
get_clip per clip, uniform temporal subsampling, resize + crop, one clip per forward pass.

    .venv/bin/python benchmarks/predict.py [--corpus ../shared/videos/labeled_actions] [--limit 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vidclf import VideoClassifier, VideoDataModule
from vidclf.cli.trainer import VidclfTrainer
from vidclf.data.sources import unlabelled_videos
from vidclf.models.backbones import get_spec

CLIPS = 5


def baseline(model: VideoClassifier, paths: list[str]) -> float:
    """Seconds for pytorchvideo EncodedVideo + the same model, one clip at a time."""
    from pytorchvideo.data.encoded_video import EncodedVideo

    spec = get_spec("x3d_xs")
    mean, std = torch.tensor(spec.mean).view(3, 1, 1, 1), torch.tensor(spec.std).view(3, 1, 1, 1)
    start = time.perf_counter()
    for path in paths:
        video = EncodedVideo.from_path(path, decode_audio=False)
        last = max(0.0, float(video.duration) - spec.clip_seconds)
        probs = []
        for i in range(CLIPS):
            t0 = last * i / (CLIPS - 1)
            frames = video.get_clip(t0, t0 + spec.clip_seconds)["video"]  # (C, T, H, W) float 0..255
            idx = torch.linspace(0, frames.shape[1] - 1, spec.frames).long()
            x = frames[:, idx] / 255.0
            h, w = x.shape[-2:]
            scale = spec.resize / min(h, w)
            x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False)
            top, left = (x.shape[-2] - spec.crop) // 2, (x.shape[-1] - spec.crop) // 2
            x = ((x[..., top:top + spec.crop, left:left + spec.crop] - mean) / std)[None]
            with torch.no_grad():
                probs.append(model.net(x).softmax(-1))
        torch.stack(probs).mean(0)
        video.close()
    return time.perf_counter() - start


def vidclf_predict(model: VideoClassifier, corpus: list[str], workers: int) -> float:
    """Seconds for vidclf's predict path (VideoDataModule + VidclfTrainer.predict + CSV writer)."""
    data = VideoDataModule(predict=corpus, backbone="x3d_xs", num_clips=CLIPS, batch_size=4, num_workers=workers)
    trainer = VidclfTrainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=False, accelerator="cpu", callbacks=[])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        trainer.predict(model, datamodule=data, output=f"{tmp}/p.csv", return_predictions=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/videos/labeled_actions"))
    parser.add_argument("--limit", type=int, default=20, help="videos taken from the corpus (sorted)")
    args = parser.parse_args()
    paths = unlabelled_videos(args.corpus).items[: args.limit]
    torch.manual_seed(0)
    model = VideoClassifier("x3d_xs", num_classes=400).eval()
    threads = torch.get_num_threads()
    print(f"{len(paths)} videos from {args.corpus}; {CLIPS} clips each; torch threads {threads}")
    print(f"{'method':38s} {'seconds':>8s} {'videos/s':>9s} {'vs baseline':>11s}")
    base = baseline(model, paths)
    print(f"{'pytorchvideo EncodedVideo, clip by clip':38s} {base:8.2f} {len(paths) / base:9.2f} {1.0:10.2f}x")
    for workers in (0, 2):
        took = vidclf_predict(model, paths, workers)
        print(f"{f'vidclf predict, num_workers={workers}':38s} {took:8.2f} {len(paths) / took:9.2f} {base / took:10.2f}x")


if __name__ == "__main__":
    main()
