"""VideoClassifier: a video backbone with a fresh head, one shared step for train/val/test."""

from __future__ import annotations

from typing import Literal, Optional, Union

import pytorch_lightning as pl
import torch

from vidclf.errors import VidclfError
from vidclf.io.checkpoints import read_checkpoint
from vidclf.metrics.multilabel import DEFAULT_THRESHOLD, MIN_POSITIVES
from vidclf.models.backbones import BACKBONES, build_backbone, get_spec, remember_files, short_names_help
from vidclf.models.backbones.words import check_prompts, check_words, class_words
from vidclf.models.features import Features, embedding, embedding_and_logits, head_inputs, head_logits, linear_head
from vidclf.models.finetune import apply_finetune, backbone_parts
from vidclf.models.knn import fill_from_cache, knn_of, use_knn
from vidclf.models.loss import balanced_class_weights, clip_loss, mixup
from vidclf.models.measuring import Measured
from vidclf.models.normalize import Normalize
from vidclf.models.optim import layered_adamw
from vidclf.ranges import ClosedUnitInterval, Depth, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Width, store_plain
from vidclf.seeds import derived_seed


class VideoClassifier(Measured, pl.LightningModule):
    """Classify video clips with a video backbone fine-tuned to your classes.

    Args:
        backbone: Backbone name, one of: {backbones}; or hf:<Hugging Face id or save_pretrained folder>
            of a VideoMAE, TimeSformer, ViViT or V-JEPA 2 checkpoint, or of an X-CLIP, CLIP or SigLIP
            (2) one, whose text tower writes the head from the class names (zero-shot: predicts without
            training), or timm:<timm model name> for an image model run on every frame. Short names: {short}.
            Sets the clip shape the data uses (read from the checkpoint's own config and preprocessor
            files for hf:). small3d and small2plus1d
            are made for training from scratch on a few hundred videos (`--config from_scratch`).
        num_classes: Number of classes. Default: the number of `class_names`.
        class_names: Class names in index order (set from the training data on the command line).
        classes: Video-text backbones: the class names in words, a list or a text file (one per line),
            for predict, validate, test and export without training; with --data.train the same names
            as its classes. A name's _ and - read as spaces (jumping_jacks: "jumping jacks").
        prompt: Video-text backbones: the template(s) each class's words go into ({{}}), several averaged.
            Default: X-CLIP "{{}}", CLIP and SigLIP "a photo of {{}}.".
        multi_label: Several labels per video: a sigmoid per class, binary cross-entropy, mAP (set from
            --data.multi_label on the command line).
        threshold: Multi-label: the probability above which a class is predicted, for every class.
            Default: per class, tuned on the validation set after each validation of `fit` (the F1-best
            point of that class, halfway down to the next lower score; classes with fewer than
            {min_positives} validation positives keep {default_threshold}), saved in the checkpoint.
        pretrained: False (random init), True (the published weights: Kinetics-400 for the zoo, downloaded
            once into the torch hub cache; the hf: checkpoint's own; timm's for timm:) or a local path / URL of
            a weight file in the backbone's published format (hf: a save_pretrained folder).
        width: small3d/small2plus1d: channels of the first block, 8 to 128, doubling per block. Default: 24.
        depth: small3d/small2plus1d: number of blocks, 2 to 6. Default: 4.
        diff: small3d/small2plus1d: the network also sees frame differences (each frame minus the one
            before, stacked with the frames: TSN's RGB-diff), computed inside it, so exports take plain clips.
        temporal: How an image model per frame (timm:) combines its frames: mean (TSN) or conv (a learned
            temporal convolution over the frame features, which sees their order).
        dropout: Dropout before the classifier.
        lr: Peak learning rate of the default AdamW + warmup/cosine schedule (ignored if --optimizer is given),
            or `auto`: found by a learning-rate range test on the training data before fitting (`vidclf fit
            --lr_find_steps`; the rule: where the loss falls fastest, at most a tenth of the lowest-loss
            rate), saved in the run's config.yaml and checkpoints, so a rerun or a resumed run does not search.
        weight_decay: AdamW weight decay.
        warmup_epochs: Epochs of linear learning-rate warmup before the cosine decay.
        label_smoothing: Label smoothing of the loss (multi-label: targets become s/2 and 1 - s/2).
        mixup: Mixup's alpha (0: off): each training video is blended with another of its batch, and so are
            their labels, at a weight drawn from Beta(alpha, alpha); regularises small data sets trained
            from scratch. Training accuracy is then measured on the blended videos.
        class_weights: Weights of the classes in the loss: `balanced` (N / (K * videos of the class),
            from the training labels, for imbalanced data) or one number per class. Default: equal.
            Multi-label: the weight of each class's positives (`balanced`: negatives / positives).
        channels_last: Run the backbone in channels_last_3d memory format (faster on CPU and GPU).
        compile: Train with the backbone compiled by torch.compile. Off by default: on CPU it costs
            about 2 minutes and does not pay back (docs/benchmarks.md); try it for long GPU runs.
        aggregate: How the views (clips x crops) of a video combine into its score: the mean of their
            probabilities (prob) or of their logits (logit). Used by validate, test and predict alike.
        head: linear (a trained layer), or knn: no training, a vote of the k training videos whose features
            are nearest (cosine, weighted by exp(similarity / 0.07)); it needs the feature cache
            (--data.feature_views, --model.finetune freeze) and one epoch of fit, which stores them.
        knn_k: Neighbours that vote, for --model.head knn.
        finetune: full (train everything), freeze (train only the new head; the backbone's weights and
            BatchNorm statistics stay as loaded) or freeze_unfreeze (freeze until `unfreeze_epoch`).
        unfreeze_epoch: Epoch at which freeze_unfreeze starts training the backbone.
        backbone_lr: Backbone learning rate as a fraction of `lr` (the head always gets `lr`).
        layer_decay: Layer-wise learning-rate decay (VideoMAE's fine-tuning recipe: 0.75): block i of L
            (transformer layers, zoo blocks) gets lr * layer_decay ** (L + 1 - i), embeddings the
            lowest, the head `lr`. 1: the same rate everywhere.
        train_bn: With a frozen backbone, still update its BatchNorm statistics.
    """

    __doc__ = __doc__.format(backbones=", ".join(BACKBONES), short=short_names_help(), min_positives=MIN_POSITIVES,
                             default_threshold=DEFAULT_THRESHOLD)

    def __init__(self, backbone: str = "x3d_xs", num_classes: Optional[PositiveInt] = None,
                 class_names: Optional[list[str]] = None, classes: Union[list[str], str, None] = None,
                 prompt: Union[str, list[str], None] = None, multi_label: bool = False,
                 threshold: Optional[ClosedUnitInterval] = None, pretrained: Union[bool, str] = False,
                 width: Optional[Width] = None, depth: Optional[Depth] = None, diff: bool = False,
                 temporal: Literal["mean", "conv"] = "mean",
                 dropout: ClosedUnitInterval = 0.5, lr: Union[PositiveFloat, Literal["auto"]] = 1e-3,
                 weight_decay: NonNegativeFloat = 0.05,
                 warmup_epochs: NonNegativeFloat = 1.0, label_smoothing: ClosedUnitInterval = 0.0,
                 mixup: NonNegativeFloat = 0.0,
                 class_weights: Union[Literal["balanced"], list[NonNegativeFloat], None] = None,
                 channels_last: bool = True, compile: bool = False,
                 aggregate: Literal["prob", "logit"] = "prob", head: Literal["linear", "knn"] = "linear",
                 knn_k: PositiveInt = 20,
                 finetune: Literal["full", "freeze", "freeze_unfreeze"] = "full", unfreeze_epoch: NonNegativeInt = 1,
                 backbone_lr: NonNegativeFloat = 1.0, layer_decay: ClosedUnitInterval = 1.0, train_bn: bool = False):
        super().__init__()
        spec = get_spec(backbone)
        named = check_words(spec, backbone, classes, prompt)
        if named is not None and class_names not in (None, named):
            raise VidclfError(f"--model.classes {named} differ from the data's classes {class_names}; give the same names")
        class_names = class_names or named
        if class_names is None and num_classes is None:
            raise VidclfError("the model needs its classes: pass --data.train, --ckpt_path, or --model.num_classes")
        if class_names is not None and num_classes not in (None, len(class_names)):
            raise VidclfError(f"--model.num_classes {num_classes} disagrees with {len(class_names)} class names")
        if threshold is not None and not multi_label:
            raise VidclfError(f"--model.threshold {threshold}: only multi-label models have class thresholds, and "
                              f"this one gives one class per video; drop the option")
        self.save_hyperparameters(ignore=["classes"])  # class_names holds them (and data.classes has the name)
        store_plain(self)
        self.class_names = list(class_names or (str(i) for i in range(num_classes)))
        self.net = build_backbone(backbone, len(self.class_names), dropout, pretrained, temporal, width, depth, diff,
                                  class_words(self.class_names), check_prompts(prompt))
        if head == "knn":  # in place of the scoring layer; filled from the cached training features
            use_knn(self.net, linear_head(self.net), len(self.class_names), knn_k, multi_label)
        self.backbone_files = spec.config  # hf: the checkpoint's config files, kept in every vidclf checkpoint
        # channels_last_3d is for the zoo's 3D convolutions; transformers and per-frame image models run as built
        self.memory_format = torch.channels_last_3d if channels_last and spec.family in ("zoo", "small") else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.normalize = Normalize(spec.mean, spec.std)  # uint8 (..., C, T, H, W) -> float, as the backbone was trained
        k = len(self.class_names)
        if isinstance(class_weights, list) and len(class_weights) != k:
            raise VidclfError(f"--model.class_weights has {len(class_weights)} numbers for {k} classes; "
                              f"give one per class, in class order, or `balanced`")
        weights = torch.tensor(class_weights, dtype=torch.float) if isinstance(class_weights, list) else None
        self.register_buffer("class_weight", weights, persistent=False)  # `balanced`: set in setup("fit")
        self.build_metrics(k, multi_label, threshold)
        self.predict_outputs = "scores"  # vidclf embed: "features"; vidclf select: "both" (commands.predict.run_with)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) for normalised float clips (B, C, T, H, W)."""
        return self.net(x.contiguous(memory_format=self.memory_format))

    def clip_logits(self, video: torch.Tensor) -> torch.Tensor:
        """Logits (B, N, K) for a uint8 batch of N clips per video (B, N, C, T, H, W)."""
        b, n = video.shape[:2]
        return self(self.normalize(video.flatten(0, 1))).view(b, n, -1)

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities from logits (..., K): softmax, or a sigmoid per class for multi-label."""
        return logits.sigmoid() if self.hparams.multi_label else logits.softmax(-1)

    def video_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """One probability vector per video (B, K) from the logits of its views (B, N, K)."""
        if self.hparams.aggregate == "logit":
            return self.probs(logits.mean(1))
        return self.probs(logits).mean(1)

    def _step(self, batch: dict, stage: str) -> Optional[torch.Tensor]:
        if "video" not in batch and "features" not in batch:  # every video of the batch failed (see DataReport)
            return None
        hp, train, video, y = self.hparams, stage == "train", batch.get("video"), batch["label"]
        partner, lam = None, 1.0
        if train and hp.mixup > 0:
            video, partner, lam = mixup(video, hp.mixup)
        # cached features of a frozen backbone (--data.feature_views): the head alone
        logits = self.cached_logits(batch["features"]) if video is None else self.clip_logits(video)
        b, n = logits.shape[:2]
        clip_y = y.repeat_interleave(n, dim=0)
        loss = clip_loss(logits.flatten(0, 1), clip_y, hp.multi_label, hp.label_smoothing, self.class_weight)
        if partner is not None:
            loss = lam * loss + (1 - lam) * clip_loss(logits.flatten(0, 1), y[partner].repeat_interleave(n, dim=0),
                                                      hp.multi_label, hp.label_smoothing, self.class_weight)
        video_probs = self.video_probs(logits)
        self.measure(stage, loss, logits, video_probs, y, clip_y)
        return loss

    def training_step(self, batch: dict, batch_idx: int):
        if self.hparams.head == "knn":  # nothing to learn: its bank was stored when training started
            return None
        return self._step(batch, "train")

    def on_train_start(self) -> None:
        if self.hparams.head == "knn":
            stored = fill_from_cache(knn_of(self.net), self.trainer.datamodule.datasets["train"], len(self.class_names))
            print(f"vidclf: knn head: {stored} training features stored, {self.hparams.knn_k} neighbours vote; "
                  f"no training (one epoch is enough)")

    def validation_step(self, batch: dict, batch_idx: int):
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int):
        self._step(batch, "test")

    def clip_head_inputs(self, video: torch.Tensor) -> Features:
        """What the head reads (B, N, ...; X-CLIP: a pair) for a uint8 batch of N clips per video."""
        b, n = video.shape[:2]
        x = self.normalize(video.flatten(0, 1)).contiguous(memory_format=self.memory_format)
        inputs = head_inputs(self.net, x)
        return tuple(i.unflatten(0, (b, n)) for i in inputs) if isinstance(inputs, tuple) else inputs.unflatten(0, (b, n))

    def cached_logits(self, inputs: Features) -> torch.Tensor:
        """Logits (B, N, K) of the head alone, from cached head inputs (B, N, ...)."""
        first = inputs[0] if isinstance(inputs, tuple) else inputs
        b, n = first.shape[:2]
        flat = tuple(i.flatten(0, 1) for i in inputs) if isinstance(inputs, tuple) else inputs.flatten(0, 1)
        return head_logits(self.net, flat).view(b, n, -1)

    def clip_embeddings(self, video: torch.Tensor, logits: bool = False):
        """Features before the head (B, N, D) for a uint8 batch of N clips per video (B, N, C, T, H, W);
        with `logits`, also the logits (B, N, K) of the same forward pass."""
        b, n = video.shape[:2]
        x = self.normalize(video.flatten(0, 1)).contiguous(memory_format=self.memory_format)
        if not logits:
            return embedding(self.net, x).view(b, n, -1)
        features, scores = embedding_and_logits(self.net, x)
        return features.view(b, n, -1), scores.view(b, n, -1)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        out = {"index": batch["index"], "failed": batch["failed"], "warnings": batch["warnings"], "probs": None}
        if self.predict_outputs != "scores":  # features per view (timeline: per window), combined by the writer
            out["embeddings"], out["starts"] = None, batch.get("starts")
            if "video" in batch and self.predict_outputs == "both":  # vidclf select: scores of the same pass
                out["embeddings"], logits = self.clip_embeddings(batch["video"], logits=True)
                out["probs"] = self.video_probs(logits)
            elif "video" in batch:
                out["embeddings"] = self.clip_embeddings(batch["video"])
            return out
        if "starts" in batch:  # timeline: one clip per window; the writer combines windows per video
            out["window_logits"], out["starts"] = self.clip_logits(batch["video"]), batch["starts"]
        elif "video" in batch:
            out["probs"] = self.video_probs(self.clip_logits(batch["video"]))
        return out

    def configure_optimizers(self):
        hp = self.hparams
        return layered_adamw(self, backbone_parts(self.net)[0], hp.lr, hp.weight_decay, hp.backbone_lr, hp.layer_decay,
                             hp.warmup_epochs)

    def setup(self, stage: str) -> None:
        self.seed = torch.initial_seed()  # set by --seed_everything
        if stage == "fit" and self.hparams.compile:
            self.net.compile()  # in place: parameter names, checkpoints and exports stay as they are
        if stage == "fit" and self.hparams.class_weights == "balanced":
            self.class_weight = balanced_class_weights(self.trainer.datamodule.datasets["train"].labels,
                                                       len(self.class_names)).to(self.device)
            low, high = self.class_weight.argmin(), self.class_weight.argmax()
            kind = "positive weights" if self.hparams.multi_label else "class weights"
            print(f"vidclf: balanced {kind} from {len(self.trainer.datamodule.datasets['train'])} training videos: "
                  f"{self.class_weight[low]:.2f} ({self.class_names[low]}) to {self.class_weight[high]:.2f} "
                  f"({self.class_names[high]})")
        if (stage == "fit" and self.hparams.multi_label and self.hparams.threshold is None
                and "val" not in self.trainer.datamodule.datasets):
            print(f"vidclf: no validation videos, so the class thresholds stay {DEFAULT_THRESHOLD} (they are tuned "
                  f"on validation scores); pass --data.val or --data.val_split, or set --model.threshold")

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        apply_finetune(self.net, hp.finetune, self.current_epoch, hp.unfreeze_epoch, hp.train_bn)
        # Dropout draws from the global RNG, which DataLoaders also draw from when an epoch starts
        # (at different moments in a resumed run). Seeding per batch makes each step a function of
        # (seed, epoch, batch, process) alone, so a resumed run continues exactly as if never stopped.
        torch.manual_seed(derived_seed(self.seed, self.current_epoch, batch_idx, self.global_rank))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.backbone_files:  # what an hf: backbone is, so the checkpoint alone rebuilds it
            checkpoint[BACKBONE_FILES] = self.backbone_files

    def save_plain(self, path: str) -> None:
        """This model as it is, as a checkpoint any command loads (hyperparameters, weights, backbone
        files): a zero-shot model built from words, for serve's workers."""
        checkpoint = {"hyper_parameters": {k: v for k, v in self.hparams.items() if not k.startswith("_")},
                      "state_dict": self.state_dict(), "pytorch-lightning_version": pl.__version__,
                      "epoch": 0, "global_step": 0}
        self.on_save_checkpoint(checkpoint)
        torch.save(checkpoint, path)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location=None, strict: bool = True, **overrides):
        """Load a trained classifier; its weights come from the checkpoint (read once), so nothing is
        downloaded. `overrides`: options to change (aggregate, threshold)."""
        checkpoint = read_checkpoint(str(checkpoint_path))
        hparams = checkpoint["hyper_parameters"]
        remember_files(hparams["backbone"], checkpoint.get(BACKBONE_FILES))
        options = {k: v for k, v in hparams.items() if not k.startswith("_")}
        model = cls(**{**options, "pretrained": False, **overrides})
        model.load_state_dict(checkpoint["state_dict"], strict=strict)
        return model.to(map_location) if map_location is not None else model


BACKBONE_FILES = "vidclf_backbone_files"
