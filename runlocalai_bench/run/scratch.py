"""A bundle for notebooks run by hand: open ``notebooks/02_rerank.ipynb`` in JupyterLab, run all cells, and it
works on the smoke parameters without the runner.

A notebook whose ``bundle_dir`` is left at ``None`` gets ``results/scratch-<params>`` (created on first use,
reused after): the resolved parameters, the environment record, and the first stage run in this process when
the bundle has none yet. ``runlocalai-bench finalize results/scratch-smoke`` (or the report notebook) then pools
its tables and writes its report.
"""

from __future__ import annotations

import os
from pathlib import Path

from runlocalai_bench.environment import fingerprint
from runlocalai_bench.params import dump_params, load_params
from runlocalai_bench.paths import REPO_ROOT
from runlocalai_bench.results.bundle import Bundle, write_json
from runlocalai_bench.run.prepare import absolutize

DEFAULT_PARAMS = REPO_ROOT / "params" / "smoke.yaml"
SCRATCH_ENV = "RUNLOCALAI_BENCH_SCRATCH"


def scratch_bundle(params_file: Path = DEFAULT_PARAMS) -> Path:
    """The scratch bundle for ``params_file`` (parameters and environment written on first use), under
    ``results/`` or the folder ``RUNLOCALAI_BENCH_SCRATCH`` names."""
    base = Path(os.environ.get(SCRATCH_ENV) or REPO_ROOT / "results")
    root = base / f"scratch-{Path(params_file).stem}"
    bundle = Bundle(root)
    if not bundle.params_path.is_file():
        params = absolutize(load_params(params_file, [f"run_id=scratch-{Path(params_file).stem}"]))
        root.mkdir(parents=True, exist_ok=True)
        bundle.params_path.write_text(dump_params(params), encoding="utf-8")
        write_json(bundle.environment_path, fingerprint())
    return root


def has_first_stage(bundle: Path) -> bool:
    return Bundle(Path(bundle)).stage_meta("first_stage").get("stage") == "first_stage"
