"""Tiny models of the real Hugging Face and timm architectures, written as their libraries write
them (save_pretrained folders, weight files), for tests that must never download."""

from __future__ import annotations

from pathlib import Path

import torch

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def tiny_hf(kind: str, folder: Path, pretraining: bool = False) -> Path:
    """A tiny checkpoint of architecture `kind` written by save_pretrained, with the preprocessor file
    its published checkpoints carry (values that differ from the processor classes' defaults)."""
    import transformers as tf

    if kind == "videomae":
        config = tf.VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, **SMALL)
        model = (tf.VideoMAEForPreTraining if pretraining else tf.VideoMAEForVideoClassification)(config)
        processor = tf.VideoMAEImageProcessor(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
                                              size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    elif kind == "timesformer":
        config = tf.TimesformerConfig(image_size=32, patch_size=8, num_frames=4, **SMALL)
        model = tf.TimesformerForVideoClassification(config)
        processor = tf.VideoMAEImageProcessor(image_mean=[0.45] * 3, image_std=[0.225] * 3,
                                              size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    elif kind == "vivit":
        config = tf.VivitConfig(image_size=32, num_frames=4, tubelet_size=[2, 8, 8], **SMALL)
        model = tf.VivitForVideoClassification(config)
        processor = tf.VivitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    else:
        config = tf.VJEPA2Config(crop_size=32, frames_per_clip=4, patch_size=8, hidden_size=32, num_attention_heads=2,
                                 num_hidden_layers=2, mlp_ratio=1.0, pred_hidden_size=32, pred_num_attention_heads=2,
                                 pred_num_hidden_layers=2)
        model = (tf.VJEPA2Model if pretraining else tf.VJEPA2ForVideoClassification)(config)
        processor = tf.VJEPA2VideoProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_timm_weights(name: str, path: Path) -> Path:
    """A weight file of timm model `name` as timm publishes it (the full model's state dict)."""
    import timm

    torch.save(timm.create_model(name, pretrained=False).state_dict(), path)
    return path


def tiny_tokenizer(folder: Path, eos_id: int = 4) -> int:
    """A character-level tokenizer (tokenizers' WordLevel over single characters), saved as transformers
    saves one; returns its vocabulary size. Ids: <pad> 0, <unk> 1, <mask> 2, <s> 3, </s> `eos_id`."""
    import string

    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<unk>", "<mask>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(special)}
    for char in string.ascii_lowercase + string.digits + " .,'-_":
        vocab[char] = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 3), ("</s>", eos_id)])
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>", model_max_length=32).save_pretrained(folder)
    return len(vocab)


def tiny_words(kind: str, folder: Path) -> Path:
    """A tiny X-CLIP, CLIP or SigLIP checkpoint with its tokenizer and image processor, as save_pretrained
    writes them (the processor's values are not the defaults, so a test sees they are read)."""
    import transformers as tf

    torch.manual_seed(0)
    vocab = tiny_tokenizer(folder)
    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=32, eos_token_id=4, bos_token_id=3, pad_token_id=0)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8)
    if kind == "xclip":
        config = tf.XCLIPConfig(text_config=text, vision_config={**vision, "num_frames": 4, "mit_hidden_size": 16,
                                                                 "mit_intermediate_size": 37, "mit_num_attention_heads": 4},
                                projection_dim=16, prompt_layers=1, prompt_attention_heads=4)
        model = tf.XCLIPModel(config)
        processor = tf.VideoMAEImageProcessor(image_mean=[0.48, 0.46, 0.41], image_std=[0.27, 0.26, 0.28],
                                              size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    elif kind == "clip":
        model = tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
        processor = tf.CLIPImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    else:
        model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=vision))
        processor = tf.SiglipImageProcessor(size={"height": 32, "width": 32})
    with torch.no_grad():  # a logit scale and bias unlike their initial values, so a test sees they are used
        model.logit_scale.fill_(2.0)
        if hasattr(model, "logit_bias"):
            model.logit_bias.fill_(-1.5)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
