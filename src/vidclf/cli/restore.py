"""With --ckpt_path, the checkpoint states the model and the clip settings: restore them into the config.

validate/test/predict/export/serve then need no --model options and never download weights; `fit
--ckpt_path last` finds the newest run's last.ckpt and continues that run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from vidclf.errors import VidclfError
from vidclf.io import secrets, storage
from vidclf.io.checkpoints import local_checkpoint, read_checkpoint
from vidclf.models.backbones import remember_files
from vidclf.models.classifier import BACKBONE_FILES

# Clip settings a checkpoint remembers from its training run, restored unless given again.
CLIP_KEYS = ("frames", "rate", "crop", "resize", "train_resize")
LIGHTNING_CKPT_WORDS = ("last", "best", "hpc", "registry")
# Options that change evaluation only: the checkpoint's run used them for its validation, so they are
# restored too (validate reproduces the run's numbers), but a value given with --ckpt_path wins.
EVAL_KEYS = ("aggregate", "threshold")
DATA_EVAL_KEYS = ("num_clips", "num_crops", "allow_empty_labels")


def restore(cli) -> None:
    """Update `cli.config` from the checkpoint of --ckpt_path (read once); set cli.resume_version
    and cli.resume_step for a resumed run."""
    sub = cli.config.get("subcommand")
    path = sub and cli.config[sub].get("ckpt_path")
    cli.resume_version, cli.resume_step = None, 0
    resuming = sub in ("fit", "pretrain")
    if resuming and path == "last":
        path = newest_last_checkpoint(cli.config[sub].trainer.default_root_dir or "runs")
    elif path and path not in LIGHTNING_CKPT_WORDS and Path(path).is_dir():
        # a run folder names its checkpoint: best to evaluate, the newest complete one to resume
        path = resume_checkpoint(path) if resuming else run_checkpoint(path, "best")
    model_file = sub in ("predict", "serve") and cli.config[sub].get("model_file")
    if model_file:
        return _from_model_file(cli, sub, model_file, path)
    if not path or path in LIGHTNING_CKPT_WORDS:
        return
    if resuming and (run := run_folder(path)) is not None:
        given = _given_again(cli.args, sub)
        cli.config = cli.parser.parse_args(_with_run_config(cli.args, sub, run))  # the run's options, then the given
        print(f"vidclf: resuming {run} with its config.yaml" + (f"; given again: {' '.join(given)}" if given else ""),
              file=sys.stderr)
        hidden = [f"--data.{k}" for k, v in cli.config[sub].data.as_dict().items()
                  if "<redacted>" in str(v) or secrets.REDACTED in str(v)]
        if hidden:
            raise VidclfError(f"{run / 'config.yaml'} keeps {', '.join(hidden)} without its secrets; give "
                              f"{'it' if len(hidden) == 1 else 'them'} again to resume")
    if resuming and Path(path).parent.name == "checkpoints" and not storage.is_remote(path) and \
            Path(path).parent.parent.parent.resolve() == Path(cli.config[sub].trainer.default_root_dir or "runs").resolve():
        cli.resume_version = Path(path).parent.parent.name  # continued in place
    cli.config[sub].ckpt_path = path
    storage.configure(cli.config[sub].data.get("storage_options"))
    if storage.is_remote(path) and sub != "export":  # Lightning loads the local copy (export names the URL)
        path = cli.config[sub].ckpt_path = local_checkpoint(path)
    # export and serve load the weights again from it: kept for them (Lightning's loops read it themselves)
    checkpoint = read_checkpoint(path, pretraining=sub == "pretrain", keep=sub in ("export", "serve"))
    cli.resume_step = checkpoint.get("global_step", 0)
    if sub == "pretrain":  # the model as it was: the resumed run continues that training
        model = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
        ignored = [f"--model.{k} {v}" for k, v in cli.config[sub].model.as_dict().items()
                   if k in model and _differs(_value(v), _value(model[k]))]
        if ignored:
            print(f"vidclf: warning: ignored {', '.join(ignored)}: a resumed pretraining continues the model of "
                  f"--ckpt_path {path}; drop those options, or start a new run", file=sys.stderr)
        cli.config = cli.parser.parse_object({sub: {"model": model}}, cli.config)
        return
    defaults = cli.subcommand_parser(sub).get_defaults()
    model = _model_options(checkpoint, cli.config[sub].model, defaults.model, path)
    data = _data_options(checkpoint, cli.config[sub].data, defaults.data)
    cli.config = cli.parser.parse_object({sub: {"model": model, "data": data}}, cli.config)


def _from_model_file(cli, sub: str, model_file: str, path) -> None:
    """The model and clip options an export's sidecar states (views given on the command line win)."""
    from vidclf.runtimes.model_file import RUNTIME, options, read_sidecar

    if path:
        raise VidclfError(f"--model_file {model_file} and --ckpt_path {path} both name the model; pass one")
    info = read_sidecar(model_file)
    runtime = cli.config[sub].get("runtime")
    if runtime not in ("auto", RUNTIME[Path(model_file).suffix]):
        raise VidclfError(f"--model_file {model_file} runs in {RUNTIME[Path(model_file).suffix]}; drop --runtime "
                          f"{runtime} (or pass --ckpt_path to run the checkpoint in it)")
    model, data = options(info)
    defaults = cli.subcommand_parser(sub).get_defaults().data
    data = {k: v for k, v in data.items() if k not in DATA_EVAL_KEYS or cli.config[sub].data.get(k) == defaults.get(k)}
    cli.config = cli.parser.parse_object({sub: {"model": model, "data": data}}, cli.config)


def _value(value):
    """An option's value for comparison: JSON text as what it says (a config given as text or as a mapping)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _differs(given, kept) -> bool:
    """Whether a given option changes the kept one (a mapping given: any of its keys)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        return any(k not in kept or _differs(v, kept[k]) for k, v in given.items())
    return given != kept


