"""Reading vidclf checkpoints: one reader every command uses, each file read once per command."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from vidclf.errors import VidclfError
from vidclf.io import sniff, storage

_KEPT: dict[tuple, dict] = {}  # (path, size, mtime) -> contents, kept for one later reader (export, serve)


def read_checkpoint(path: str, pretraining: bool = False, keep: bool = False) -> dict:
    """A vidclf checkpoint's contents (of `vidclf pretrain` with `pretraining`), or one clear error
    naming the file. A remote checkpoint (a URL) is read from a local copy (see `local_checkpoint`).
    `keep`: hold the contents for the next read of the same unchanged file, which takes them (so the
    CLI's restore and export/serve share one read, and nothing stays in memory after)."""
    path = local_checkpoint(path)
    if not Path(path).is_file():
        raise VidclfError(f"--ckpt_path {path}: no such file; pass RUN/checkpoints/best.ckpt of a vidclf run")
    checkpoint = _load(path, keep)
    hparams = checkpoint.get("hyper_parameters", {})
    if "mask_ratio" in hparams and not pretraining:
        run = Path(path).parent.parent
        raise VidclfError(f"--ckpt_path {path}: a `vidclf pretrain` checkpoint (an encoder without classes); "
                          f"fine-tune it first: vidclf fit --model.backbone hf:{run / 'encoder'} --model.pretrained true")
    if "backbone" in hparams and pretraining:
        raise VidclfError(f"--ckpt_path {path}: a classifier's checkpoint; pretrain resumes from a `vidclf pretrain` "
                          f"run's checkpoint (RUN/checkpoints/last.ckpt under runs/pretrain)")
    if ("mask_ratio" if pretraining else "backbone") not in hparams:
        raise VidclfError(f"--ckpt_path {path}: not a vidclf checkpoint; pass one from RUN/checkpoints/")
    return checkpoint


def load_weights(model, path: str):
    """`model` (built from the checkpoint's options) with the checkpoint's weights, in eval mode."""
    model.load_state_dict(read_checkpoint(path)["state_dict"])
    return model.eval()


def local_checkpoint(path: str) -> str:
    """`path`, or for a URL (s3://...) its local copy, downloaded once per version."""
    if not storage.is_remote(path):
        return path
    try:
        return str(storage.local_copy(path))
    except OSError as err:
        raise VidclfError(f"--ckpt_path {path}: {storage.reason(err)}") from None


def _load(path: str, keep: bool) -> dict:
    """torch.load of a checkpoint file, or the contents kept by the last read of it while unchanged."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _KEPT:
        return _KEPT[key] if keep else _KEPT.pop(key)
    first = sniff.head(path, 512)
    if not sniff.is_checkpoint(first):
        raise VidclfError(f"--ckpt_path {path}: not a checkpoint but {sniff.describe(first)}; pass "
                          f"RUN/checkpoints/best.ckpt (or last.ckpt) of a vidclf run")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise VidclfError(f"--ckpt_path {path}: a damaged or foreign checkpoint ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:160]}); pass one from RUN/checkpoints/") from None
    _KEPT.clear()
    if keep:
        _KEPT[key] = checkpoint
    return checkpoint


def sha256(path: str) -> str:
    """Of a file (a URL: of its local copy)."""
    digest = hashlib.sha256()
    with open(storage.local_copy(path) if storage.is_remote(path) else path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
