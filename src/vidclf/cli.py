"""The vidclf command: LightningCLI with an export subcommand, argument links and defaults."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import torch
from jsonargparse import set_parsing_settings
from lightning_fabric.loggers.csv_logs import _ExperimentWriter
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from vidclf.backbones import remember_files
from vidclf.checkpoint import SINGLE_LABEL_MONITOR, Checkpoint, local_checkpoint, read_checkpoint
from vidclf.data import storage
from vidclf.data.datamodule import VideoDataModule
from vidclf.data.unlabelled import UnlabelledVideos
from vidclf.errors import VidclfError
from vidclf.module import BACKBONE_FILES, VideoClassifier
from vidclf.parsing import VidclfParser, check_config_files, keep_ints
from vidclf.pretrain import MaskedVideoModel, input_crop, input_frames
from vidclf.reports.data_report import DataReport
from vidclf.reports.evaluation import EvalReport
from vidclf.reports.files import read_rows, write_rows
from vidclf.reports.run_info import RunInfo
from vidclf.threads import USER_THREADS
from vidclf.trainer import VidclfTrainer

# Clip settings a checkpoint remembers from its training run, restored unless given again.
CLIP_KEYS = ("frames", "rate", "crop", "resize", "train_resize")
LIGHTNING_CKPT_WORDS = ("last", "best", "hpc", "registry")
OUTSIDE_RUNS = ("predict", "export", "serve", "data")  # subcommands that write no run directory
# Options that change evaluation only: the checkpoint's run used them for its validation, so they are
# restored too (validate reproduces the run's numbers), but a value given with --ckpt_path wins.
EVAL_KEYS = ("aggregate", "threshold")
DATA_EVAL_KEYS = ("num_clips", "num_crops", "allow_empty_labels")


class VidclfCLI(LightningCLI):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "export": {"model", "datamodule"}, "serve": {"model", "datamodule"},
                "pretrain": {"model", "datamodule"}, "data": {"model", "datamodule"}}

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
            return parser
        finally:
            self._model_class, self._datamodule_class = VideoClassifier, VideoDataModule

    def parse_arguments(self, parser, args) -> None:
        check_config_files(self._subcommand_parsers, sys.argv[1:] if args is None else args)
        super().parse_arguments(parser, args)

    def add_arguments_to_parser(self, parser) -> None:
        keep_ints(parser)
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

    def _parse_ckpt_path(self) -> None:
        """With --ckpt_path, the checkpoint states the model (backbone, classes) and the clip settings,
        so validate/test/predict/export need no --model options and never download weights."""
        sub = self.config.get("subcommand")
        path = sub and self.config[sub].get("ckpt_path")
        self.resume_version, self.resume_step = None, 0
        if sub in ("fit", "pretrain") and path == "last":
            path = self._newest_last_checkpoint(self.config[sub].trainer.default_root_dir or "runs")
            self.config[sub].ckpt_path = path
            self.resume_version = Path(path).parent.parent.name
        if not path or path in LIGHTNING_CKPT_WORDS:
            return
        storage.configure(self.config[sub].data.get("storage_options"))
        if storage.is_remote(path) and sub != "export":  # Lightning loads the local copy (export names the URL)
            path = self.config[sub].ckpt_path = local_checkpoint(path)
        checkpoint = read_checkpoint(path, pretraining=sub == "pretrain")
        self.resume_step = checkpoint.get("global_step", 0)
        if sub == "pretrain":  # the model as it was: the resumed run continues that training
            model = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
            self.config = self.parser.parse_object({sub: {"model": model}}, self.config)
            return
        remember_files(checkpoint["hyper_parameters"]["backbone"], checkpoint.get(BACKBONE_FILES))
        model = dict(checkpoint["hyper_parameters"])
        for key in ("_instantiator", "_class_path", "class_names", "multi_label"):
            model.pop(key, None)
        model["pretrained"] = False  # the checkpoint holds the weights
        given, default = self.config[sub].model, self._subcommand_parsers[sub].get_defaults().model
        model.update({k: given[k] for k in EVAL_KEYS if given.get(k) != default.get(k)})
        ignored = [f"--model.{k} {v}" for k, v in given.as_dict().items() if k not in (*EVAL_KEYS, "class_names",
                   "multi_label", "pretrained") and v != default.get(k) and v != model.get(k)]
        if ignored:
            print(f"vidclf: warning: ignored {', '.join(ignored)}: the model comes from --ckpt_path {path} "
                  f"(backbone {model.get('backbone')}); drop those options, or train a new model", file=sys.stderr)
        data_hp, current = checkpoint.get("datamodule_hyper_parameters", {}), self.config[sub].data
        data = {k: data_hp[k] for k in CLIP_KEYS if data_hp.get(k) is not None and current.get(k) is None}
        defaults = self._subcommand_parsers[sub].get_defaults().data
        data.update({k: data_hp[k] for k in DATA_EVAL_KEYS if k in data_hp and current.get(k) == defaults.get(k)})
        if current.get("batch_size") == "auto" and isinstance(data_hp.get("batch_size"), int):
            data["batch_size"] = data_hp["batch_size"]  # found by the run's own search: no second search
        data["classes"] = current.get("classes") or checkpoint["hyper_parameters"].get("class_names")
        data["multi_label"] = checkpoint["hyper_parameters"].get("multi_label", False)
        self.config = self.parser.parse_object({sub: {"model": model, "data": data}}, self.config)

    @staticmethod
    def _newest_last_checkpoint(root: str) -> str:
        """RUN/checkpoints/last.ckpt of the newest run under `root` that has one."""
        runs = [p for p in Path(root).glob("version_*/checkpoints/last.ckpt") if p.parent.parent.name[8:].isdigit()]
        if not runs:
            raise VidclfError(f"--ckpt_path last: no run under {root} has checkpoints/last.ckpt; "
                              f"start a new run without --ckpt_path, or set --trainer.default_root_dir")
        return str(max(runs, key=lambda p: int(p.parent.parent.name[8:])))

    def before_instantiate_classes(self) -> None:
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config
        storage.configure(config.data.get("storage_options"))  # for the model's weights too
        root = config.trainer.get("default_root_dir") or ""
        if storage.is_remote(root):
            raise VidclfError(f"--trainer.default_root_dir {root}: run directories are written to local or shared "
                              f"disk; pass a local folder and copy the run afterwards (predict and export "
                              f"--output may be URLs)")
        if self.subcommand in OUTSIDE_RUNS:
            self.save_config_callback = None  # no run directory for these
        if self.resume_version:
            self.save_config_kwargs["overwrite"] = True  # the resumed run's config replaces its own

    def instantiate_trainer(self, **kwargs):
        trainer = self._get(self.config_init, "trainer")
        if self.subcommand in OUTSIDE_RUNS:
            kwargs["logger"] = False
        elif trainer.get("logger") in (None, True):
            kwargs["logger"] = run_loggers(trainer.get("default_root_dir") or "runs", self.resume_version,
                                           self.resume_step)
        return super().instantiate_trainer(**kwargs)


RUN_VERSION = "VIDCLF_RUN_VERSION"


class SaveConfig(SaveConfigCallback):
    """Lightning's RUN/config.yaml, with the secrets of --data.storage_options as "<redacted>"."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        config = self.config
        if config.get("data.storage_options"):
            self.config = config.clone()
            self.config["data.storage_options"] = storage.redact(config["data.storage_options"])
        try:
            super().setup(trainer, pl_module, stage)
        finally:
            self.config = config


