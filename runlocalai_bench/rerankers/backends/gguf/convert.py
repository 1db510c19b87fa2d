"""Hugging Face cross-encoder folder -> GGUF file -> quantized GGUF files, with llama.cpp's own tools.

Conversion runs ``convert_hf_to_gguf.py``, the converter that ships with llama.cpp, taken from the
llama-cpp-python source distribution of the *installed* version (its ``vendor/llama.cpp``), so converter,
gguf-py and the library that loads the file are the same llama.cpp commit. The wheel does not install the
converter, hence :func:`converter_dir` extracts it once per installed version next to the environment
(``<sys.prefix>/share/runlocalai-bench``; ``make install`` does this ahead of time through
``runlocalai-bench gguf-converter``, a run does it on first need, through pip from the package index,
never from a model hub). Quantization calls ``llama_model_quantize`` in the installed library:
the same code as the ``llama-quantize`` tool.

Files follow the common publishing recipe: convert to F16, quantize F16 -> Q8_0 / Q4_K_M. They are cached
like the ONNX/OpenVINO exports under ``<cache>/exports/<model>-<fingerprint>/gguf/``. llama_cpp and gguf are
imported inside the functions (optional extra, native libraries).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from runlocalai_bench.environment import usable_cores
from runlocalai_bench.models.refs import default_cache_dir
from runlocalai_bench.models.twins import twin_note
from runlocalai_bench.paths import publish_dir, staging_path
from runlocalai_bench.rerankers.exports import require_build

log = logging.getLogger(__name__)

DISTRIBUTION = "llama-cpp-python"
SOURCE_ENV = "RUNLOCALAI_BENCH_LLAMA_CPP_SOURCE"  # a llama.cpp checkout or a llama-cpp-python sdist
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion", "gguf-py")
# Variant precision -> (llama.cpp file type name, LLAMA_FTYPE constant name). f16 is what the converter
# writes; the others are quantized from it.
FILE_TYPES = {"f16": ("F16", "LLAMA_FTYPE_MOSTLY_F16"), "q8_0": ("Q8_0", "LLAMA_FTYPE_MOSTLY_Q8_0"),
              "q4_k_m": ("Q4_K_M", "LLAMA_FTYPE_MOSTLY_Q4_K_M")}


class ConversionError(RuntimeError):
    """The converter or quantizer failed; the message carries its output."""


def llama_cpp_version() -> str:
    return importlib.metadata.version(DISTRIBUTION)


def converter_home() -> Path:
    """Where extracted converters live: with the environment that holds llama-cpp-python, else the user cache."""
    share = Path(sys.prefix) / "share" / "runlocalai-bench"
    try:
        share.mkdir(parents=True, exist_ok=True)
        if os.access(share, os.W_OK):
            return share
    except OSError:
        pass
    return default_cache_dir() / "llama.cpp"


def converter_dir() -> Path:
    """Folder holding ``convert_hf_to_gguf.py``, ``conversion/`` and ``gguf-py/`` for the installed llama.cpp."""
    source = os.environ.get(SOURCE_ENV)
    if source and Path(source).is_dir():
        if not (Path(source) / "convert_hf_to_gguf.py").is_file():
            raise ConversionError(f"{SOURCE_ENV}={source}: no convert_hf_to_gguf.py there (expected a llama.cpp checkout)")
        return Path(source)
    version = llama_cpp_version()
    target = converter_home() / f"llama.cpp-converter-{version}"
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="llama-cpp-sdist-") as tmp:
        sdist = Path(source) if source else _download_sdist(version, Path(tmp))
        staging = staging_path(target)
        shutil.rmtree(staging, ignore_errors=True)
        _extract_converter(sdist, staging)
        publish_dir(staging, target)
    return target


def _download_sdist(version: str, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"{DISTRIBUTION}=={version}", "-d", str(into)]
    done = subprocess.run(command, capture_output=True, text=True)
    found = sorted(into.glob("llama_cpp_python-*.tar.gz"))
    if done.returncode != 0 or not found:
        raise ConversionError(
            f"could not fetch the {DISTRIBUTION} {version} source (it carries llama.cpp's GGUF converter): "
            f"{' '.join(command)} said:\n{done.stderr[-2000:]}\nSet {SOURCE_ENV} to a llama.cpp checkout or the sdist.")
    return found[0]


def _extract_converter(sdist: Path, staging: Path) -> None:
    with tarfile.open(sdist) as archive:
        members = []
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if len(parts) > 3 and parts[1:3] == ("vendor", "llama.cpp") and parts[3] in CONVERTER_PARTS:
                member.name = str(Path(*parts[3:]))
                members.append(member)
        if not any(m.name == "convert_hf_to_gguf.py" for m in members):
            raise ConversionError(f"{sdist}: no vendor/llama.cpp/convert_hf_to_gguf.py inside")
        archive.extractall(staging, members=members, filter="data")


# llama.cpp's converter names a BPE tokenizer's pre-tokenizer by hashing the ids it gives a fixed text and looking
# the hash up among published tokenizers. An LLM-reranker twin's tokenizer is trained here (models/twin_tokenizer:
# GPT-2's byte-level split) and is none of them, so for a twin only, this driver runs the same converter with the
# answer given: the converter itself, its tensors and metadata, are unchanged.
PRE_TOKENIZER_DRIVER = (
    "import runpy, sys\n"
    "converter, name = sys.argv[1], sys.argv[2]\n"
    "sys.path.insert(0, converter)\n"
    "import conversion.base as base\n"
    "base.TextModel.get_vocab_base_pre = lambda self, tokenizer: name\n"
    "sys.argv = [converter + '/convert_hf_to_gguf.py'] + sys.argv[3:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
TWIN_PRE_TOKENIZER = "gpt-2"  # what llama.cpp calls the twin tokenizer's byte-level GPT-2 split


def pre_tokenizer_of(folder: Path) -> str | None:
    """The pre-tokenizer name to hand the converter for a twin with a tokenizer trained here; None otherwise."""
    note = twin_note(folder) or {}
    return TWIN_PRE_TOKENIZER if str(note.get("tokenizer", "")).startswith("chat-bpe:") else None


def convert(folder: Path, outfile: Path, outtype: str = "f16") -> Path:
    """Run llama.cpp's converter on a Hugging Face checkpoint folder; the file appears only when complete."""
    converter = converter_dir()
    staging = staging_path(outfile)  # a file renamed over another is atomic: the last writer's equal copy stays
    outfile.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(converter / "gguf-py"), os.environ.get("PYTHONPATH", "")]),
           "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python", "HF_HUB_OFFLINE": "1"}
    arguments = [str(folder), "--outfile", str(staging), "--outtype", outtype]
    pre_tokenizer = pre_tokenizer_of(folder)
    command = ([sys.executable, "-c", PRE_TOKENIZER_DRIVER, str(converter), pre_tokenizer, *arguments] if pre_tokenizer
               else [sys.executable, str(converter / "convert_hf_to_gguf.py"), *arguments])
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not staging.is_file():
        staging.unlink(missing_ok=True)
        raise ConversionError(f"{' '.join(command)} failed (exit {done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")
    staging.rename(outfile)
    return outfile


