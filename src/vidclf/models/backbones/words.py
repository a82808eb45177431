"""Video-text and image-text models whose text tower writes the head: classes from words, zero-shot.

`hf:<hub id or save_pretrained folder>` of an X-CLIP (video-text), CLIP or SigLIP / SigLIP 2 (image-text,
run on every frame) checkpoint. The class names, put into prompt templates, go through the text tower
once; the normalised text vectors, times the model's logit scale (plus SigLIP's bias), become the
weights of an ordinary linear head over the video's embedding (the mean of its frames' normalised
image embeddings), so the logits equal the model's own image-text logits averaged over frames. The
network then takes clips like every other: it predicts without training, exports, serves and
fine-tunes from there. X-CLIP refines its text vectors per video with its prompt generator, so its
head keeps the text vectors and the generator. The text tower itself is not kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn
from torch.nn import functional as F

from vidclf.errors import VidclfError
from vidclf.models.backbones.hf_files import CONFIG_FILES, WEIGHT_FILES, folder_of, load_checked, normalisation, side
from vidclf.models.backbones.spec import BackboneSpec

KINDS = {"xclip": "XCLIPModel", "clip": "CLIPModel", "siglip": "SiglipModel"}  # model_type -> transformers class
PROMPTS = {"xclip": ["{}"], "clip": ["a photo of {}."], "siglip": ["a photo of {}."]}  # as their papers evaluate
FRAMES, RATE = 8, 8  # image-text models per frame: 8 frames over 2.1 s, as timm: models
SHORT_NAMES = {  # recommended checkpoints: (full name, input, published figures: model cards and papers)
    "xclip_b16_zs": ("hf:microsoft/xclip-base-patch16-zero-shot",
                     "32x224 video-text, zero-shot HMDB51 44.6, UCF101 72.0, K600 65.2"),
    "xclip_b32": ("hf:microsoft/xclip-base-patch32", "8x224 video-text, K400 80.4 (trained on its classes)"),
    "clip_b32": ("hf:openai/clip-vit-base-patch32", "8x224 image-text per frame, ImageNet zero-shot 63.2"),
    "siglip2_b16": ("hf:google/siglip2-base-patch16-224", "8x224 image-text per frame, ImageNet zero-shot 78.2"),
}
TOKENIZER_FILES = ["tokenizer*", "vocab*", "merges.txt", "special_tokens_map.json", "*.model"]
WORDS_HELP = "X-CLIP, CLIP and SigLIP / SigLIP 2 checkpoints (e.g. hf:microsoft/xclip-base-patch32)"


def spec(source: str, files: dict) -> BackboneSpec:
    """The spec of a video-text or image-text checkpoint, from its config and preprocessor files."""
    config = files["config.json"]
    kind, vision = config["model_type"], config.get("vision_config") or {}
    if kind == "siglip" and "naflex" in source.lower():
        raise VidclfError(f"hf:{source}: SigLIP 2 NaFlex checkpoints (any aspect ratio) are not supported; use a "
                          f"fixed-resolution one, e.g. hf:google/siglip2-base-patch16-224")
    processor = files.get("preprocessor_config.json") or {}
    crop = side(processor.get("crop_size")) or int(vision.get("image_size", 224))
    resize = max(crop, side(processor.get("size")) or crop)
    mean, std = normalisation(processor)
    frames = int(vision.get("num_frames", FRAMES)) if kind == "xclip" else FRAMES
    return BackboneSpec(None, frames, RATE, crop, resize, (resize, round(resize * 1.25)), mean, std, url="",
                        state_key=None, fixed_input=kind == "xclip", family="hf", source=source, config=files)


def is_words_model(spec: BackboneSpec) -> bool:
    return spec.family == "hf" and spec.config.get("config.json", {}).get("model_type") in KINDS


def class_words(names: list[str]) -> list[str]:
    """The words of each class name: a folder name's _ and - read as spaces (jumping_jacks: jumping jacks)."""
    return [" ".join(name.replace("_", " ").replace("-", " ").split()) for name in names]


