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
from torch import nn
from torchmetrics import MeanMetric

from vidclf.data.datasets import VideoClips
from vidclf.errors import VidclfError
from vidclf.models.backbones.hf import PRETRAINED_RATE
from vidclf.models.backbones.spec import IMAGENET_MEAN, IMAGENET_STD
from vidclf.models.normalize import Normalize
from vidclf.models.optim import adamw_groups, warmup_cosine
from vidclf.models.reconstructions import draw_reconstructions, fill_in
from vidclf.models.videomae_presets import videomae_config
from vidclf.ranges import NonNegativeFloat, OpenUnitInterval, PositiveFloat, PositiveInt, store_plain
from vidclf.seeds import derived_seed


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
        # uint8 -> float with ImageNet mean/std (what VideoMAEForPreTraining's loss undoes)
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        # epoch losses as weighted means of every video: exact under DDP, where the processes hold unequal
        # shares (Lightning's sync_dist averages the processes' means)
        self.losses = nn.ModuleDict({"fit": MeanMetric(), "held_out": MeanMetric()})

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
        self.losses["fit"].update(loss.detach(), weight=len(video))
        self.log("train/loss_epoch", self.losses["fit"], on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if "video" not in batch:
            return
        video = batch["video"][:, 0]
        mask = torch.cat([self.tube_mask(torch.Generator().manual_seed(derived_seed(self.seed, int(i))), 1)
                          for i in batch["index"]])  # the same masks every epoch: comparable losses
        loss, _ = self.reconstruct(video, mask)
        self.losses["held_out"].update(loss, weight=len(video))
        self.log("val/loss", self.losses["held_out"], on_epoch=True, prog_bar=True)

    def setup(self, stage: str) -> None:
        self.seed = torch.initial_seed()

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(adamw_groups(self.parameters(), hp.weight_decay), lr=hp.lr, betas=(0.9, 0.95))
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
