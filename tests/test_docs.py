"""The docs site: every vidclf command shown in a docs page or the README parses (`--print_config`),
every option of every subcommand is in the generated CLI reference, and the README stays short."""

from __future__ import annotations

import importlib.util
import inspect
import re
import shlex
from pathlib import Path

import pytest

from conftest import vidclf

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# options set from other options by the CLI's links (cli/app.py), so not in --help
LINKED = {sub: {"--model.class_names", "--model.multi_label", "--data.backbone"} for sub in
          ("fit", "validate", "test", "predict", "embed", "select", "export", "serve", "data")} | \
    {"pretrain": {"--data.frames", "--data.crop"}}
SUBCOMMANDS = ("fit", "validate", "test", "predict", "embed", "select", "export", "serve", "pretrain", "data")


def shown_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every `vidclf SUBCOMMAND ...` line in the pages' bash blocks (continuations
    joined, comments and `...` placeholders dropped)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                words = [w for w in words if w not in ("...", "[...]")]
                start = next((i for i, w in enumerate(words) if w.endswith("vidclf")), None)
                if start is not None and len(words) > start + 1 and words[start + 1] in SUBCOMMANDS:
                    found.append((f"{page.relative_to(REPO)}: {line.strip()}", words[start + 1:]))
    return found


COMMANDS = shown_commands()


def test_the_docs_show_commands_of_every_kind():
    assert {argv[0] for _, argv in COMMANDS} >= {"fit", "validate", "test", "predict", "embed", "export", "serve",
                                                  "data", "pretrain"}


@pytest.mark.parametrize("argv", [argv for _, argv in COMMANDS], ids=[where for where, _ in COMMANDS])
def test_every_command_in_the_docs_parses(argv, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # commands name configs/ relative to the repository
    assert vidclf(*argv, "--print_config") == 0, capsys.readouterr().err


def test_cli_reference_has_every_option_of_every_subcommand():
    """Every constructor argument of the model and data classes (the config schema) is in the built
    reference of every subcommand that takes it."""
    from vidclf.data.datamodule import VideoDataModule
    from vidclf.data.unlabelled import UnlabelledVideos
    from vidclf.models.classifier import VideoClassifier
    from vidclf.models.pretraining import MaskedVideoModel

    spec = importlib.util.spec_from_file_location("cli_reference", REPO / "docs/hooks/cli_reference.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = hook.on_page_markdown((REPO / "docs/reference/cli.md").read_text(), None, None, None)
    for sub in SUBCOMMANDS:
        section = page.split(f"## vidclf {sub}\n", 1)[1].split("\n## vidclf ", 1)[0]
        model, data = (MaskedVideoModel, UnlabelledVideos) if sub == "pretrain" else (VideoClassifier, VideoDataModule)
        options = [f"--{group}.{name}" for group, cls in (("model", model), ("data", data))
                   for name in inspect.signature(cls.__init__).parameters if name != "self"]
        assert len(options) > 15 and not [o for o in options if o not in section and o not in LINKED[sub]], sub


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "make demo" in text.split("```")[1] and "make test" in text.split("```")[1]