def read_classes(classes: Union[list[str], str]) -> list[str]:
    """The class names of --model.classes (a list, or a text file with one per line), checked."""
    if isinstance(classes, str):
        path = Path(classes).expanduser()
        if not path.is_file():
            raise VidclfError(f"--model.classes {classes}: no such file; give the names as a list ('[running, "
                              f"jumping]') or a text file with one per line")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        names = [str(name).strip() for name in classes]
    if "" in names:
        raise VidclfError(f"--model.classes: class {names.index('') + 1} of {len(names)} is empty; every class needs words")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise VidclfError(f"--model.classes names {', '.join(twice)} more than once; give each class once")
    if len(names) < 2:
        raise VidclfError(f"--model.classes has {len(names)} class; a classifier needs at least two")
    return names


def check_words(spec: BackboneSpec, backbone: str, classes, prompt) -> Optional[list[str]]:
    """The class names --model.classes gives (None if not given); words given to a model without a text
    tower, or a template without its {}, are errors."""
    if not is_words_model(spec):
        given = [option for option, value in (("classes", classes), ("prompt", prompt)) if value is not None]
        if given:
            raise VidclfError(f"--model.{given[0]}: {backbone} has no text tower to read words with; the models "
                              f"that take words are {WORDS_HELP}")
        return None
    check_prompts(prompt)
    return None if classes is None else read_classes(classes)


def check_prompts(prompts: Union[str, list[str], None]) -> Optional[list[str]]:
    """The prompt templates as a list; each must hold one {} (where the class words go)."""
    if prompts is None:
        return None
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    for prompt in prompts:
        if prompt.count("{}") != 1:
            raise VidclfError(f"--model.prompt {prompt!r}: a template needs one {{}} where the class words go, "
                              f"e.g. 'a video of {{}}.'")
    if not prompts:
        raise VidclfError("--model.prompt is empty; give a template like 'a video of {}.', or leave it out")
    return prompts


class FrameEmbedder(nn.Module):
    """An image-text model's vision tower on every frame: (B, C, T, H, W) -> the mean of the frames'
    normalised image embeddings (B, D)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.vision = model.vision_model
        self.projection = getattr(model, "visual_projection", None) or nn.Identity()  # SigLIP: pooled already

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        embeds = self.projection(self.vision(pixel_values=frames).pooler_output)
        return F.normalize(embeds, dim=-1).view(b, t, -1).mean(1)


class XCLIPEmbedder(nn.Module):
    """X-CLIP's video side: frame embeddings through its multi-frame integration transformer (the video
    embedding, B x D) and the frames' patch features its prompt generator attends to (B x N x D)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.vision, self.projection, self.mit = model.vision_model, model.visual_projection, model.mit
        self.patch_norm, self.patch_projection = model.prompts_visual_layernorm, model.prompts_visual_projection

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, t, h, w = x.shape
        out = self.vision(pixel_values=x.transpose(1, 2).reshape(b * t, c, h, w))
        video = self.mit(self.projection(out[1]).view(b, t, -1))[1]
        patches = self.patch_norm(out[0][:, 1:, :]) @ self.patch_projection
        return video, patches.view(b, t, -1, video.shape[-1]).mean(1)


