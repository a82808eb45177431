"""The vidclf command: main() runs VidclfCLI (cli/app.py), the Trainer whose methods are its extra subcommands."""

from __future__ import annotations

import os
import sys

import torch
from jsonargparse import set_parsing_settings

from vidclf.chatter import quiet
from vidclf.cli.app import VidclfCLI
from vidclf.cli.loggers import SaveConfig
from vidclf.cli.parser import VidclfParser
from vidclf.cli.trainer import VidclfTrainer
from vidclf.cores import USER_THREADS
from vidclf.data.datamodule import VideoDataModule
from vidclf.errors import VidclfError
from vidclf.io.secrets import redacted_console
from vidclf.models.classifier import VideoClassifier
from vidclf.reports.data_report import DataReport
from vidclf.reports.evaluation import EvalReport
from vidclf.reports.run_info import RunInfo
from vidclf.reports.run_summary import RunSummary
from vidclf.reports.trackers import TrackerFiles


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
    args = sys.argv[1:] if args is None else list(args)
    with redacted_console():  # URLs may carry passwords and signatures: printed without them
        _run(args)
    # After a run with several processes, close the process group while the interpreter is whole:
    # left to exit, Gloo's threads still hold tensors and the process aborts ("terminate called
    # without an active exception", pytorch/pytorch#190489), failing a finished run. Only on
    # success: after an error other processes may still be in a collective, and this would hang.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _run(args) -> None:
    """VidclfCLI on `args` (`search`: its own small parser); a VidclfError is one line and exit status 2."""
    try:
        if args[:1] == ["search"]:  # no model or data to build: ranks an embeddings file
            from vidclf.commands.search import main as search

            return search(args[1:])
        VidclfCLI(VideoClassifier, VideoDataModule, trainer_class=VidclfTrainer, args=args,
                  parser_class=VidclfParser, save_config_callback=SaveConfig,
                  seed_everything_default=42,
                  trainer_defaults={"default_root_dir": "runs", "callbacks": [DataReport(), RunInfo(), EvalReport(),
                                                                                TrackerFiles(), RunSummary()]},
                  parser_kwargs={"parser_mode": "omegaconf+", "prog": "vidclf", "allow_abbrev": False,
                                 "description": "Fine-tune, evaluate, apply and export video classifiers "
                                                 "(and `vidclf search EMBEDDINGS 'words'`: rank embedded videos)."})
    except VidclfError as err:
        if os.environ.get("VIDCLF_DEBUG"):
            raise
        print(f"vidclf: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
