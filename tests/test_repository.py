"""Repository habits that outside checks rely on: stripped notebooks, one source of dependencies."""

import json
import tomllib
from pathlib import Path

import pytest
import yaml


REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_all_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_first_stage.ipynb", "02_rerank.ipynb", "03_report.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stripped_and_parameterized(path):
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and "bundle_dir" in "".join(tagged[0]["source"])


def test_environment_yml_installs_the_pyproject_package():
    """environment.yml must add no dependency of its own: it provides Python and pip-installs the project."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(d for d in conda if d.startswith("python="))
    assert set(conda) == {python, "pip"}
    major_minor = python.split("=")[1]
    low, high = project["requires-python"].replace(">=", "").split(",<")
    assert tuple(map(int, low.split("."))) <= tuple(map(int, major_minor.split("."))) < tuple(map(int, high.split(".")))
    editable = [p for p in pip if p.startswith("-e .")]
    assert len(editable) == 1
    extras = editable[0].split("[")[1].rstrip("]").split(",")
    assert set(extras) <= set(project["optional-dependencies"])
    # torch is the only pre-pin, and it must satisfy the project's own torch range.
    others = [p for p in pip if not p.startswith("-e ")]
    assert others == ["torch==2.13.0"]
    assert any(d.startswith("torch") and "2.4" in d for d in project["dependencies"])


def tracked_text_files() -> list[Path]:
    import subprocess

    listed = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True).stdout
    return [REPO / line for line in listed.splitlines()
            if (REPO / line).suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".ipynb", ".txt", ".cfg"}
            or line in {"Makefile", ".ci/run"}]


def test_the_repository_explains_itself():
    """No file cites a design document that is not in the repository."""
    name = "DESIGN" + ".md"  # spelled apart so this file does not cite it
    citing = [str(p.relative_to(REPO)) for p in tracked_text_files() if name in p.read_text(encoding="utf-8")]
    assert citing == []


def test_readme_layout_matches_the_package_tree():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## Layout"):]
    block = block[block.index("```") + 3:]
    block = block[: block.index("```")]
    listed = {line.split()[0].rstrip("/").removesuffix(".py") for line in block.splitlines()
              if line.startswith("  ") and not line.startswith("    ") and line.strip()}
    package = REPO / "runlocalai_bench"
    on_disk = {p.stem if p.is_file() else p.name for p in package.iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert listed == on_disk
    backends = {p.stem.removesuffix("_backend") if p.is_file() else p.name
                for p in (package / "rerankers" / "backends").iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    backends_line = next(line for line in block.splitlines() if line.strip().startswith("backends/"))
    assert all(name in backends_line for name in backends), (backends, backends_line)
