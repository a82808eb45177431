"""VidclfCLI: LightningCLI with vidclf's subcommands, argument links, defaults and run folders."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from pytorch_lightning.callbacks import ModelSummary, ProgressBar
from pytorch_lightning.cli import LightningCLI

from vidclf.cli.checkpointing import SINGLE_LABEL_MONITOR, Checkpoint, last_checkpoint
from vidclf.cli.config_files import check_config_files, shipped_names, with_shipped_configs
from vidclf.cli.console import ModelLine, RunProgress
from vidclf.cli.loggers import run_loggers
from vidclf.cli.parser import keep_ints
from vidclf.cli.restore import restore, run_folder
from vidclf.data.datamodule import VideoDataModule
from vidclf.data.unlabelled import UnlabelledVideos
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.models.backbones import get_spec
from vidclf.models.backbones.words import WORDS_HELP, check_words, is_words_model
from vidclf.models.classifier import VideoClassifier
from vidclf.models.pretraining import MaskedVideoModel
from vidclf.models.videomae_presets import input_crop, input_frames

OUTSIDE_RUNS = ("predict", "embed", "select", "export", "serve", "data")  # subcommands that write no run directory
# Epochs when nothing bounds a run (Lightning's own default is 1000): the zoo recipes' fine-tuning
# schedule, and the pretraining example's.
MAX_EPOCHS = {"fit": 15, "pretrain": 100}


class VidclfCLI(LightningCLI):
    """The vidclf command line: Lightning's subcommands plus export, serve, pretrain and data."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "export": {"model", "datamodule"}, "serve": {"model", "datamodule"},
                "pretrain": {"model", "datamodule"}, "data": {"model", "datamodule"}, "embed": {"model", "datamodule"},
                "select": {"model", "datamodule"}}

    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
        """`pretrain` has its own model (a masked-video autoencoder) and data (unlabelled videos)."""
        pretraining = subcommand == "pretrain"
        self._model_class = MaskedVideoModel if pretraining else VideoClassifier
        self._datamodule_class = UnlabelledVideos if pretraining else VideoDataModule
        self._building = subcommand
        try:
            if subcommand != "data":
                return super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
            # as Lightning's, but its method's options ungrouped: a group named `data` would clash with
            # the data module's
            parser = self.init_parser(**kwargs)
            self._add_arguments(parser)
            self._subcommand_method_arguments[subcommand] = parser.add_method_arguments(
                klass, subcommand, skip=set(self.subcommands()[subcommand]), as_group=False)
            # it looks at videos only: the model (a backbone, maybe weights to download) is never built
            parser.groups["model"].instantiate_class = lambda group, cfg: None
            return parser
        finally:
            self._model_class, self._datamodule_class = VideoClassifier, VideoDataModule

    def parse_arguments(self, parser, args) -> None:
        if isinstance(args, dict):  # from Python: as Lightning parses it
            self.args = []
            return super().parse_arguments(parser, args)
        # --config NAME: a shipped recipe; the arguments are kept, as a resumed run reads them again
        self.args = with_shipped_configs([str(a) for a in (sys.argv[1:] if args is None else args)])
        check_config_files(self._subcommand_parsers, self.args)
        self.config = parser.parse_args(self.args)

    def add_arguments_to_parser(self, parser) -> None:
        keep_ints(parser)
        config = next(a for a in parser._actions if a.dest == "config")
        config.help = (f"A config file (YAML), or the name of one shipped with vidclf: {', '.join(shipped_names())}. "
                       f"Options after it override its values; several compose in order.")
        epochs = next(a for a in parser._actions if a.dest == "trainer.max_epochs")
        epochs.help = (f"Stop after this many epochs. Default: {MAX_EPOCHS['fit']} for fit, {MAX_EPOCHS['pretrain']} "
                       f"for pretrain, unless --trainer.max_steps or --trainer.max_time bounds the run; -1: no limit.")
        parser.add_lightning_class_args(Checkpoint, "checkpoint")
        checkpoints = {"checkpoint.filename": "best", "checkpoint.save_last": True,
                       "checkpoint.auto_insert_metric_name": False}
        if getattr(self, "_building", None) == "pretrain":  # clips match the model's input
            parser.link_arguments(("model.preset", "model.config", "model.frames"), "data.frames", input_frames)
            parser.link_arguments(("model.preset", "model.config", "model.crop"), "data.crop", input_crop)
            parser.set_defaults({**checkpoints, "checkpoint.monitor": "val/loss", "checkpoint.mode": "min",
                                 "trainer.default_root_dir": "runs/pretrain"})
            return
        parser.link_arguments("model.backbone", "data.backbone")  # clips match the backbone
        parser.link_arguments("data.classes", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.multi_label", "model.multi_label", apply_on="instantiate")  # as the data says
        parser.set_defaults({**checkpoints, "checkpoint.monitor": SINGLE_LABEL_MONITOR, "checkpoint.mode": "max"})

    def subcommand_parser(self, subcommand: str):
        """The parser of one subcommand (its defaults are what the user did not give)."""
        return self._subcommand_parsers[subcommand]

    def _parse_ckpt_path(self) -> None:
        """Replaces Lightning's reading of --ckpt_path (a second read of the file, restoring hparams
        vidclf restores itself): see `restore`."""
        restore(self)

    def before_instantiate_classes(self) -> None:
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config
        storage.configure(config.data.get("storage_options"))  # for the model's weights too
        root = config.trainer.get("default_root_dir") or ""
        if storage.is_remote(root):
            raise VidclfError(f"--trainer.default_root_dir {root}: run directories are written to local or shared "
                              f"disk; pass a local folder and copy the run afterwards (predict and export "
                              f"--output may be URLs)")
        if sub != "pretrain":
            words_first(sub, config)
        trainer = config.trainer
        if sub in MAX_EPOCHS and trainer.get("max_epochs") is None and trainer.get("max_steps", -1) == -1 \
                and not trainer.get("max_time"):
            trainer.max_epochs = MAX_EPOCHS[sub]  # config.yaml records it
        if self.subcommand in OUTSIDE_RUNS:
            self.save_config_callback = None  # no run directory for these
        if self.resume_version:
            self.save_config_kwargs["overwrite"] = True  # the resumed run's config replaces its own
            warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty")

    def _instantiate_trainer(self, config: dict, callbacks: list):
        given = config.get("callbacks") or []
        given = given if isinstance(given, list) else [given]
        # vidclf's bar and model line unless turned off; a bar or summary the user chose stays theirs
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in given):
            callbacks = [*callbacks, RunProgress()]
        if config.get("enable_model_summary") is not False and not any(isinstance(c, ModelSummary) for c in given):
            callbacks = [*callbacks, ModelLine()]
        return super()._instantiate_trainer(config, callbacks)

    def instantiate_trainer(self, **kwargs):
        config = self.config[self.subcommand] if self.subcommand else self.config
        given = config.trainer.get("logger")
        if self.subcommand in OUTSIDE_RUNS:
            kwargs["logger"] = False
        elif given is not False:  # the run folder's own logs first (trainer.log_dir is theirs), then the user's
            root = config.trainer.get("default_root_dir") or "runs"
            if self.subcommand in ("validate", "test"):  # RUN/validate/<time>: with the run it evaluates
                run = run_folder(config.get("ckpt_path") or "") or root  # else ROOT/validate/<time>
                kwargs["logger"] = run_loggers(str(Path(run) / self.subcommand), timed=True)
            else:
                kwargs["logger"] = run_loggers(root, self.resume_version, self.resume_step)
            if given not in (None, True):
                added = self._get(self.config_init, "trainer")["logger"]
                kwargs["logger"] += added if isinstance(added, list) else [added]
        trainer = super().instantiate_trainer(**kwargs)
        options = config.get("checkpoint") or {}
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, Checkpoint)), None)
        if checkpoint is not None and checkpoint.save_last and self.subcommand in ("fit", "pretrain"):
            # last.ckpt at every save point (see Checkpoint)
            checkpoint.save_last = False
            trainer.callbacks.append(last_checkpoint(options))
        return trainer


