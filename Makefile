# Two commands a newcomer needs: `make bench` (the real benchmark) and `make test` (offline tests).
PYTHON ?= python3
VENV ?= .venv
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. Override for your hardware,
# e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128".
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= all,ray,dev
# llama-cpp-python compiles llama.cpp (CPU build for this machine, -march=native). Its multimodal library is
# not needed for rerankers; add -DGGML_CUDA=on for a CUDA build. pip caches the built wheel, so only the first
# install on a machine pays for the build.
CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
PARAMS ?= params/default.yaml
# `make bench` fits this wall time on the machine it runs on (the plan shares it out before anything runs and
# prints it with what will be downloaded); BUDGET=none is the full run (days on a small CPU).
BUDGET ?= 12h
# pytest workers for make test (pytest-xdist), each on its own share of the CPUs (tests/conftest.py says why);
# TEST_WORKERS=0 runs the tests in this one process. Modules are handed out in collection order (the conftest puts
# the longest tests first), not xdist's default of the modules with most tests first.
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The online rehearsal's Hugging Face mirror, in a virtualenv of its own: olah needs a newer huggingface_hub
# than this project pins, so it never enters the project's environment.
OLAH_VERSION ?= 0.5.4
OLAH_STAMP := $(VENV)/olah/.installed-olah-$(OLAH_VERSION)
# infinity for the server-infinity-* variants, in a virtualenv of its own: infinity-emb pins numpy<2,
# sentence-transformers<4 and click<8.2, which this project does not share. TORCH_SPEC as for the project.
INFINITY_VERSION ?= 0.0.78
INFINITY_STAMP := $(VENV)/infinity/.installed-infinity-$(INFINITY_VERSION)

.PHONY: install llama-server infinity bench smoke test rehearse lab clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	# onnxruntime and onnxruntime-gpu share one module's files: where the other build is installed, both go (removing
	# one alone deletes files the other shares), and the extras install the wanted one afresh.
	if echo ",$(EXTRAS)," | grep -qE ',(gpu|onnx-gpu),'; then other=onnxruntime; else other=onnxruntime-gpu; fi; \
	if $(BIN)/python -m pip show --quiet $$other >/dev/null 2>&1; then \
	  $(BIN)/python -m pip uninstall --quiet -y onnxruntime onnxruntime-gpu; fi
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	if $(BIN)/python -c "import llama_cpp" 2>/dev/null; then $(BIN)/runlocalai-bench gguf-converter; fi
	# llama-server for the server-llama-* variants: built once per llama-cpp-python version (make llama-server).
	if $(BIN)/python -c "import llama_cpp" 2>/dev/null; then $(BIN)/runlocalai-bench llama-server; fi
	rm -f $(VENV)/.installed-*
	touch $@

# llama.cpp's HTTP server from the same llama.cpp source the gguf extra compiled (its llama-cpp-python sdist),
# CMAKE_ARGS passed on (-DGGML_CUDA=on for a CUDA server); cached per version, so a second call returns at once.
llama-server: install  ## build llama-server for the served variants (12-14 minutes on 2 cores, once)
	$(BIN)/runlocalai-bench llama-server

infinity: $(INFINITY_STAMP)  ## infinity-emb for the server-infinity-* variants (.venv/infinity; 2 minutes, 1.4 GB)

$(INFINITY_STAMP):
	rm -rf $(VENV)/infinity
	$(PYTHON) -m venv $(VENV)/infinity
	$(VENV)/infinity/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/infinity/bin/python -m pip install --quiet $(TORCH_SPEC)
	$(VENV)/infinity/bin/python -m pip install --quiet "infinity-emb[server,torch]==$(INFINITY_VERSION)"
	touch $@

bench: install  ## the real benchmark within BUDGET (needs the Hugging Face hub and the dataset downloads once)
	$(BIN)/runlocalai-bench run $(PARAMS) --budget $(BUDGET) $(ARGS)

smoke: install  ## the whole pipeline offline on the shipped fixture
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/runlocalai-bench run params/smoke.yaml $(ARGS)

$(OLAH_STAMP):
	rm -rf $(VENV)/olah
	$(PYTHON) -m venv $(VENV)/olah
	$(VENV)/olah/bin/python -m pip install --quiet olah==$(OLAH_VERSION)
	touch $@

test: install $(OLAH_STAMP) $(INFINITY_STAMP)  ## offline tests (the online rehearsal talks to a local mirror on 127.0.0.1 only)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

rehearse: install $(OLAH_STAMP)  ## only the rehearsals: default.yaml against a local hub mirror, the GPU device check offline
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -m rehearsal $(PYTEST_ARGS)

lab: install  ## JupyterLab on notebooks/ with this environment's kernel registered as "runlocalai-bench"
	$(BIN)/python -m ipykernel install --sys-prefix --name runlocalai-bench --display-name "runlocalai-bench (.venv)"
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache
