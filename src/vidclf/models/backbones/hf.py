"""Hugging Face `transformers` video classifiers: VideoMAE, TimeSformer, ViViT and V-JEPA 2.

`hf:<hub id or save_pretrained folder>` names a checkpoint of one of the four architectures of
`MODEL_FOR_VIDEO_CLASSIFICATION`, a classifier or a pretraining-only encoder; the classifier becomes a
fresh one for the user's classes. Its input (frames, image size, resize, mean/std and rescaling)
is read from the checkpoint's own config.json and (video_)preprocessor_config.json, never from the
processor classes' defaults (which differ from the checkpoints'). Hub ids are fetched once into
huggingface_hub's cache; a vidclf checkpoint keeps these files, so later commands never need the hub.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.models.backbones.spec import IMAGENET_MEAN, IMAGENET_STD, SCRATCH_RECIPE, BackboneSpec

# model_type -> (class, input key, sampling rate of the published fine-tuning recipe, fixed input size)
ARCHITECTURES = {
    "videomae": ("VideoMAEForVideoClassification", "pixel_values", 4, True),  # K400: 16 frames x 4 (16x5x3 views)
    "timesformer": ("TimesformerForVideoClassification", "pixel_values", 32, True),  # base: 8 frames x 32
    "vivit": ("VivitForVideoClassification", "pixel_values", 2, True),  # ViViT-B: 32 frames x 2
    "vjepa2": ("VJEPA2ForVideoClassification", "pixel_values_videos", 4, False),  # 16 frames x 4, RoPE: any size
}
SHORT_NAMES = {  # recommended checkpoints: (full name, input frames x crop, published result)
    "videomae_b": ("hf:MCG-NJU/videomae-base-finetuned-kinetics", "16x224, K400 80.9"),
    "videomae_l": ("hf:MCG-NJU/videomae-large-finetuned-kinetics", "16x224, K400 84.7"),
    "videomae_b_pretrain": ("hf:MCG-NJU/videomae-base", "16x224, self-supervised encoder"),
    "timesformer_b": ("hf:facebook/timesformer-base-finetuned-k400", "8x224, K400 77.9"),
    "vivit_b": ("hf:google/vivit-b-16x2-kinetics400", "32x224, K400 79.9"),
    "vjepa2_l": ("hf:facebook/vjepa2-vitl-fpc16-256-ssv2", "16x256, SSv2 73.7, attentive probe"),
    "vjepa2_l_pretrain": ("hf:facebook/vjepa2-vitl-fpc64-256", "16x256, encoder"),
}
CONFIG_FILES = ("config.json", "preprocessor_config.json", "video_preprocessor_config.json")
PRETRAINING_ONLY = ("decoder", "encoder_to_decoder", "mask_token", "predictor")  # weights a classifier drops
PRETRAINED_RATE = "vidclf_sampling_rate"  # written by `vidclf pretrain` into config.json
_REMEMBERED: dict[str, dict] = {}  # source -> config files, as stored in a vidclf checkpoint


def spec(source: str) -> BackboneSpec:
    """The spec of `hf:<source>`, from the checkpoint's config and preprocessor files."""
    files = _REMEMBERED.get(source) or _read_configs(source)
    if not _is_local(source):
        _REMEMBERED[source] = files  # one hub lookup per process, however often the spec is asked for
    config = files["config.json"]
    kind = config.get("model_type")
    if kind not in ARCHITECTURES:
        found = ", ".join(config.get("architectures") or [])
        raise VidclfError(f"hf:{source} is a {kind} model{f' ({found})' if found else ''}, not a video classifier; vidclf takes "
                          f"{', '.join(ARCHITECTURES)} checkpoints (image models: timm:NAME)")
    _, _, rate, fixed = ARCHITECTURES[kind]
    rate = int(config.get(PRETRAINED_RATE) or rate)  # an encoder of `vidclf pretrain`: its own sampling rate
    processor = files.get("video_preprocessor_config.json") or files.get("preprocessor_config.json") or {}
    frames = int(config.get("num_frames") or config.get("frames_per_clip"))
    crop = _side(processor.get("crop_size")) or int(config.get("image_size") or config.get("crop_size"))
    resize = max(crop, _side(processor.get("size")) or round(crop * 256 / 224))
    mean, std = _normalisation(processor)
    return BackboneSpec(None, frames, rate, crop, resize, (resize, round(resize * 1.25)), mean, std, url="", state_key=None,
                        fixed_input=fixed, family="hf", source=source, config=files)


def remember(source: str, files: dict) -> None:
    """Use `files` (config files kept in a vidclf checkpoint) for hf:<source>: no hub, no folder needed."""
    _REMEMBERED[source] = files


def _side(size) -> Optional[int]:
    if isinstance(size, int):
        return size
    if isinstance(size, dict):
        value = size.get("shortest_edge") or size.get("height")
        return int(value) if value else None
    return None