def words_first(sub: str, config) -> None:
    """--model.classes states the classes of a video-text model: the data takes them (read once, from a
    list or a file). A subcommand that applies a model needs trained weights: a checkpoint, an export, or
    a video-text model's pretrained towers with the head its words write."""
    backbone = config.model.backbone
    names = check_words(get_spec(backbone), backbone, config.model.get("classes"), config.model.get("prompt"))
    if names is not None:
        given = config.data.get("classes")
        if given and list(given) != names:
            raise VidclfError(f"--model.classes {names} and --data.classes {list(given)} differ; give the classes once")
        config.data.classes = names
    if sub == "embed" and not config.get("ckpt_path"):
        if not config.model.get("pretrained"):
            raise VidclfError("embed needs weights: pass --ckpt_path RUN, or --model.pretrained true for the "
                              "backbone's published ones")
        if not config.data.get("classes") and config.model.get("num_classes") is None:
            config.model.num_classes = 1  # features only: the head is not used
    applies = sub in ("validate", "test", "predict", "select", "export", "serve")
    if applies and not config.get("ckpt_path") and not config.get("model_file"):
        spec = get_spec(config.model.backbone)
        if not (is_words_model(spec) and config.model.get("pretrained")):
            raise VidclfError(f"{sub} needs a trained model: pass --ckpt_path RUN (a run folder or checkpoint)"
                              + (", or --model_file of an export" if sub in ("predict", "serve") else "")
                              + f"; to classify from words without training, a video-text backbone ({WORDS_HELP}) "
                                f"with --model.pretrained true and --model.classes")
