"""Hugging Face `transformers` video classifiers: VideoMAE, TimeSformer, ViViT and V-JEPA 2.

`hf:<hub id or save_pretrained folder>` names a checkpoint of one of the four architectures of
`MODEL_FOR_VIDEO_CLASSIFICATION`, a classifier or a pretraining-only encoder; the classifier becomes a
fresh one for the user's classes. Its input (frames, image size, resize, mean/std and rescaling)
is read from the checkpoint's own config.json and (video_)preprocessor_config.json, never from the
processor classes' defaults (which differ from the checkpoints'). Finding and reading the files:
hf_files. X-CLIP, CLIP and SigLIP checkpoints, whose text tower writes the head, are words.py's.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.models.backbones import words
from vidclf.models.backbones.hf_files import CONFIG_FILES, WEIGHT_FILES, configs, folder_of, load_checked, normalisation, side
from vidclf.models.backbones.spec import BackboneSpec

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
PRETRAINED_RATE = "vidclf_sampling_rate"  # written by `vidclf pretrain` into config.json


def spec(source: str) -> BackboneSpec:
    """The spec of `hf:<source>`, from the checkpoint's config and preprocessor files."""
    files = configs(source)
    config = files["config.json"]
    kind = config.get("model_type")
    if kind in words.KINDS:
        return words.spec(source, files)
    if kind not in ARCHITECTURES:
        found = ", ".join(config.get("architectures") or [])
        raise VidclfError(f"hf:{source} is a {kind} model{f' ({found})' if found else ''}, not a video classifier; vidclf takes "
                          f"{', '.join(ARCHITECTURES)} checkpoints, and {', '.join(words.KINDS)} for classes from "
                          f"words (image models: timm:NAME)")
    _, _, rate, fixed = ARCHITECTURES[kind]
    rate = int(config.get(PRETRAINED_RATE) or rate)  # an encoder of `vidclf pretrain`: its own sampling rate
    processor = files.get("video_preprocessor_config.json") or files.get("preprocessor_config.json") or {}
    frames = int(config.get("num_frames") or config.get("frames_per_clip"))
    crop = side(processor.get("crop_size")) or int(config.get("image_size") or config.get("crop_size"))
    resize = max(crop, side(processor.get("size")) or round(crop * 256 / 224))
    mean, std = normalisation(processor)
    return BackboneSpec(None, frames, rate, crop, resize, (resize, round(resize * 1.25)), mean, std, url="", state_key=None,
                        fixed_input=fixed, family="hf", source=source, config=files)


class HFVideo(nn.Module):
    """A transformers video classifier taking vidclf's clips (B, C, T, H, W) and returning logits.

    The models want (B, T, C, H, W) under `pixel_values` (V-JEPA 2: `pixel_values_videos`); doing
    it here keeps one clip format for data, checkpoints and exported files."""

    def __init__(self, model: nn.Module, key: str):
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(**{self.key: x.transpose(1, 2)}).logits


def build(spec: BackboneSpec, num_classes: int, dropout: float, pretrained: Union[bool, str],
          class_words: Optional[list[str]] = None, prompts: Optional[list[str]] = None) -> nn.Module:
    """The checkpoint's architecture with a fresh `num_classes`-way classifier; with `pretrained`, its
    weights (from hf:<source>, or the folder `pretrained` names), every tensor checked bit-exact. A
    video-text model's head comes from `class_words` in `prompts` instead (words.build)."""
    import transformers

    files = spec.config
    if files["config.json"].get("model_type") in words.KINDS:
        return words.build(spec, num_classes, dropout, pretrained, class_words, prompts)
    config = transformers.AutoConfig.for_model(**files["config.json"])
    class_name, key, _, _ = ARCHITECTURES[config.model_type]
    cls = getattr(transformers, class_name)
    if pretrained:
        source = spec.source if pretrained is True else str(pretrained)
        folder = folder_of(source, [*CONFIG_FILES, *WEIGHT_FILES])
        model = load_checked(cls, config, folder, f"hf:{source}")
        print(f"vidclf: loaded {config.model_type} weights from {folder}")
    else:
        model = cls(config)
    head = model.classifier
    model.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head.in_features, num_classes))
    model.config.num_labels = num_classes
    return HFVideo(model, key)


def classifier(net: nn.Module) -> Optional[nn.Module]:
    """The new head of an HFVideo: the classifier; for V-JEPA 2 also its attentive pooler (the
    attentive probe its authors evaluate frozen features with), so `finetune freeze` trains both."""
    if not isinstance(net, HFVideo):
        return None
    model = net.model
    if hasattr(model, "pooler") and type(model).__name__.startswith("VJEPA2"):
        return nn.ModuleList([model.pooler, model.classifier])
    return model.classifier
