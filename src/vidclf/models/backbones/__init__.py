"""Backbones: one table of specs over one module per family.

- `pytorchvideo`, `torchvision`: the Kinetics-400 zoos (short names: x3d_s, r2plus1d_18, ...); `zoo`
  builds them with a new head and loads their published weight files.
- `hf`: Hugging Face video classifiers, `hf:<hub id or save_pretrained folder>` or a short name
  (videomae_b, ...); their input comes from the checkpoint's own config and preprocessor files
  (`hf_files`). `words`: X-CLIP, CLIP and SigLIP checkpoints, whose text tower writes the head from
  the class names (zero-shot).
- `timm`: any timm image model applied to each frame, `timm:<model name>`.
- `small`: small networks made for training from scratch on a few hundred videos (small3d, small2plus1d).

A spec is the single place a backbone's preprocessing is stated; the data pipeline and the export
sidecar both read it (`VideoDataModule(backbone=...)`, `export.sidecar`).
"""

from __future__ import annotations

from typing import Union

from torch import nn

from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.models.backbones import hf, hf_files, pytorchvideo, small, timm, torchvision, words, zoo
from vidclf.models.backbones.spec import SCRATCH_RECIPE, BackboneSpec

BACKBONES: dict[str, BackboneSpec] = {**pytorchvideo.SPECS, **torchvision.SPECS, **small.SPECS}
# short names for recommended checkpoints of the other families -> their full names
SHORT_NAMES = {**hf.SHORT_NAMES, **words.SHORT_NAMES, **timm.SHORT_NAMES}
ALIASES: dict[str, str] = {short: full for short, (full, _) in SHORT_NAMES.items()}
PREFIXES = {"hf:": hf, "timm:": timm}


def get_spec(name: str) -> BackboneSpec:
    """The spec of backbone `name`; an unknown name raises an error listing the valid ones."""
    name = ALIASES.get(name, name)
    if name in BACKBONES:
        return BACKBONES[name]
    for prefix, family in PREFIXES.items():
        if name.startswith(prefix):
            return family.spec(name[len(prefix):])
    raise VidclfError(f"unknown backbone {name!r}; choose one of: {', '.join([*BACKBONES, *ALIASES])}, "
                      f"or hf:<Hugging Face id or folder>, timm:<timm model name>")


def build_backbone(name: str, num_classes: int, dropout: float = 0.5, pretrained: Union[bool, str] = False,
                   temporal: str = "mean", width: int | None = None, depth: int | None = None,
                   diff: bool = False, class_words: list[str] | None = None,
                   prompts: list[str] | None = None) -> nn.Module:
    """Backbone `name` with a fresh `num_classes`-way head; it takes normalised float clips
    (B, C, T, H, W) and returns logits (B, K), whatever the family. `width`, `depth` and `diff` shape
    the small networks only; a video-text model's head comes from `class_words` in `prompts`."""
    spec = get_spec(name)
    if spec.family == "small":
        return small.build(name, num_classes, dropout, pretrained, width, depth, diff)
    given = [option for option, value in (("width", width), ("depth", depth), ("diff", diff or None)) if value is not None]
    if given:
        what = "takes RGB frames (frame differences" if given[0] == "diff" else "has its own shape (width and depth"
        raise VidclfError(f"--model.{given[0]}: {name} {what} are for the networks trained from scratch: "
                          f"{', '.join(small.SPECS)}); drop the option or pick one of those")
    zoo_url = spec.family not in ("hf", "timm") and str(pretrained).startswith(("http://", "https://"))
    if isinstance(pretrained, str) and storage.is_remote(pretrained) and not zoo_url:  # (the zoo downloads URLs itself)
        try:
            pretrained = str(storage.local_copy(pretrained))
        except OSError as err:
            raise VidclfError(f"--model.pretrained {pretrained}: {storage.reason(err)}") from None
    if temporal != "mean" and spec.family != "timm":
        raise VidclfError(f"--model.temporal {temporal} is for image models per frame (timm:NAME); "
                          f"{name} models time itself: leave it at mean")
    if spec.family == "hf":
        return hf.build(spec, num_classes, dropout, pretrained, class_words, prompts)
    if spec.family == "timm":
        return timm.build(spec, num_classes, dropout, pretrained, temporal)
    return zoo.build(name, spec, num_classes, dropout, pretrained)


def scratch_note(name: str, pretrained: Union[bool, str]) -> str | None:
    """One line for a network built for Kinetics-scale data that is about to train from random weights."""
    if pretrained or get_spec(name).family == "small":
        return None
    return f"{name} starts from random weights, and it was designed for Kinetics-scale data; with few videos try {SCRATCH_RECIPE}"


def classifier(net: nn.Module) -> nn.Module:
    """The new head of a network built by build_backbone (everything else is the backbone)."""
    for family in (hf, words, timm, small):
        head = family.classifier(net)
        if head is not None:
            return head
    return zoo.classifier(net)


def remember_files(name: str, files: dict | None) -> None:
    """Build backbone `name` from config files kept in a vidclf checkpoint: no hub, no folder."""
    name = ALIASES.get(name, name)
    if files and name.startswith("hf:"):
        hf_files.remember(name[3:], files)


def short_names_help() -> str:
    """The short names of the other families with their input, for --help."""
    return "; ".join(f"{short} ({full}, {what})" for short, (full, what) in SHORT_NAMES.items())
