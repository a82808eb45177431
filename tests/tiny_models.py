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
