# Two commands a newcomer needs: `make bench` (the real benchmark) and `make test` (offline tests).
PYTHON ?= python3
VENV ?= .venv
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. Override for your hardware,
# e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128".
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= all,dev
# llama-cpp-python compiles llama.cpp (CPU build for this machine, -march=native). Its multimodal library is
# not needed for rerankers; add -DGGML_CUDA=on for a CUDA build. pip caches the built wheel, so only the first
# install on a machine pays for the build.
CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
PARAMS ?= params/default.yaml
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install bench smoke test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	if $(BIN)/python -c "import llama_cpp" 2>/dev/null; then $(BIN)/runlocalai-bench gguf-converter; fi
	rm -f $(VENV)/.installed-*
	touch $@

bench: install  ## the real benchmark (needs the Hugging Face hub and the dataset download once)
	$(BIN)/runlocalai-bench run $(PARAMS) $(ARGS)

smoke: install  ## the whole pipeline offline on the shipped fixture
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/runlocalai-bench run params/smoke.yaml $(ARGS)

test: install  ## offline tests
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