def _normalisation(processor: dict) -> tuple[tuple, tuple]:
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


def _is_local(source: str) -> bool:
    """A folder on disk (never looked up on the hub): it exists, or reads as a path, not as org/name."""
    return Path(source).expanduser().exists() or source.startswith(("/", ".", "~")) or source.count("/") != 1


def _folder(source: str, patterns: list[str]) -> Path:
    """A local folder holding `patterns` of hf:<source>: the folder itself, or the hub snapshot in
    huggingface_hub's cache (downloaded once, with a progress bar); a URL's local copy."""
    if storage.is_remote(source):  # a save_pretrained folder in object storage
        try:
            return storage.local_copy(source)
        except OSError as err:
            raise VidclfError(f"hf:{source}: {storage.reason(err)}") from None
    if _is_local(source):
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
    folder = _folder(source, list(CONFIG_FILES))
    files = {}
    for name in CONFIG_FILES:
        path = folder / name
        if path.is_file():
            try:
                files[name] = json.loads(path.read_text())
            except ValueError as err:
                raise VidclfError(f"{path}: not valid JSON ({err})") from None
    return files


class HFVideo(nn.Module):
    """A transformers video classifier taking vidclf's clips (B, C, T, H, W) and returning logits.

    The models want (B, T, C, H, W) under `pixel_values` (V-JEPA 2: `pixel_values_videos`); doing
    it here keeps one clip format for data, checkpoints and exported files."""

    def __init__(self, model: nn.Module, key: str):
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(**{self.key: x.transpose(1, 2)}).logits


def build(spec: BackboneSpec, num_classes: int, dropout: float, pretrained: Union[bool, str]) -> nn.Module:
    """The checkpoint's architecture with a fresh `num_classes`-way classifier; with `pretrained`, its
    weights (from hf:<source>, or the folder `pretrained` names), every tensor checked bit-exact."""
    import transformers

    files = spec.config
    config = transformers.AutoConfig.for_model(**files["config.json"])
    class_name, key, _, _ = ARCHITECTURES[config.model_type]
    cls = getattr(transformers, class_name)
    if pretrained:
        source = spec.source if pretrained is True else str(pretrained)
        folder = _folder(source, [*CONFIG_FILES, "*.safetensors", "*.bin", "*.index.json"])
        model = _load_checked(cls, config, folder, f"hf:{source}")
        print(f"vidclf: loaded {config.model_type} weights from {folder}")
    else:
        model = cls(config)
    head = model.classifier
    model.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head.in_features, num_classes))
    model.config.num_labels = num_classes
    return HFVideo(model, key)


def _load_checked(cls, config, folder: Path, name: str) -> nn.Module:
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
    rename = _renames(model)
    lost, loaded = [], set()
    for key, tensor in _weight_files(folder, name).items():
        key = rename(key)
        target = key if key in mine else prefix + key if prefix + key in mine else None
        if target is None:
            if not key.startswith(PRETRAINING_ONLY) and not _is_head(key):
                lost.append(key)
            continue
        if _is_head(target) and mine[target].shape != tensor.shape:
            continue  # the checkpoint's own classifier (another class count): replaced anyway
        if not torch.equal(mine[target].to(tensor.dtype), tensor):
            lost.append(key)
        loaded.add(target)
    missing = [k for k in mine if k not in loaded and not _is_head(k)]
    if lost or missing:
        raise VidclfError(f"{name}: {len(lost)} weight(s) of the checkpoint did not load as saved (e.g. "
                          f"{', '.join(lost[:3]) or '-'}) and {len(missing)} model weight(s) were not in it "
                          f"(e.g. {', '.join(missing[:3]) or '-'}); this transformers version reads the "
                          f"checkpoint differently: pin the version it was saved with, or re-save it")
    return model


def _renames(model: nn.Module):
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


def _is_head(key: str) -> bool:
    return key.split(".")[0] in ("classifier", "fc_norm", "pooler")


def _weight_files(folder: Path, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if files:
        return {k: v for f in files for k, v in load_file(f).items()}
    files = sorted(folder.glob("*.bin"))
    if not files:
        raise VidclfError(f"{name}: no weight files (*.safetensors or *.bin) in {folder}")
    return {k: v for f in files for k, v in torch.load(f, map_location="cpu", weights_only=True).items()}


def classifier(net: nn.Module) -> Optional[nn.Module]:
    """The new head of an HFVideo: the classifier; for V-JEPA 2 also its attentive pooler (the
    attentive probe its authors evaluate frozen features with), so `finetune freeze` trains both."""
    if not isinstance(net, HFVideo):
        return None
    model = net.model
    if hasattr(model, "pooler") and type(model).__name__.startswith("VJEPA2"):
        return nn.ModuleList([model.pooler, model.classifier])
    return model.classifier