class XCLIPHead(nn.Module):
    """X-CLIP's scoring: the class text vectors, refined per video by the prompt generator, against the
    video embedding, as cosine similarity times the logit scale."""

    def __init__(self, model: nn.Module, text: torch.Tensor, dropout: float):
        super().__init__()
        self.dropout, self.generator, self.logit_scale = nn.Dropout(dropout), model.prompts_generator, model.logit_scale
        self.text = nn.Parameter(text)  # (K, D) projected, not normalised: the generator takes them so

    def forward(self, features: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        video, patches = features
        text = self.text.unsqueeze(0).expand(video.shape[0], -1, -1)
        text = F.normalize(text + self.generator(text, patches), dim=-1)
        return torch.einsum("bd,bkd->bk", F.normalize(self.dropout(video), dim=-1), self.logit_scale.exp() * text)


class WordsNet(nn.Module):
    """Clips (B, C, T, H, W) -> logits (B, K) of a video-text model: embedder, then the head its words wrote."""

    def __init__(self, embedder: nn.Module, head: nn.Module):
        super().__init__()
        self.embedder, self.head = embedder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedder(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The video embedding (B, D) the head scores: in the text vectors' space."""
        features = self.embedder(x)
        return F.normalize(features[0], dim=-1) if isinstance(features, tuple) else features


def build(spec: BackboneSpec, num_classes: int, dropout: float, pretrained: Union[bool, str],
          class_words_: Optional[list[str]], prompts: Optional[list[str]]) -> WordsNet:
    """The vision tower and a head from the words of each class in `prompts` (the kind's own by default);
    without `pretrained` weights a random model, whose head a vidclf checkpoint then fills."""
    import transformers

    kind = spec.config["config.json"]["model_type"]
    config = transformers.AutoConfig.for_model(**spec.config["config.json"])
    cls = getattr(transformers, KINDS[kind])
    text = None
    if pretrained:
        source = spec.source if pretrained is True else str(pretrained)
        folder = folder_of(source, [*CONFIG_FILES, *WEIGHT_FILES, *TOKENIZER_FILES])
        model = load_checked(cls, config, folder, f"hf:{source}").eval()
        print(f"vidclf: loaded {kind} weights from {folder}")
        words = class_words_ or [str(i) for i in range(num_classes)]
        text = text_vectors(model, kind, folder, words, prompts or PROMPTS[kind], f"hf:{source}")
        model.train()  # as every vidclf network starts: Lightning sets the modes it needs
    else:
        model = cls(config)
    dim = config.projection_dim if kind != "siglip" else config.vision_config.hidden_size
    if kind == "xclip":
        return WordsNet(XCLIPEmbedder(model), XCLIPHead(model, text if text is not None else torch.randn(num_classes, dim),
                                                        dropout))
    linear = nn.Linear(dim, num_classes)
    if text is not None:
        with torch.no_grad():
            linear.weight.copy_(model.logit_scale.exp() * F.normalize(text, dim=-1))
            linear.bias.fill_(float(model.logit_bias) if hasattr(model, "logit_bias") else 0.0)
    return WordsNet(FrameEmbedder(model), nn.Sequential(nn.Dropout(dropout), linear))


@torch.no_grad()
def text_vectors(model: nn.Module, kind: str, folder: Path, words: list[str], prompts: list[str],
                 name: str) -> torch.Tensor:
    """The text tower's projected vectors (K, D) of each class's words, averaged over `prompts`
    (CLIP's prompt ensembling: each template's vectors normalised first when there are several)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError) as err:
        raise VidclfError(f"{name}: no usable tokenizer in {folder} ({type(err).__name__}); the class words "
                          f"need the model's own: save it there with tokenizer.save_pretrained") from None
    per_prompt = []
    for prompt in prompts:
        texts = [prompt.format(word) for word in words]
        # SigLIP was trained on text padded to its full length (its processor's padding="max_length")
        padding = {"padding": "max_length", "max_length": model.config.text_config.max_position_embeddings} \
            if kind == "siglip" else {"padding": True}
        tokens = tokenizer(texts, truncation=True, return_tensors="pt", **padding)
        inputs = {k: v for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        out = model.get_text_features(**inputs)
        per_prompt.append(getattr(out, "pooler_output", out))
    if len(per_prompt) == 1:
        return per_prompt[0]
    return torch.stack([F.normalize(v, dim=-1) for v in per_prompt]).mean(0)


def classifier(net: nn.Module) -> Optional[nn.Module]:
    """The head of a WordsNet (X-CLIP's: text vectors and prompt generator)."""
    return net.head if isinstance(net, WordsNet) else None


def text_model(source: str) -> tuple[nn.Module, str, Path]:
    """The whole pretrained model of hf:<source> with its kind and folder, for encoding queries."""
    import transformers

    from vidclf.models.backbones.hf_files import configs

    files = configs(source)
    kind = files["config.json"].get("model_type")
    if kind not in KINDS:
        raise VidclfError(f"hf:{source} has no text tower; searching by words takes {WORDS_HELP}; use --like VIDEO")
    config = transformers.AutoConfig.for_model(**files["config.json"])
    folder = folder_of(source, [*CONFIG_FILES, *WEIGHT_FILES, *TOKENIZER_FILES])
    return load_checked(getattr(transformers, KINDS[kind]), config, folder, f"hf:{source}").eval(), kind, folder
