"""Pool bundles measured on different machines into one bundle with one set of tables and one report."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from runlocalai_bench.environment import git_state
from runlocalai_bench.params import dump_params
from runlocalai_bench.reporting.provenance import run_descriptions, write_descriptions
from runlocalai_bench.reporting.report import build_report
from runlocalai_bench.results.bundle import Bundle, write_json
from runlocalai_bench.results.tables import COLUMNS, SCHEMA_VERSION, TABLES, BundleError, read_table, write_table


def manifest(bundle: Bundle) -> dict:
    path = bundle.root / "bundle.json"
    if not path.is_file():
        raise BundleError(f"{bundle.root}: no bundle.json (not a complete runlocalai-bench bundle)")
    return json.loads(path.read_text())


def merge_bundles(paths: list[Path], out: Path) -> Path:
    """Refuse incompatible schema versions and repeated runs; rows keep their run_id, hence their hardware."""
    if out.exists():
        raise BundleError(f"{out} already exists: choose another --out")
    bundles = [Bundle(Path(p)) for p in paths]
    seen: dict[str, Path] = {}
    for bundle in bundles:
        info = manifest(bundle)
        if info.get("schema_version") != SCHEMA_VERSION:
            raise BundleError(f"{bundle.root}: table schema version {info.get('schema_version')}, this tool reads "
                              f"{SCHEMA_VERSION}; re-run or convert it with a matching runlocalai-bench")
        if info["run_id"] in seen:
            raise BundleError(f"{bundle.root}: run {info['run_id']!r} is already in {seen[info['run_id']]} (same run twice)")
        seen[info["run_id"]] = bundle.root
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        for name in TABLES:
            frames = [read_table(b.root, name) for b in bundles]
            frames = [f for f in frames if not f.empty]
            write_table(staging, name, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS[name]))
        for bundle in bundles:
            run_id = manifest(bundle)["run_id"]
            write_json(staging / "environments" / f"{run_id}.json", bundle.environment())
            (staging / "params").mkdir(exist_ok=True)
            shutil.copy(bundle.params_path, staging / "params" / f"{run_id}.yaml")
        write_descriptions(staging, [d for b in bundles for d in run_descriptions(b)])
        merged_id = "merged-" + "-".join(sorted(seen))[:80]
        first = bundles[0].params().model_copy(update={"run_id": merged_id})
        # Report tools read one params.yaml (the claims file, the run id); a pool has no single set of parameters,
        # so the file says whose it is. Each run's own parameters are in params/<run_id>.yaml.
        (staging / "params.yaml").write_text(
            f"# A pooled bundle ({', '.join(sorted(seen))}). These are the parameters of {manifest(bundles[0])['run_id']},\n"
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