class ResumedCSVLogger(CSVLogger):
    """The CSV logger of a resumed run: the rows its metrics.csv had before the checkpoint stay
    (Lightning's writer deletes the file), rows from after it go (the resumed run logs them again)."""

    def __init__(self, *args, before_step: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_step = before_step

    @property
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = Path(self.log_dir) / "metrics.csv"
        rows = read_rows(path) if path.is_file() else []
        experiment = CSVLogger.experiment.fget(self)  # deletes metrics.csv (on the first process)
        kept = [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) < self.before_step]
        if kept and isinstance(experiment, _ExperimentWriter):  # the first process's writer
            experiment.metrics_keys = sorted({k for r in kept for k in r})  # Lightning's header order
            write_rows(str(path), [{k: r.get(k, "") for k in experiment.metrics_keys} for r in kept])
        return experiment


def run_loggers(root: str, version: str | None = None, resume_step: int = 0) -> list:
    """CSV and TensorBoard logs in one run directory ROOT/version_N (checkpoints go beside them);
    a new N unless `version` names the run being resumed (from its checkpoint at `resume_step`)."""
    if int(os.environ.get("LOCAL_RANK", "0")) > 0 and RUN_VERSION in os.environ:
        version = os.environ[RUN_VERSION]  # a DDP worker process logs into the run its launcher chose
    if version is None:
        taken = [int(p.name[8:]) for p in Path(root).glob("version_*") if p.name[8:].isdigit()]
        version = f"version_{max(taken, default=-1) + 1}"
    os.environ[RUN_VERSION] = version  # inherited by the processes DDP launches
    csv_logger = (ResumedCSVLogger(root, name="", version=version, before_step=resume_step)
                  if resume_step and Path(root, version, "metrics.csv").is_file()
                  else CSVLogger(root, name="", version=version))
    return [csv_logger,
            TensorBoardLogger(root, name="", version=version, default_hp_metric=False)]


