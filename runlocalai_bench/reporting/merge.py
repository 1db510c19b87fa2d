"""Pool bundles measured on different machines into one bundle with one set of tables and one report."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import pandas as pd

from runlocalai_bench.environment import git_state
from runlocalai_bench.params import dump_params, read_params
from runlocalai_bench.reporting.provenance import run_descriptions, write_descriptions
from runlocalai_bench.reporting.report import build_report
from runlocalai_bench.results.bundle import Bundle, write_json
from runlocalai_bench.results.tables import COLUMNS, SCHEMA_VERSION, TABLES, BundleError, read_table, write_table


def manifest(bundle: Bundle) -> dict:
    path = bundle.root / "bundle.json"
    if not path.is_file():
        raise BundleError(f"{bundle.root}: no bundle.json (not a complete runlocalai-bench bundle)")
    return json.loads(path.read_text())


# Tables the report derives from the others (build_report writes them anew): never concatenated, so an input
# written by an older version of the report does not have to carry the current derived columns.
DERIVED = ("headline", "verdicts", "reproduction")


def runs_in(bundle: Bundle) -> list[str]:
    """The runs a bundle holds: its own, or each pooled run's (a bundle made by this merge)."""
    info = manifest(bundle)
    return list(info.get("merged_from") or [info["run_id"]])


def _pooled(bundle: Bundle) -> bool:
    return bool(manifest(bundle).get("merged_from"))


def run_environment(bundle: Bundle, run_id: str) -> dict:
    return (json.loads((bundle.root / "environments" / f"{run_id}.json").read_text(encoding="utf-8"))
            if _pooled(bundle) else bundle.environment())


def run_params_path(bundle: Bundle, run_id: str) -> Path:
    return bundle.root / "params" / f"{run_id}.yaml" if _pooled(bundle) else bundle.params_path


def _keep_run_records(bundle: Bundle, run_id: str, staging: Path) -> None:
    """A run's time-budget allocation (what it sampled and reduced) and its Ray nodes' records: the evidence
    behind its rows, kept per run as ``budgets/<run_id>.json`` and ``nodes/<run_id>--<execution>.json``."""
    pooled = _pooled(bundle)
    budget = bundle.root / "budgets" / f"{run_id}.json" if pooled else bundle.budget_path
    if budget.is_file():
        (staging / "budgets").mkdir(exist_ok=True)
        shutil.copy(budget, staging / "budgets" / f"{run_id}.json")
    nodes = bundle.root / "nodes"
    for path in sorted(nodes.glob(f"{run_id}--*.json" if pooled else "*.json")):
        (staging / "nodes").mkdir(exist_ok=True)
        shutil.copy(path, staging / "nodes" / (path.name if pooled else f"{run_id}--{path.name}"))


def merge_bundles(paths: list[Path], out: Path, drop: Iterable[str] = ()) -> Path:
    """Refuse incompatible schema versions and repeated runs; rows keep their run_id, hence their hardware.

    A pooled bundle may be an input: its runs join the new pool. ``drop`` leaves runs of pooled inputs out by
    run_id (every row, environment, parameters and description of them), while a single-run bundle given
    explicitly is always kept: ``merge POOL RERUN --drop-run ID`` replaces a pooled run by its rerun."""
    if out.exists():
        raise BundleError(f"{out} already exists: choose another --out")
    bundles = [Bundle(Path(p)) for p in paths]
    drop = set(drop)
    pooled_runs = {r for b in bundles if _pooled(b) for r in runs_in(b)}
    unknown = drop - pooled_runs
    if unknown:
        raise BundleError(f"--drop-run {', '.join(sorted(unknown))}: no such run in a pooled input; they hold "
                          f"{', '.join(sorted(pooled_runs)) or 'none (no input is a pooled bundle)'}")
    seen: dict[str, Path] = {}
    kept: dict[Path, list[str]] = {}
    for bundle in bundles:
        info = manifest(bundle)
        if info.get("schema_version") != SCHEMA_VERSION:
            raise BundleError(f"{bundle.root}: table schema version {info.get('schema_version')}, this tool reads "
                              f"{SCHEMA_VERSION}; re-run or convert it with a matching runlocalai-bench")
        kept[bundle.root] = [r for r in runs_in(bundle) if not (_pooled(bundle) and r in drop)]
        if not kept[bundle.root]:
            raise BundleError(f"{bundle.root}: every run of it is dropped ({', '.join(runs_in(bundle))}); leave it out")
        for run_id in kept[bundle.root]:
            if run_id in seen:
                raise BundleError(f"{bundle.root}: run {run_id!r} is already in {seen[run_id]} (same run twice)")
            seen[run_id] = bundle.root
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        for name in TABLES:
            if name in DERIVED:  # rebuilt from the pooled rows by build_report below
                continue
            frames = []
            for b in bundles:
                frame = read_table(b.root, name)
                if "run_id" in frame.columns:
                    frame = frame[frame["run_id"].isin(kept[b.root])]
                if not frame.empty:
                    frames.append(frame)
            write_table(staging, name, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS[name]))
        for bundle in bundles:
            for run_id in kept[bundle.root]:
                write_json(staging / "environments" / f"{run_id}.json", run_environment(bundle, run_id))
                _keep_run_records(bundle, run_id, staging)
                (staging / "params").mkdir(exist_ok=True)
                shutil.copy(run_params_path(bundle, run_id), staging / "params" / f"{run_id}.yaml")
        write_descriptions(staging, [d for b in bundles for d in run_descriptions(b) if d.run_id in kept[b.root]])
        merged_id = "merged-" + "-".join(sorted(seen))[:80]
        first_run = kept[bundles[0].root][0]
        first = read_params(run_params_path(bundles[0], first_run)).model_copy(update={"run_id": merged_id})
        # Report tools read one params.yaml (the claims file, the run id); a pool has no single set of parameters,
        # so the file says whose it is. Each run's own parameters are in params/<run_id>.yaml.
        (staging / "params.yaml").write_text(
            f"# A pooled bundle ({', '.join(sorted(seen))}). These are the parameters of {first_run},\n"
            "# the first run given to `runlocalai-bench merge`, with its run_id replaced; they do not describe the\n"
            "# other runs. Each run's own parameters: params/<run_id>.yaml; what each run was: the report.\n"
            + dump_params(first), encoding="utf-8")
        state = git_state()
        write_json(staging / "bundle.json", {"schema_version": SCHEMA_VERSION, "run_id": merged_id, "merged_from": sorted(seen),
                                             "merged_by": {"commit": state.get("commit"), "dirty": state.get("dirty")}})
        build_report(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.rename(out)
    return out
