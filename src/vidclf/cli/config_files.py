"""Config files: a recipe shipped with vidclf named by --config NAME, and every file checked before parsing
(valid YAML whose every key is an option, else one line naming the file)."""

from __future__ import annotations

from pathlib import Path

import yaml

from vidclf.cli.parser import all_keys, suggest
from vidclf.errors import VidclfError

# flags that take a config file -> the prefix of its keys (`--model FILE.yaml`: that group's options)
CONFIG_FLAGS = {"--config": "", "-c": "", "--model": "model.", "--data": "data.", "--trainer": "trainer."}
# The recipes and fragments installed with the package (the repository's configs/ links here).
SHIPPED = Path(__file__).resolve().parents[1] / "configs"


def shipped_names() -> list[str]:
    """Names --config takes for the shipped configs: recipes by name (x3d_s), others by their path
    under configs/ without .yaml (demo, trainer/gpu)."""
    names = [p.relative_to(SHIPPED).with_suffix("").as_posix() for p in sorted(SHIPPED.rglob("*.yaml"))]
    return [n.removeprefix("recipes/") for n in names]


def with_shipped_configs(args: list[str]) -> list[str]:
    """`args` with each --config/-c value that is not a file but names a shipped config replaced by its path;
    a value that is neither is one error line listing the names."""
    out = list(args)
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if not eq and i and args[i - 1] in ("--config", "-c"):
            flag, value = args[i - 1], arg
        elif not (eq and flag in ("--config", "-c")):
            continue
        if Path(value).exists() or value.startswith(("{", "[")) or "\n" in value:  # a file, or YAML text
            continue
        name = value.removesuffix(".yaml").removeprefix("configs/").removeprefix("recipes/")
        found = next((p for p in (SHIPPED / "recipes" / f"{name}.yaml", SHIPPED / f"{name}.yaml") if p.is_file()), None)
        if found is None:
            raise VidclfError(f"{flag} {value}: no such file, and not a config shipped with vidclf "
                              f"({', '.join(shipped_names())})")
        out[i] = f"{flag}={found}" if eq else str(found)
    return out


def check_config_files(parsers: dict, args: list[str]) -> None:
    """Each config file named after the subcommand is YAML whose keys all exist; so is each subcommand's
    section of a file given before the subcommand (`vidclf --config FILE pretrain`, FILE holding
    `pretrain:` and `fit:` sections); else one line that names the file, every unknown key and the
    key each most likely meant."""
    sub = next((i for i, arg in enumerate(args) if arg in parsers), None)
    if sub is None:
        return
    for flag, value in _flag_values(args[:sub]):
        if flag in ("--config", "-c") and Path(value).is_file():
            tree = _config_tree(value)
            if isinstance(tree, dict) and isinstance(tree.get(args[sub]), dict):
                _check_tree(tree[args[sub]], "", value, parsers, args[sub])
    for flag, value in _flag_values(args[sub + 1:]):
        prefix = CONFIG_FLAGS.get(flag)
        if prefix is not None and Path(value).is_file():
            _check_tree(_config_tree(value), prefix, value, parsers, args[sub])


def _config_tree(path: str):
    tree = _load_yaml(path)
    if tree is not None and not isinstance(tree, dict):
        raise VidclfError(f"{path}: a config file holds option: value lines, found a {type(tree).__name__}")
    return tree


def _check_tree(tree, prefix: str, path: str, parsers: dict, sub: str) -> None:
    if not tree:
        return
    keys = all_keys(parsers[sub])
    bad = list(_unknown(tree, prefix, keys))
    if bad:
        described = [f"{key}" + (f" (did you mean {hint}?)" if (hint := suggest(key, keys)) else "") for key in bad]
        raise VidclfError(f"{path}: unknown option(s) {', '.join(described)}; fix or remove them "
                          f"(vidclf {sub} --help lists every option)")


def _flag_values(args: list[str]):
    for i, arg in enumerate(args):
        if "=" in arg and arg.startswith("-"):
            yield tuple(arg.split("=", 1))
        elif arg.startswith("-") and i + 1 < len(args):
            yield arg, args[i + 1]


def _load_yaml(path: str):
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise VidclfError(f"{path}: not valid YAML{where}: {err.problem}"
                          + (f" ({err.context})" if err.context else "")) from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise VidclfError(f"{path}: cannot read as YAML: {' '.join(str(err).split())}") from None


def _unknown(tree: dict, prefix: str, keys: list[str]):
    """Dotted keys in `tree` that are not options (a mapping under an option is that option's value)."""
    for name, value in tree.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and any(k.startswith(f"{path}.") for k in keys):
            yield from _unknown(value, f"{path}.", keys)
        elif path not in keys:
            yield path
