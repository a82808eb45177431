"""VideoMAE pretraining presets (ViT-Ti/S/B with their decoders) and the config a preset, a file and options give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from vidclf.errors import VidclfError

# VideoMAE's encoders (ViT-Ti/S/B) with its 4-layer decoders; patch 16, tubelet 2, 16 frames.
PRESETS = {
    "tiny": {"hidden_size": 192, "num_hidden_layers": 12, "num_attention_heads": 3, "intermediate_size": 768,
             "decoder_hidden_size": 96, "decoder_num_hidden_layers": 4, "decoder_num_attention_heads": 3,
             "decoder_intermediate_size": 384, "image_size": 112},
    "small": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536,
              "decoder_hidden_size": 192, "decoder_num_hidden_layers": 4, "decoder_num_attention_heads": 3,
              "decoder_intermediate_size": 768, "image_size": 224},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
             "decoder_hidden_size": 384, "decoder_num_hidden_layers": 4, "decoder_num_attention_heads": 6,
             "decoder_intermediate_size": 1536, "image_size": 224},
}


COMMON = {"patch_size": 16, "tubelet_size": 2, "num_frames": 16, "num_channels": 3, "norm_pix_loss": True,
          "use_mean_pooling": True}


def videomae_config(preset: str, config: Union[str, dict, None], frames: Optional[int], crop: Optional[int]) -> dict:
    """VideoMAEConfig fields: the preset, then `config` (a JSON file or a mapping), then frames/crop."""
    if preset not in PRESETS:
        raise VidclfError(f"--model.preset {preset}: no such preset; choose one of {', '.join(PRESETS)}")
    fields = {**COMMON, **PRESETS[preset]}
    if isinstance(config, str):
        try:
            config = json.loads(Path(config).read_text())
        except OSError as err:
            raise VidclfError(f"--model.config {config}: cannot read it ({err.strerror}); pass a JSON file of "
                              f"VideoMAEConfig fields (e.g. a save_pretrained folder's config.json)") from None
        except ValueError as err:
            raise VidclfError(f"--model.config {config}: not valid JSON ({err})") from None
    if config is not None and not isinstance(config, dict):
        raise VidclfError(f"--model.config: give VideoMAEConfig fields as a mapping, not a {type(config).__name__}")
    fields.update({k: v for k, v in (config or {}).items() if not k.startswith(("_", "architectures"))})
    fields.update({k: v for k, v in (("num_frames", frames), ("image_size", crop)) if v})
    t, size, tubelet, patch = fields["num_frames"], fields["image_size"], fields["tubelet_size"], fields["patch_size"]
    if t % tubelet or size % patch:
        raise VidclfError(f"a clip of {t} frames at {size}x{size} does not cut into cubes of {tubelet} frames x "
                          f"{patch}x{patch} pixels; choose --model.frames a multiple of {tubelet} and --model.crop "
                          f"a multiple of {patch}")
    return fields


def input_frames(preset: str, config, frames: Optional[int]) -> int:
    """The clip length a preset/config gives (linked to --data.frames)."""
    return int(videomae_config(preset, config, frames, None)["num_frames"])


def input_crop(preset: str, config, crop: Optional[int]) -> int:
    """The clip size a preset/config gives (linked to --data.crop)."""
    return int(videomae_config(preset, config, None, crop)["image_size"])
