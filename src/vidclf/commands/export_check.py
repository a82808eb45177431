"""What a reduced-precision export is checked with: calibration clips from the user's videos, and the
checkpoint and the exported model compared on the labelled --data.val videos (accuracy, agreement)."""

from __future__ import annotations

import math

import numpy as np
import torch

from vidclf.data.datasets import VideoClips
from vidclf.data.sources import unlabelled_videos
from vidclf.errors import VidclfError
from vidclf.metrics.multilabel import average_precision


def calibration_set(model, datamodule, count: int) -> tuple[list[np.ndarray], dict]:
    """Up to `count` normalised clips (1, C, T, H, W) spread over the --data.predict videos, else the
    --data.val ones, as predict decodes them; videos that fail to decode are skipped and counted."""
    hp = datamodule.hparams
    option = "--data.predict" if hp.predict else "--data.val"
    paths = unlabelled_videos(hp.predict or hp.val, hp.videos_root, getattr(hp, "format", "auto")).items
    per_video = max(1, math.ceil(count / max(1, len(paths))))
    clips, skipped = [], 0
    videos = VideoClips(paths, None, datamodule.clip, num_clips=per_video)
    for item in map(videos.__getitem__, range(len(videos))):  # (iterating the dataset itself never ends: an
        if "error" in item:                                    # index past the end is an error item, not IndexError)
            skipped += 1
            continue
        clips += [model.normalize(clip).unsqueeze(0).float().numpy() for clip in item["video"]]
        if len(clips) >= count:
            break
    if not clips:
        raise VidclfError(f"{option}: none of its {len(paths)} videos decoded, so there is nothing to calibrate "
                          f"int8 on; pass videos that `vidclf data` reads")
    print(f"vidclf: int8 calibration on {len(clips[:count])} clips of {option}"
          + (f" ({skipped} video(s) skipped: they did not decode)" if skipped else ""))
    return clips[:count], {"source": option, "clips": len(clips[:count]), "videos_skipped": skipped}


def compare_on_val(model, datamodule, exported, what: str, max_drop: float) -> dict:
    """The checkpoint (torch) and `exported` (a network in its runtime) on every --data.val video: the
    accuracy of each (multi-label: mAP), how often their predictions agree; an error past `max_drop` points."""
    datamodule.setup("validate")
    multi = bool(model.hparams.multi_label)
    probs = {"checkpoint": [], "export": []}
    labels = []
    torch_net = model.net
    with torch.inference_mode():
        for batch in datamodule.val_dataloader():
            if "video" not in batch:
                continue
            for name, net in (("checkpoint", torch_net), ("export", exported)):
                model.net = net
                probs[name].append(model.video_probs(model.clip_logits(batch["video"])).float())
            labels.append(batch["label"])
    model.net = torch_net
    if not labels:
        raise VidclfError("--data.val: no video decoded, so the export cannot be measured; check it with vidclf data")
    p = {name: torch.cat(chunks) for name, chunks in probs.items()}
    y = torch.cat(labels)
    result = {"videos": len(y), "metric": "mAP" if multi else "accuracy"}
    for name, scores in p.items():
        result[name] = round(float(average_precision(scores, y).nanmean() if multi else (scores.argmax(1) == y).float().mean()), 6)
    decided = {name: (s >= model.active_thresholds()) if multi else s.argmax(1) for name, s in p.items()}
    same = (decided["checkpoint"] == decided["export"])
    result["agreement"] = round(float((same.all(1) if multi else same).float().mean()), 6)
    drop = 100 * (result["checkpoint"] - result["export"])
    print(f"vidclf: {what} on {len(y)} videos of --data.val: {result['metric']} {result['export']:.3f} (checkpoint "
          f"{result['checkpoint']:.3f}), {'label sets' if multi else 'top-1'} agreement {result['agreement']:.3f}")
    if drop > max_drop:
        raise VidclfError(f"{what} {result['metric']} {result['export']:.3f} is {drop:.1f} points below the "
                          f"checkpoint's {result['checkpoint']:.3f} (--max_accuracy_drop {max_drop}); nothing written; "
                          f"try more --calibration_clips, or --precision bf16 / fp32")
    return result
