"""`vidclf pretrain`: masked-video autoencoding (VideoMAE) on unlabelled videos, no weights downloaded.

The objective is VideoMAE's (Tong et al., 2022): a clip is cut into cubes of tubelet frames x patch x
patch pixels; tube masking hides the same `mask_ratio` of patch positions in every frame (so a
hidden patch cannot be copied from its neighbour in time); the encoder sees only the visible
cubes, a small decoder predicts the pixels of the hidden ones (normalised per cube), and the loss is
the mean squared error. transformers' VideoMAEForPreTraining is the network and computes the loss.

After every epoch the model is written as a save_pretrained folder, RUN/encoder, which
`vidclf fit --model.backbone hf:RUN/encoder --model.pretrained true` fine-tunes like any VideoMAE
checkpoint (the decoder is dropped there), and RUN/reconstructions/epoch_NNN.png shows masked
input, reconstruction and original frames of a few videos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
import pytorch_lightning as pl
import torch

from vidclf.backbones.hf import PRETRAINED_RATE
from vidclf.backbones.spec import IMAGENET_MEAN, IMAGENET_STD
from vidclf.data.dataset import VideoClips, derived_seed
from vidclf.errors import VidclfError
from vidclf.ranges import NonNegativeFloat, OpenUnitInterval, PositiveFloat, PositiveInt, store_plain
from vidclf.schedule import warmup_cosine

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


class MaskedVideoModel(pl.LightningModule):
    """A VideoMAE masked-video autoencoder, pretrained on your own unlabelled videos.

    Args:
        preset: Model size: tiny (ViT-Ti encoder: 192 wide, 12 layers; 16 frames x 112 px), small
            (ViT-S: 384 wide; 16 x 224) or base (ViT-B, VideoMAE's own: 768 wide; 16 x 224); all
            with patch 16, tubelet 2 and a 4-layer decoder half as wide (base: 384).
        config: VideoMAEConfig fields over the preset: a JSON file (e.g. the config.json of a
            save_pretrained folder) or a mapping in the YAML config (patch_size: 8, num_hidden_layers: 6, ...).
        frames: Frames per clip, a multiple of the tubelet size. Default: the preset's (16).
        crop: Clip size in pixels, a multiple of the patch size. Default: the preset's.
        mask_ratio: Fraction of patch positions hidden in every frame (tube masking), in (0, 1);
            VideoMAE uses 0.9.
        lr: Peak learning rate of AdamW (betas 0.9, 0.95), after a linear warmup, with cosine decay.
        weight_decay: AdamW weight decay (not on norms and biases).
        warmup_epochs: Epochs of linear learning-rate warmup.
        figure_videos: Videos shown in RUN/reconstructions/epoch_NNN.png after every epoch (validation
            videos, else training videos; the same clips and masks every epoch).
    """

    def __init__(self, preset: Literal["tiny", "small", "base"] = "tiny", config: Union[str, dict, None] = None,
                 frames: Optional[PositiveInt] = None, crop: Optional[PositiveInt] = None,
                 mask_ratio: OpenUnitInterval = 0.9, lr: PositiveFloat = 1e-3, weight_decay: NonNegativeFloat = 0.05,
                 warmup_epochs: NonNegativeFloat = 1.0, figure_videos: PositiveInt = 3):
        super().__init__()
        import transformers

        if not 0 < mask_ratio < 1:
            raise VidclfError(f"--model.mask_ratio {mask_ratio}: give a fraction between 0 and 1 (VideoMAE: 0.9)")
        fields = videomae_config(preset, config, frames, crop)
        self.save_hyperparameters()
        self.hparams.config = fields  # resolved: a resumed run needs neither the file nor the preset table
        store_plain(self)
        self.net = transformers.VideoMAEForPreTraining(transformers.VideoMAEConfig(**fields))
        c = self.net.config
        self.grid = (c.num_frames // c.tubelet_size, c.image_size // c.patch_size, c.image_size // c.patch_size)
        self.masked = int(mask_ratio * self.grid[1] * self.grid[2])  # per frame, as VideoMAE's TubeMaskingGenerator
        if not 0 < self.masked < self.grid[1] * self.grid[2]:
            raise VidclfError(f"--model.mask_ratio {mask_ratio} hides {self.masked} of the {self.grid[1] * self.grid[2]} "
                              f"patches of a frame; it must hide some and leave some")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1) * 255, persistent=False)

    def normalize(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, T, H, W) -> float with ImageNet mean/std (what VideoMAEForPreTraining's loss undoes)."""
        return (video.float() - self.mean) / self.std

    def tube_mask(self, generator: torch.Generator, count: int) -> torch.Tensor:
        """(count, patches) bool: per video, the same `masked` random positions hidden in every frame."""
        t, h, w = self.grid
        order = torch.stack([torch.randperm(h * w, generator=generator) for _ in range(count)])
        frame = torch.zeros(count, h * w, dtype=torch.bool)
        frame.scatter_(1, order[:, :self.masked], True)
        return frame.repeat(1, t).to(self.device)  # patches run (time, row, column), as the embedding flattens

    def reconstruct(self, video: torch.Tensor, mask: torch.Tensor):
        """(loss, predicted patches of the hidden positions) for a uint8 batch (B, C, T, H, W)."""
        out = self.net(pixel_values=self.normalize(video).transpose(1, 2), bool_masked_pos=mask)
        return out.loss, out.logits

    def training_step(self, batch: dict, batch_idx: int):
        if "video" not in batch:  # every video of the batch failed to decode (reported by DataReport)
            return None
        video = batch["video"][:, 0]
        # masks depend on (seed, epoch, batch, process) only: a resumed run continues exactly
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.current_epoch, batch_idx,
                                                                self.global_rank))
        loss, _ = self.reconstruct(video, self.tube_mask(generator, len(video)))
        self.log("train/loss_step", loss, batch_size=len(video), on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/loss_epoch", loss, batch_size=len(video), on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if "video" not in batch:
            return
        video = batch["video"][:, 0]
        mask = torch.cat([self.tube_mask(torch.Generator().manual_seed(derived_seed(self.seed, int(i))), 1)
                          for i in batch["index"]])  # the same masks every epoch: comparable losses
        loss, _ = self.reconstruct(video, mask)
        self.log("val/loss", loss, batch_size=len(video), on_epoch=True, sync_dist=True, prog_bar=True)

    def setup(self, stage: str) -> None:
        self.seed = torch.initial_seed()

    def configure_optimizers(self):
        hp = self.hparams
        decays = [p for p in self.parameters() if p.ndim > 1]
        rest = [p for p in self.parameters() if p.ndim <= 1]
        optimizer = torch.optim.AdamW([{"params": decays, "weight_decay": hp.weight_decay},
                                       {"params": rest, "weight_decay": 0.0}], lr=hp.lr, betas=(0.9, 0.95))
        return warmup_cosine(self, optimizer, hp.warmup_epochs)

    def on_train_epoch_end(self) -> None:
        """Write RUN/encoder and the epoch's reconstruction figure (first process only)."""
        run = self.trainer.log_dir  # a collective call under DDP: every process asks
        if not self.trainer.is_global_zero or not run:
            return
        self.save_encoder(Path(run) / "encoder")
        self._figure(Path(run) / "reconstructions" / f"epoch_{self.current_epoch:03d}.png")

    def save_encoder(self, folder: Path) -> None:
        """A save_pretrained folder (config.json with the sampling rate, weights, preprocessor_config.json
        with the input size and normalisation) that `hf:` backbones read."""
        import transformers

        clip = self.trainer.datamodule.clip
        transformers.logging.disable_progress_bar()  # "Writing model shards" after every epoch
        setattr(self.net.config, PRETRAINED_RATE, clip.rate)  # fine-tuning samples frames alike
        self.net.save_pretrained(folder)
        crop = self.net.config.image_size
        processor = {"image_processor_type": "VideoMAEImageProcessor", "do_resize": True,
                     "size": {"shortest_edge": clip.resize}, "do_center_crop": True,
                     "crop_size": {"height": crop, "width": crop}, "do_rescale": True, "rescale_factor": 1 / 255,
                     "do_normalize": True, "image_mean": list(IMAGENET_MEAN), "image_std": list(IMAGENET_STD)}
        (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")

    @torch.no_grad()
    def _figure(self, path: Path) -> None:
        datamodule = self.trainer.datamodule
        source = datamodule.datasets.get("val") or datamodule.datasets["train"]
        picks = np.linspace(0, len(source) - 1, min(self.hparams.figure_videos, len(source))).round().astype(int)
        clips = VideoClips([source.paths[i] for i in sorted(set(picks))], None, datamodule.clip)
        items = [item for item in (clips[i] for i in range(len(clips))) if "video" in item]
        if not items:
            return
        video = torch.stack([item["video"][0] for item in items]).to(self.device)
        mask = torch.cat([self.tube_mask(torch.Generator().manual_seed(derived_seed(self.seed, i)), 1)
                          for i in range(len(items))])
        was_training = self.training
        self.eval()
        _, predicted = self.reconstruct(video, mask)
        self.train(was_training)
        original = video.float().transpose(1, 2).cpu() / 255  # (B, T, C, H, W) in [0, 1]
        rebuilt, hidden = fill_in(original, mask.cpu(), predicted.float().cpu(), self.net.config)
        draw_reconstructions(original, rebuilt, hidden, path, self.current_epoch)


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
    from vidclf.reports.files import pyplot, save_figure

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
