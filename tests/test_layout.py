"""The house: imports run one way (cli -> commands -> tuning/reports -> models/data/metrics -> io -> base),
no import circle, every module one idea of at most 300 lines opening with a one-line docstring, and the
portable pieces work where the platform lacks what Linux has."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
# a module may import its own layer and the layers below; the package root's modules (errors, ranges,
# cores, seeds, chatter) import nothing of vidclf
LAYERS = {"base": 0, "io": 1, "data": 2, "metrics": 2, "models": 2, "runtimes": 2, "reports": 3, "tuning": 3, "commands": 4,
          "cli": 5}
TOOLS = {"vidclf", "vidclf.synthetic", "vidclf.demo_summary", "vidclf.__main__"}  # entry points, above every layer


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(SRC.rglob("*.py"))}


def layer(module: str) -> int:
    if module in TOOLS:
        return 99
    return LAYERS.get(module.split(".")[1], LAYERS["base"])  # vidclf.<folder>...; base modules are in no folder


def imports(path: Path, top_level_only: bool) -> set[str]:
    """vidclf modules `path` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    known = modules()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidclf"):
            for alias in node.names:  # `from vidclf.io import storage` imports the module vidclf.io.storage
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vidclf")}
    return found


def test_no_import_circles():
    graph = {m: imports(p, top_level_only=True) for m, p in modules().items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target.startswith(f"{module}."):  # a package importing its own submodules is not a circle
                continue
            assert state.get(target) != 1, f"import circle: {' -> '.join(path + [target])}"
            if target in graph and not state.get(target):
                visit(target, path + [target])
        state[module] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [module])


def test_imports_point_down_the_layers():
    upward = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})" for m, p in modules().items()
              for t in imports(p, top_level_only=False) if t in modules() and layer(t) > layer(m)]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("module", list(modules()))
def test_module_is_small_and_says_what_it_holds(module):
    path = modules()[module]
    text = path.read_text()
    assert len(text.splitlines()) <= 300, f"{path}: {len(text.splitlines())} lines; split it by idea"
    doc = ast.get_docstring(ast.parse(text))
    if module != "vidclf.__main__":
        assert doc and doc.splitlines()[0].strip(), f"{path}: open with a one-line docstring"


def test_core_count_without_sched_getaffinity(monkeypatch):
    """macOS and Windows have no os.sched_getaffinity: every CPU is usable there."""
    from vidclf import cores

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert cores.usable_cores() == list(range(os.cpu_count()))
    assert 1 <= cores.core_count() <= os.cpu_count()
    monkeypatch.setenv(cores.USER_THREADS, "0")
    assert 1 <= cores.compute_threads(1) <= os.cpu_count()


def test_scan_store_works_without_fcntl(tmp_path):
    """Windows has no fcntl: the scan store locks through filelock, in a process where fcntl cannot import."""
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "from pathlib import Path\n"
            "from vidclf.data import scan\n"
            f"store = Path({str(tmp_path / 'scan.json')!r})\n"
            "scan._save(store, {'a|1|2': {'error': ''}})\n"
            "scan._save(store, {'b|1|2': {'error': 'no video stream'}})\n"
            "print(sorted(scan._load(store)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['a|1|2', 'b|1|2']"
