"""Command-line mistakes as one line before any work, naming the option and the one most likely meant."""

from __future__ import annotations

import difflib
import os
import re
import sys
import typing
from collections import defaultdict
from typing import Optional

from pytorch_lightning.cli import LightningArgumentParser

# Names other tools (Hugging Face TrainingArguments, MMAction2, PySlowFast, timm) use for vidclf's options.
ALIASES = {
    "learning_rate": "lr", "base_lr": "lr", "lr_rate": "lr", "init_lr": "lr",
    "epochs": "max_epochs", "num_epochs": "max_epochs", "num_train_epochs": "max_epochs",
    "total_epochs": "max_epochs", "max_epoch": "max_epochs",
    "batch": "batch_size", "bs": "batch_size", "per_device_train_batch_size": "batch_size",
    "videos_per_gpu": "batch_size", "workers": "num_workers", "workers_per_gpu": "num_workers",
    "model": "backbone", "model_name": "backbone", "arch": "backbone", "architecture": "backbone",
    "num_frames": "frames", "clip_len": "frames", "frame_interval": "rate", "sampling_rate": "rate",
    "crop_size": "crop", "image_size": "crop", "gpus": "devices", "num_gpus": "devices",
    "wd": "weight_decay", "warmup": "warmup_epochs",
}


# --help lists the options a user sets most first: the model, the data, the subcommand's own, then the rest.
HELP_ORDER = {"model": 1, "data": 2, "checkpoint": 4, "trainer": 5}
SUBCOMMAND_RANK, OTHER_RANK = 3, 6


class VidclfParser(LightningArgumentParser):
    """Parse errors as one line that names the key and, for a misspelling, the most likely valid one;
    --help with the user's options first."""

    def format_help(self) -> str:
        if "model" not in getattr(self, "groups", {}):  # the top level: subcommands only
            return super().format_help()
        groups, usage = self._action_groups, self.usage
        self._action_groups = sorted(groups, key=_help_rank)
        self.usage = ("%(prog)s [-h] [-c CONFIG] [--print_config] [--model.* V] [--data.* V] [--ckpt_path V] "
                      "[--trainer.* V] [--checkpoint.* V] ... (each option below)")
        try:
            return super().format_help()
        finally:
            self._action_groups, self.usage = groups, usage

    def error(self, message: str, ex: Exception | None = None):
        if os.environ.get("VIDCLF_DEBUG"):
            super().error(message, ex)
        text = _short_type_error(" ".join(message.split()))
        found = re.findall(r"(?:does not accept option|Key) '?\"?([\w.]+)|unrecognized arguments: --([\w.]+)", text)
        unknown = [a or b for a, b in found]
        if found and "does not accept option" in text:  # "Group 'model' does not accept option 'x'"
            group = re.search(r"Group '([\w.]+)'", text)
            unknown = [f"{group[1]}.{key}" if group else key for key in unknown]
        hints = [f"did you mean --{match}?" for key in unknown if (match := suggest(key, all_keys(self)))]
        sub = [word for word in self.prog.split()[1:] if not word.startswith("[")]  # "vidclf [options] fit"
        print(f"vidclf: error: {text}" + (f"; {' '.join(hints)}" if hints else
                                           f"; see vidclf {' '.join(sub + ['--help'])}"), file=sys.stderr)
        raise SystemExit(2)


def _help_rank(group) -> int:
    """Where an option group goes in --help (see HELP_ORDER)."""
    dests = [a.dest for a in group._group_actions]
    if not dests or "help" in dests:  # -h, --config, --print_config, --seed_everything
        return 0
    top = dests[0].split(".")[0]
    if top in HELP_ORDER:
        return HELP_ORDER[top]
    return SUBCOMMAND_RANK if "." not in dests[0] and top not in ("optimizer", "lr_scheduler") else OTHER_RANK


def all_keys(parser) -> list[str]:
    """Every option key of `parser` and of its subcommands' parsers (dotted, without dashes)."""
    keys = []
    for action in parser._actions:
        keys.append(action.dest)
        for sub in (getattr(action, "choices", None) or {}).values():
            if isinstance(sub, LightningArgumentParser):
                keys += all_keys(sub)
    return keys


def suggest(key: str, keys: list[str]) -> Optional[str]:
    """The valid key a mistyped `key` most likely meant: by the last component (its usual name in
    other tools, else the closest spelling), preferring the same group; else the closest whole key."""
    group, _, last = key.lower().rpartition(".")
    by_last = defaultdict(list)
    for k in keys:
        by_last[k.rpartition(".")[2]].append(k)
    names = [ALIASES[last]] if ALIASES.get(last) in by_last else \
        difflib.get_close_matches(last, list(by_last), n=3, cutoff=0.6)
    for name in names:
        same = [k for k in by_last[name] if k.rpartition(".")[0] == group]
        return (same or by_last[name])[0]
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return close[0] if close else None


def _short_type_error(text: str) -> str:
    """jsonargparse's type errors in one short line, e.g. '--data.frames must be > 0 (PositiveInt), got 0'."""
    key, given = re.search(r'Parser key "([\w.]+)"', text), re.search(r"(?:Given|Got) value: (.*)$", text)
    rule = re.search(r"Not of type (\w+): ?(.*?) ?does not conform to restriction (v\S+(?: and v\S+)?)", text)
    if key and rule:
        limits = re.sub(r"v([<>=]+)(\S+)", r"\1 \2", rule[3])
        return f"--{key[1]} must be {limits} ({rule[1]}), got {rule[2] or (given[1] if given else '?')}"
    number = re.search(r"Not of type (\w+): (?:could not convert string to (\w+)|invalid literal for (\w+)\(\)"
                       r" with base 10): (.*)$", text)
    if key and number:
        return f"--{key[1]} expects {'a whole number' if number[3] else 'a number'} ({number[1]}), got {number[4]}"
    expected = [t for t in re.findall(r"Expected a <class '(\w+)'>", text) if t != "NoneType"]
    if key and given and expected:
        return f"--{key[1]} expects {' or '.join(expected)}, got {given[1]!r}"
    return text


def keep_ints(parser) -> None:
    """Options typed Union[int, float] (the Trainer's limit_*_batches, val_check_interval, ...) read
    `1` as the int 1 (one batch), not 1.0 (all batches). typing caches unions regardless of order, so
    once another library has made Union[float, int], Union[int, float] is that object and
    jsonargparse tries float first; `int | float` keeps its order."""
    for action in parser._actions:
        members = typing.get_args(getattr(action, "_typehint", None))
        if int in members and float in members:
            rest = [m for m in members if m not in (int, float)]
            hint = int | float
            for member in rest:
                hint = hint | member
            action._typehint = hint