def run_folder(checkpoint: str) -> Path | None:
    """RUN of a local checkpoint RUN/checkpoints/NAME.ckpt when RUN has its config.yaml, else None."""
    if storage.is_remote(checkpoint):
        return None
    run = Path(checkpoint).parent.parent
    return run if Path(checkpoint).parent.name == "checkpoints" and (run / "config.yaml").is_file() else None


def _with_run_config(args: list[str], sub: str, run: Path) -> list[str]:
    """The command line with RUN/config.yaml read first after the subcommand, so what is given wins."""
    at = args.index(sub)
    return [*args[:at + 1], "--config", str(run / "config.yaml"), *args[at + 1:]]


def _given_again(args: list[str], sub: str) -> list[str]:
    """The options given on the command line besides --ckpt_path, as typed (secrets redacted)."""
    rest = secrets.redact_argv(args[args.index(sub) + 1:])
    given, skip = [], False
    for i, arg in enumerate(rest):
        if skip:
            skip = False
        elif arg.startswith("--ckpt_path"):
            skip = "=" not in arg
        elif arg.startswith("-"):
            value = rest[i + 1] if "=" not in arg and i + 1 < len(rest) and not rest[i + 1].startswith("--") else None
            given.append(arg if value is None else f"{arg} {value}")
    return given


def _model_options(checkpoint: dict, given, default, path: str) -> dict:
    """The checkpoint's model options; evaluation options given on the command line win, others are
    ignored with a warning that names them."""
    remember_files(checkpoint["hyper_parameters"]["backbone"], checkpoint.get(BACKBONE_FILES))
    model = dict(checkpoint["hyper_parameters"])
    for key in ("_instantiator", "_class_path", "class_names", "multi_label"):
        model.pop(key, None)
    model["pretrained"] = False  # the checkpoint holds the weights
    model.update({k: given[k] for k in EVAL_KEYS if given.get(k) != default.get(k)})
    ignored = [f"--model.{k} {v}" for k, v in given.as_dict().items() if k not in (*EVAL_KEYS, "class_names",
               "multi_label", "pretrained") and v != default.get(k) and v != model.get(k)]
    if ignored:
        print(f"vidclf: warning: ignored {', '.join(ignored)}: the model comes from --ckpt_path {path} "
              f"(backbone {model.get('backbone')}); drop those options, or train a new model", file=sys.stderr)
    return model


def _data_options(checkpoint: dict, current, defaults) -> dict:
    """The clip settings and evaluation views the checkpoint's run used, unless given again."""
    data_hp = checkpoint.get("datamodule_hyper_parameters", {})
    data = {k: data_hp[k] for k in CLIP_KEYS if data_hp.get(k) is not None and current.get(k) is None}
    data.update({k: data_hp[k] for k in DATA_EVAL_KEYS if k in data_hp and current.get(k) == defaults.get(k)})
    if current.get("batch_size") == "auto" and isinstance(data_hp.get("batch_size"), int):
        data["batch_size"] = data_hp["batch_size"]  # found by the run's own search: no second search
    data["classes"] = current.get("classes") or checkpoint["hyper_parameters"].get("class_names")
    data["multi_label"] = checkpoint["hyper_parameters"].get("multi_label", False)
    return data


def run_checkpoint(folder: str, which: str) -> str:
    """FOLDER/checkpoints/WHICH.ckpt of a run folder (or FOLDER/WHICH.ckpt of its checkpoints folder),
    said in one line; else one error naming the files looked for."""
    for candidate in (Path(folder) / "checkpoints" / f"{which}.ckpt", Path(folder) / f"{which}.ckpt"):
        if candidate.is_file():
            print(f"vidclf: --ckpt_path {folder} is a folder: using {candidate}", file=sys.stderr)
            return str(candidate)
    raise VidclfError(f"--ckpt_path {folder}: a folder without {Path(folder) / 'checkpoints' / f'{which}.ckpt'}; "
                      f"pass a run folder (runs/version_N) or a checkpoint file")


def newest_last_checkpoint(root: str) -> str:
    """The newest complete checkpoint of the newest run under `root` that has one."""
    runs = {p.parent.parent for p in Path(root).glob("version_*/checkpoints/*.ckpt") if p.parent.parent.name[8:].isdigit()}
    if not runs:
        raise VidclfError(f"--ckpt_path last: no run under {root} has a checkpoint; "
                          f"start a new run without --ckpt_path, or set --trainer.default_root_dir")
    return resume_checkpoint(str(max(runs, key=lambda p: int(p.name[8:]))))


def resume_checkpoint(run: str) -> str:
    """The checkpoint of RUN (or of its checkpoints folder) that holds the latest training state: last.ckpt,
    or best.ckpt when a run stopped between the two writes of a save point left it newer; said in one line."""
    folder = Path(run) / "checkpoints" if (Path(run) / "checkpoints").is_dir() else Path(run)
    steps = {}
    for candidate in folder.glob("*.ckpt"):
        try:  # only the counters are read (mmap); a file cut short by a kill is passed over
            state = torch.load(candidate, map_location="cpu", weights_only=True, mmap=True)
            steps[candidate] = (state["global_step"], candidate.name == "last.ckpt")
        except Exception:  # noqa: BLE001 - any unreadable file is not a place to resume from
            continue
    if not steps:
        raise VidclfError(f"--ckpt_path {run}: no complete checkpoint in {folder}; start the run again "
                          f"without --ckpt_path")
    chosen = max(steps, key=steps.get)
    print(f"vidclf: --ckpt_path {run}: resuming from {chosen} (step {steps[chosen][0]})", file=sys.stderr)
    return str(chosen)
