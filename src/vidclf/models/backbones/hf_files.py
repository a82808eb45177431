"""Hugging Face checkpoints as files: where a hf:<source> lives (a save_pretrained folder, the hub's
cache, object storage), its config and preprocessor files, its input normalisation, and its weights
loaded with every tensor checked.

Hub ids are fetched once into huggingface_hub's cache; a vidclf checkpoint keeps the config files, so
later commands never need the hub (`remember`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.models.backbones.spec import IMAGENET_MEAN, IMAGENET_STD, SCRATCH_RECIPE

CONFIG_FILES = ("config.json", "preprocessor_config.json", "video_preprocessor_config.json")
WEIGHT_FILES = ["*.safetensors", "*.bin", "*.index.json"]
PRETRAINING_ONLY = ("decoder", "encoder_to_decoder", "mask_token", "predictor")  # weights a classifier drops
_REMEMBERED: dict[str, dict] = {}  # source -> config files, as stored in a vidclf checkpoint


def configs(source: str) -> dict:
    """The config and preprocessor files of hf:<source> (file name -> its JSON)."""
    files = _REMEMBERED.get(source) or _read_configs(source)
    if not is_local(source):
        _REMEMBERED[source] = files  # one hub lookup per process, however often the spec is asked for
    return files

def remember(source: str, files: dict) -> None:
    """Use `files` (config files kept in a vidclf checkpoint) for hf:<source>: no hub, no folder needed."""
    _REMEMBERED[source] = files


def side(size) -> Optional[int]:
    if isinstance(size, int):
        return size
    if isinstance(size, dict):
        value = size.get("shortest_edge") or size.get("height")
        return int(value) if value else None
    return None


def normalisation(processor: dict) -> tuple[tuple, tuple]:
    """(mean, std) for vidclf's ((rgb / 255) - mean) / std equal to the processor's own steps:
    x * rescale_factor (- 1 with ViViT's `offset`), then (x - image_mean) / image_std if it normalises.
    Without a processor file: ImageNet values, as the published VideoMAE / V-JEPA 2 checkpoints use."""
    if not processor:
        return IMAGENET_MEAN, IMAGENET_STD
    factor = float(processor.get("rescale_factor", 1 / 255)) if processor.get("do_rescale", True) else 1.0
    offset = 1.0 if processor.get("offset") else 0.0
    if processor.get("do_normalize", True):
        mean, std = processor.get("image_mean", IMAGENET_MEAN), processor.get("image_std", IMAGENET_STD)
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    mean = [mean] * 3 if isinstance(mean, (int, float)) else mean
    std = [std] * 3 if isinstance(std, (int, float)) else std
    scale = 255 * factor
    return tuple((offset + m) / scale for m in mean), tuple(s / scale for s in std)


def is_local(source: str) -> bool:
    """A folder on disk (never looked up on the hub): it exists, or reads as a path, not as org/name."""
    return Path(source).expanduser().exists() or source.startswith(("/", ".", "~")) or source.count("/") != 1


def folder_of(source: str, patterns: list[str]) -> Path:
    """A local folder holding `patterns` of hf:<source>: the folder itself, or the hub snapshot in
    huggingface_hub's cache (downloaded once, with a progress bar); a URL's local copy."""
    if storage.is_remote(source):  # a save_pretrained folder in object storage
        try:
            return storage.local_copy(source)
        except OSError as err:
            raise VidclfError(f"hf:{source}: {storage.reason(err)}") from None
    if is_local(source):
        folder = Path(source).expanduser()
        if not (folder / "config.json").is_file():
            what = "no such folder" if not folder.exists() else "a folder without config.json"
            raise VidclfError(f"hf:{source}: {what}; pass a folder written by save_pretrained, or a hub id "
                              f"like hf:MCG-NJU/videomae-base")
        return folder
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(source, allow_patterns=patterns))
    except RepositoryNotFoundError:
        raise VidclfError(f"hf:{source}: no such model on the Hugging Face hub; check the id, or pass a local "
                          f"folder (hf:/path/to/folder)") from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise VidclfError(f"hf:{source}: not in the local Hugging Face cache and the hub cannot be reached "
                          f"({type(err).__name__}; offline?); download it once with network access, or pass "
                          f"hf:/path/to/a/save_pretrained/folder, or train from scratch: {SCRATCH_RECIPE}") from None


def _read_configs(source: str) -> dict:
    folder = folder_of(source, list(CONFIG_FILES))
    files = {}
    for name in CONFIG_FILES:
        path = folder / name
        if path.is_file():
            try:
                files[name] = json.loads(path.read_text())
            except ValueError as err:
                raise VidclfError(f"{path}: not valid JSON ({err})") from None
    return files


def load_checked(cls, config, folder: Path, name: str) -> nn.Module:
    """from_pretrained, then every tensor of the weight files compared with the model's: a tensor
    dropped or changed on the way (as transformers 5 once did with VideoMAE's q_bias / v_bias) is an
    error, not a silently re-initialised layer. Only the classifier, and the parts a pretraining
    checkpoint has and a classifier lacks (decoder, predictor, mask token), may differ."""
    import transformers

    transformers.logging.set_verbosity_error()  # the expected "newly initialized classifier" notes
    transformers.logging.disable_progress_bar()  # "Loading weights" of every tensor
    model = cls.from_pretrained(folder, config=config).train()  # from_pretrained returns it in eval mode
    mine = model.state_dict()
    prefix = f"{model.base_model_prefix}."
    rename = renames(model)
    lost, loaded = [], set()
    for key, tensor in weight_files(folder, name).items():
        key = rename(key)
        target = key if key in mine else prefix + key if prefix + key in mine else None
        if target is None:
            if not key.startswith(PRETRAINING_ONLY) and not is_head(key):
                lost.append(key)
            continue
        if is_head(target) and mine[target].shape != tensor.shape:
            continue  # the checkpoint's own classifier (another class count): replaced anyway
        if not torch.equal(mine[target].to(tensor.dtype), tensor):
            lost.append(key)
        loaded.add(target)
    missing = [k for k in mine if k not in loaded and not is_head(k)]
    if lost or missing:
        raise VidclfError(f"{name}: {len(lost)} weight(s) of the checkpoint did not load as saved (e.g. "
                          f"{', '.join(lost[:3]) or '-'}) and {len(missing)} model weight(s) were not in it "
                          f"(e.g. {', '.join(missing[:3]) or '-'}); this transformers version reads the "
                          f"checkpoint differently: pin the version it was saved with, or re-save it")
    return model


def renames(model: nn.Module):
    """How this transformers version renames checkpoint keys on load (its conversion mapping, e.g.
    VideoMAE's q_bias -> query.bias in transformers 5), so saved and loaded tensors pair as it pairs them."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping

        rules = [(re.compile(src), dst) for r in get_model_conversion_mapping(model)
                 if type(r).__name__ == "WeightRenaming" for src, dst in zip(r.source_patterns, r.target_patterns)]
    except ImportError:  # transformers 4: keys load as saved
        rules = []

    def rename(key: str) -> str:
        for pattern, target in rules:
            key = pattern.sub(target, key)
        return key

    return rename


def is_head(key: str) -> bool:
    return key.split(".")[0] in ("classifier", "fc_norm", "pooler")


def weight_files(folder: Path, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if files:
        return {k: v for f in files for k, v in load_file(f).items()}
    files = sorted(folder.glob("*.bin"))
    if not files:
        raise VidclfError(f"{name}: no weight files (*.safetensors or *.bin) in {folder}")
    return {k: v for f in files for k, v in torch.load(f, map_location="cpu", weights_only=True).items()}
