"""Batches of clip items: decodable ones stacked, failed ones and warnings listed by index."""

from __future__ import annotations

import torch


def collate(items: list[dict]) -> dict:
    """Stack decodable items; list the others under "failed" as (index, reason), and the warnings of
    partly decoded ones under "warnings" as (index, text)."""
    ok = [it for it in items if "video" in it or "features" in it]
    batch = {
        "index": torch.tensor([it["index"] for it in ok], dtype=torch.long),
        "label": (torch.stack([it["label"] for it in ok]) if ok and isinstance(ok[0]["label"], torch.Tensor)
                  else torch.tensor([it["label"] for it in ok], dtype=torch.long)),
        "failed": [(it["index"], it["error"]) for it in items if "error" in it],
        "warnings": [(it["index"], it["warning"]) for it in ok if "warning" in it],
    }
    if ok and "video" in ok[0]:  # (B, N, C, T, H, W) uint8, channels innermost in memory as decoded: stacking is a plain
        # copy, and the float batch is already in the channels_last_3d layout the model runs in
        videos = torch.stack([it["video"].permute(0, 2, 3, 4, 1) for it in ok])
        batch["video"] = videos.permute(0, 1, 5, 2, 3, 4)
    if ok and "features" in ok[0]:  # cached head inputs (--data.feature_views): (B, views, ...), or a tuple of them
        first = ok[0]["features"]
        batch["features"] = (tuple(torch.stack([it["features"][j] for it in ok]) for j in range(len(first)))
                             if isinstance(first, tuple) else torch.stack([it["features"] for it in ok]))
    if ok and "starts" in ok[0]:  # timeline items (batch size 1)
        batch["starts"] = torch.stack([it["starts"] for it in ok])
    return batch
