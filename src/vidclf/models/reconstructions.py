"""What the masked autoencoder sees and rebuilds: cubes of a clip, hidden ones filled in, drawn as a figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def patchify(frames: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, patches, tubelet * patch * patch, C), in VideoMAEForPreTraining's order."""
    b, t, c, h, w = frames.shape
    x = frames.reshape(b, t // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 1, 4, 6, 2, 5, 7, 3).reshape(b, -1, tubelet * patch * patch, c)


def unpatchify(patches: torch.Tensor, shape: tuple, tubelet: int, patch: int) -> torch.Tensor:
    """The inverse of patchify, back to (B, T, C, H, W)."""
    b, t, c, h, w = shape
    x = patches.reshape(b, t // tubelet, h // patch, w // patch, tubelet, patch, patch, c)
    return x.permute(0, 1, 4, 7, 2, 5, 3, 6).reshape(b, t, c, h, w)


def fill_in(original: torch.Tensor, mask: torch.Tensor, predicted: torch.Tensor, config) -> tuple:
    """(reconstruction, hidden) in [0, 1], (B, T, C, H, W): visible cubes as they were, hidden ones
    as predicted (with norm_pix_loss, each predicted cube takes its original cube's mean and std, as
    VideoMAE's own visualisation does); `hidden` is 1 where a pixel was masked."""
    tubelet, patch = config.tubelet_size, config.patch_size
    cubes = patchify(original, tubelet, patch)
    guess = predicted.reshape(len(original), -1, tubelet * patch * patch, original.shape[2])
    if config.norm_pix_loss:
        target = cubes[mask].reshape(guess.shape)
        guess = guess * (target.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6) + target.mean(-2, keepdim=True)
    rebuilt = cubes.clone()
    rebuilt[mask] = guess.reshape(-1, *guess.shape[2:])
    hidden = torch.zeros_like(cubes)
    hidden[mask] = 1.0
    shape = tuple(original.shape)
    return (unpatchify(rebuilt, shape, tubelet, patch).clamp(0, 1), unpatchify(hidden, shape, tubelet, patch))


def draw_reconstructions(original: torch.Tensor, rebuilt: torch.Tensor, hidden: torch.Tensor, path: Path,
                         epoch: int, columns: int = 8) -> None:
    """Three rows per video (masked input grey where hidden, reconstruction, original) of evenly
    spaced frames."""
    from vidclf.io.figures import pyplot, save_figure

    plt = pyplot()
    b, t = original.shape[:2]
    picks = np.linspace(0, t - 1, min(columns, t)).round().astype(int)
    masked = original * (1 - hidden) + 0.5 * hidden
    rows = [(name, x[v]) for v in range(b) for name, x in
            (("masked input", masked), ("reconstruction", rebuilt), ("original", original))]
    fig, axes = plt.subplots(len(rows), len(picks), figsize=(1.3 * len(picks) + 1.2, 1.3 * len(rows)), dpi=80,
                             squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c, f in enumerate(picks):
            axes[r, c].imshow(frames[f].permute(1, 2, 0).numpy())
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(f"{name}\nvideo {r // 3 + 1}" if name == "masked input" else name, fontsize=8)
    for c, f in enumerate(picks):
        axes[0, c].set_title(f"frame {f}", fontsize=8)
    fig.suptitle(f"masked-video reconstruction after epoch {epoch}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
