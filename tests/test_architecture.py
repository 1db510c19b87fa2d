"""The package's layers, checked from its source: no import cycles, no import from a lower layer to a higher
one, imports of the package at module top (``cli`` excepted), and lazy third-party imports only for the heavy
optional runtimes. docs/architecture.md draws the same layers.

The checker reads the source with ``ast`` (nothing is imported), so it sees imports hidden inside functions
too, and it is tested on planted cycles and upward imports so a passing run means something.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import REPO

PACKAGE = "runlocalai_bench"
# Lowest first. A component may import components of lower layers only (and itself).
LAYERS: list[tuple[str, ...]] = [
    ("paths", "units", "errors"),
    ("environment", "devices"),
    ("data", "models"),
    ("serving",),
    ("rerankers",),
    ("params",),
    ("results",),
    ("retrieval", "quality", "perf"),
    ("reporting",),
    ("run",),
    ("cli",),
]
# Third-party modules a function may import lazily: heavy or optional runtimes (see architecture.md).
LAZY_THIRD_PARTY = {
    "torch", "transformers", "sentence_transformers", "optimum", "onnx", "onnxruntime", "openvino", "nncf",
    "torchao", "llama_cpp", "gguf", "pynvml", "huggingface_hub", "ir_datasets", "faiss", "sentencepiece",
    "papermill",  # only the notebook engine needs Jupyter: the subprocess engine runs where it is not installed
    "ipykernel",  # only a kernel process imports the kernel
    "ray",  # the optional Ray engine (the `ray` extra)
    "tokenizers",  # transformers' tokenizer library: only building an LLM-reranker twin's tokenizer trains one
}
LAZY_PACKAGE_IMPORTS_ALLOWED = {f"{PACKAGE}.cli"}  # subcommands import what they need, to keep --help instant


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of the package
    line: int
    in_function: bool


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules_of(root: Path) -> dict[str, Path]:
    return {module_name(root, p): p for p in sorted(root.rglob("*.py"))}


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def imports_of(root: Path) -> tuple[list[Import], list[tuple[str, str, int]]]:
    """(package imports, lazy third-party imports as (importer, top-level module, line))."""
    package = root.name
    modules = modules_of(root)
    found, lazy_third_party = [], []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        in_function = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function.update(id(n) for n in ast.walk(node) if n is not node)
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (_resolve_relative(name, path.name == "__init__.py", node.level, node.module)
                        if node.level else node.module or "")
                # `from a.b import c` imports a.b.c when c is a module, else a name from a.b.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            nested = id(node) in in_function
            for target in targets:
                if target == package or target.startswith(package + "."):
                    found.append(Import(name, target, node.lineno, nested))
                elif nested and target.split(".")[0] not in {"__future__"}:
                    lazy_third_party.append((name, target.split(".")[0], node.lineno))
    return found, lazy_third_party


def graph(root: Path) -> dict[str, set[str]]:
    """Module -> modules it makes Python execute: the target, and the target's parent packages that are not
    the importer's own (a parent package is initialised before its child, so importing a.b.c runs a.b)."""
    modules = modules_of(root)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports_of(root)[0]:
        parts = imp.target.split(".")
        own_ancestors = {".".join(imp.importer.split(".")[:i]) for i in range(1, len(imp.importer.split(".")) + 1)}
        for i in range(2, len(parts) + 1):
            target = ".".join(parts[:i])
            implicit = i < len(parts)  # a parent package run on the way to the target
            if target in modules and target != imp.importer and not (implicit and target in own_ancestors):
                edges[imp.importer].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(root: Path, layers: list[tuple[str, ...]]) -> list[str]:
    """Imports from a component to one in the same or a higher layer (other than itself), and components
    that no layer names."""
    level = {name: i for i, names in enumerate(layers) for name in names}
    problems = []
    for name in modules_of(root):
        if component(name) and component(name) not in level:
            problems.append(f"{name}: component {component(name)!r} is in no layer")
    for imp in imports_of(root)[0]:
        source, target = component(imp.importer), component(imp.target)
        if not source or not target or source == target or source not in level or target not in level:
            continue
        if level[target] >= level[source]:
            problems.append(f"{imp.importer}:{imp.line} imports {imp.target} (layer {level[target]} from layer {level[source]})")
    return problems