def quantize(source: Path, outfile: Path, precision: str, threads: int | None = None) -> Path:
    """Quantize a GGUF file to ``precision`` (a key of :data:`FILE_TYPES`) with ``llama_model_quantize``."""
    import llama_cpp

    name, constant = FILE_TYPES[precision]
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, constant)
    params.nthread = threads or usable_cores()
    staging = staging_path(outfile)  # a file renamed over another is atomic: the last writer's equal copy stays
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(staging).encode(), params)
    if status != 0 or not staging.is_file():
        staging.unlink(missing_ok=True)
        raise ConversionError(f"llama_model_quantize({source} -> {name}) returned {status}")
    staging.rename(outfile)
    return outfile


def gguf_file(folder: Path, export_root: Path, precision: str) -> Path:
    """The cached GGUF file of ``folder`` at ``precision``, converting and quantizing on first use."""
    if precision not in FILE_TYPES:
        raise ValueError(f"no GGUF file type for {precision!r}; accepted: {', '.join(FILE_TYPES)}")
    root = Path(export_root) / "gguf" / f"llama.cpp-{llama_cpp_version()}"
    f16 = root / "model-F16.gguf"
    if not f16.is_file():
        require_build(f16)
        log.info("converting %s to GGUF F16 with llama.cpp's converter", folder)
        convert(Path(folder), f16, "f16")
    if precision == "f16":
        return f16
    target = root / f"model-{FILE_TYPES[precision][0]}.gguf"
    if not target.is_file():
        require_build(target)
        log.info("quantizing %s to %s", f16, FILE_TYPES[precision][0])
        quantize(f16, target, precision)
    return target


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each ggml type the file holds (what a quantization really produced)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return dict(sorted(Counter(t.tensor_type.name for t in reader.tensors).items()))