def quiet() -> None:
    """Hide third-party chatter that says nothing about the user's run."""
    for message in (".*torch.jit.script. is deprecated", ".*dirpath has changed from", ".*treespec, LeafSpec",
                    ".*does not have many workers", ".*smaller than the logging interval",
                    ".*Experiment logs directory .* exists and is not empty",
                    ".*Grad strides do not match bucket view strides",  # DDP: 1x1x1 conv grads, channels_last
                    ".*both batch and unbatch methods implemented",  # serve with --max_batch_size 1
                    ".*weights_only. was not set, defaulting"):  # the learning-rate search restoring its start
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage())


def main(args=None) -> None:
    """Run the vidclf command line (args: a list like sys.argv[1:], default sys.argv)."""
    # ${data.crop} in a config file means the key of this command (it resolves under `fit.` etc.)
    set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    # the thread count is chosen from cores and workers unless the user set OMP_NUM_THREADS (processes
    # that DDP launches inherit this, and Lightning's own OMP_NUM_THREADS for them is not the user's)
    os.environ.setdefault(USER_THREADS, "1" if "OMP_NUM_THREADS" in os.environ else "0")
    quiet()
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed escaped, never fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        VidclfCLI(VideoClassifier, VideoDataModule, trainer_class=VidclfTrainer, args=args,
                  parser_class=VidclfParser, save_config_callback=SaveConfig,
                  seed_everything_default=42,
                  trainer_defaults={"default_root_dir": "runs", "callbacks": [DataReport(), RunInfo(), EvalReport()]},
                  parser_kwargs={"parser_mode": "omegaconf+", "prog": "vidclf", "allow_abbrev": False,
                                 "description": "Fine-tune, evaluate, apply and export video classifiers."})
    except VidclfError as err:
        if os.environ.get("VIDCLF_DEBUG"):
            raise
        print(f"vidclf: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    # After a run with several processes, close the process group while the interpreter is whole:
    # left to exit, Gloo's threads still hold tensors and the process aborts ("terminate called
    # without an active exception", pytorch/pytorch#190489), failing a finished run. Only on
    # success: after an error other processes may still be in a collective, and this would hang.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