ROOT = REPO / PACKAGE


def test_no_import_cycles():
    assert cycles(graph(ROOT)) == []


def test_every_import_goes_down_the_layers():
    assert layer_violations(ROOT, LAYERS) == []


def test_package_imports_sit_at_module_top():
    lazy = [f"{i.importer}:{i.line} imports {i.target} inside a function" for i in imports_of(ROOT)[0]
            if i.in_function and i.importer not in LAZY_PACKAGE_IMPORTS_ALLOWED]
    assert lazy == []


def test_lazy_third_party_imports_are_heavy_runtimes_only():
    stray = [f"{m}:{line} imports {t} lazily" for m, t, line in imports_of(ROOT)[1] if t not in LAZY_THIRD_PARTY]
    assert stray == []


def test_layers_name_every_top_level_module_and_package():
    on_disk = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert on_disk == {name for names in LAYERS for name in names}


# ---------------------------------------------------------------------------------- the checker checked

def plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    for relative, text in {"__init__.py": "", **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_planted_cycle_is_found(tmp_path):
    root = plant(tmp_path, {
        "data/__init__.py": "", "models/__init__.py": "",
        "data/a.py": f"from {PACKAGE}.data import b\n",
        "data/b.py": f"def f():\n    from {PACKAGE}.data.a import g  # hidden in a function\n",
    })
    assert cycles(graph(root)) == [[f"{PACKAGE}.data.a", f"{PACKAGE}.data.b"]]


def test_a_planted_upward_import_is_found(tmp_path):
    root = plant(tmp_path, {
        "data/__init__.py": "", "models/__init__.py": "",
        "data/a.py": f"from {PACKAGE}.environment import x\n",  # down: fine
        "models/m.py": "from ..data.a import y\n",  # sideways within one layer: refused
        "environment.py": "def f():\n    from runlocalai_bench.models import m\n",  # up, hidden: refused
    })
    problems = layer_violations(root, LAYERS)
    assert len(problems) == 2
    assert any("models.m:1 imports runlocalai_bench.data.a" in p for p in problems)
    assert any("environment:2 imports runlocalai_bench.models.m" in p for p in problems)


def test_importing_a_package_runs_its_init_and_can_close_a_cycle(tmp_path):
    """``from pkg.sub import mod`` executes ``pkg/sub/__init__.py``; an __init__ importing back closes a cycle."""
    root = plant(tmp_path, {
        "rerankers/__init__.py": f"from {PACKAGE}.rerankers.registry import VARIANTS\n",
        "rerankers/registry.py": f"from {PACKAGE}.rerankers.backends import torch_backend\n",
        "rerankers/backends/__init__.py": "",
        "rerankers/backends/torch_backend.py": f"import {PACKAGE}.rerankers\n",
    })
    assert cycles(graph(root)), "torch_backend -> rerankers/__init__ -> registry -> torch_backend"


@pytest.mark.parametrize("source", ["import torch\n", "def f():\n    import torch\n"])
def test_lazy_imports_are_told_apart_from_top_level_ones(tmp_path, source):
    root = plant(tmp_path, {"environment.py": source})
    assert bool(imports_of(root)[1]) == source.startswith("def")


def test_no_module_outside_a_backend_branches_on_a_backend_name():
    """Backend-specific behaviour lives behind the reranker contract: comparing ``variant.backend`` (or any
    value) with a backend's name outside ``rerankers/backends/`` would bring back per-backend branches."""
    from runlocalai_bench.rerankers.registry import BACKENDS

    names = set(BACKENDS)
    branches = []
    for name, path in modules_of(ROOT).items():
        if name.startswith(f"{PACKAGE}.rerankers.backends"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                constants = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                constants += [e.value for c in node.comparators if isinstance(c, (ast.Tuple, ast.List, ast.Set))
                              for e in c.elts if isinstance(e, ast.Constant)]
                if names & set(constants):
                    branches.append(f"{name}:{node.lineno}")
    assert branches == []
