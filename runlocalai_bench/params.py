"""Run parameters: pydantic models, YAML loading, ``--set`` overrides, one-line errors.

Every key is validated before anything runs, so a typo in ``params/*.yaml`` costs seconds, not the
hour a real benchmark takes to reach the stage that would have tripped on it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import yaml
from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationError, field_validator,
    model_validator,
)

from runlocalai_bench.data.specs import DatasetSpec
from runlocalai_bench.models.refs import default_cache_dir
from runlocalai_bench.paths import localize, portable
from runlocalai_bench.rerankers.hosted import PROVIDERS, HostedError, check_base_url, is_hosted, parse_spec
from runlocalai_bench.rerankers.registry import VARIANTS, backend_of, user_file_variants
from runlocalai_bench.units import parse_duration

STAGES = ("first_stage", "rerank", "report")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
# A reranker device may name the node class it must run on (cpu@epyc, cuda@rtx4090): only the Ray engine
# schedules by class; `auto` is refused there, since it would resolve on the driver, not on the node.
NODE_CLASS_PATTERN = re.compile(r"^(cpu|mps|cuda(:\d+)?)@[a-z0-9][a-z0-9_.-]{0,39}$")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


SHORTHANDS = {"dataset": "datasets", "datasets": "dataset"}


class ParamsError(ValueError):
    """Bad parameters: the message names the file, the key and what would be accepted."""


def _check_device(value: str) -> str:
    if not DEVICE_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a device; accepted: auto, cpu, cuda, cuda:N, mps")
    return value


def _check_variant(value: str) -> str:
    if value not in VARIANTS:
        raise ValueError(f"{value!r} is not a known variant; accepted: {', '.join(VARIANTS)}")
    return value


def _check_rerank_device(value: str) -> str:
    if not (DEVICE_PATTERN.match(value) or NODE_CLASS_PATTERN.match(value)):
        raise ValueError(f"{value!r} is not a device; accepted: auto, cpu, cuda, cuda:N, mps, or one of these "
                         "(not auto) pinned to a node class for --engine ray, e.g. cpu@epyc, cuda@rtx4090 "
                         "(class: lower-case letters, digits, '_', '.', '-')")
    return value


Device = Annotated[str, AfterValidator(_check_device)]
RerankDevice = Annotated[str, AfterValidator(_check_rerank_device)]
VariantName = Annotated[str, AfterValidator(_check_variant)]
# Parsed once into a typed value; written back to YAML as the plain spec string.
Dataset = Annotated[DatasetSpec, PlainValidator(DatasetSpec.parse), PlainSerializer(str, return_type=str)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class QueriesParams(_Strict):
    n: int | None = Field(default=None, gt=0, description="queries to sample; null = all judged queries")
    seed: int = 0
    # 50: the claims file's smallest query count that counts as evidence for a quality claim; below it a
    # budgeted execution is a recorded skip rather than a number too noisy to cite.
    min_n: int = Field(default=50, gt=0, description="under a budget: the fewest queries an execution evaluates "
                                                     "per dataset (all of them where a dataset has fewer)")


class FirstStageParams(_Strict):
    kind: Literal["dense", "bm25", "run", "scoreddocs"] = "dense"
    model: str = "BAAI/bge-m3"
    revision: str | None = None
    depth: int = Field(default=100, gt=0, description="candidates kept per query")
    max_length: int = Field(default=512, gt=0, description="tokens; bge-m3 defaults to 8192, far too slow on CPU")
    batch_size: int = Field(default=32, gt=0)
    device: Device = "auto"
    search: Literal["auto", "exact", "faiss"] = "auto"
    query_prompt: str | None = Field(
        default=None, description="text put before each query (e.g. bge-large-en-v1.5's retrieval instruction); "
                                  "null = the model's own 'query' prompt if its sentence-transformers config has one")
    run: str | dict[str, str] | None = Field(
        default=None, description="kind run: a TREC run file (or {dataset label: file} for several datasets)")

    @model_validator(mode="after")
    def _run_file(self) -> "FirstStageParams":
        if self.kind == "run" and not self.run:
            raise ValueError("kind 'run' needs first_stage.run: a TREC run file (qid Q0 docid rank score tag)")
        if self.kind != "run" and self.run:
            raise ValueError(f"first_stage.run is only read with kind 'run' (kind is {self.kind!r})")
        return self

    @property
    def label(self) -> str:
        """What tables call this first stage: ``bm25``, ``dense:<model spec>``, ``run:<file name>`` or
        ``scoreddocs`` (ir_datasets' own candidates)."""
        if self.kind == "dense":
            return f"dense:{self.model}"
        if self.kind == "run":
            files = self.run if isinstance(self.run, dict) else {"": self.run}
            return "run:" + ",".join(sorted({Path(str(f)).name for f in files.values()}))
        return self.kind

    def run_file(self, dataset_label: str) -> Path:
        """The run file of ``dataset_label`` (kind run)."""
        if isinstance(self.run, dict):
            if dataset_label not in self.run:
                raise ValueError(f"first_stage.run names no file for dataset {dataset_label!r} "
                                 f"(it has {', '.join(self.run)})")
            return Path(self.run[dataset_label])
        return Path(str(self.run))


class RerankerParams(_Strict):
    model: str = "BAAI/bge-reranker-v2-m3"
    revision: str | None = None
    weights: Literal["trained", "random"] = "trained"
    variants: list[VariantName] = Field(default_factory=lambda: ["torch-fp32"], min_length=1)
    devices: list[RerankDevice] = Field(default_factory=lambda: ["auto"], min_length=1)
    max_length: int = Field(default=512, gt=0)
    batch_size: int = Field(default=16, gt=0)
    depth: int = Field(default=100, gt=0, description="first-stage candidates reranked per query")
    depth_curve: list[int] = Field(default_factory=lambda: [10, 20, 50, 100],
                                   description="reranked depths evaluated from the one scoring pass (capped at depth)")
    length_sorted: bool = True
    threads: Literal["physical", "logical"] | int = Field(
        default="physical",
        description="CPU threads every backend computes with (torch, ONNX Runtime, OpenVINO, llama.cpp alike, so "
                    "speed is compared on equal terms): physical = one per physical core of the usable CPUs, "
                    "logical = every hardware thread, or a number; recorded per execution")
    gguf_tokens_per_call: int = Field(
        default=512, gt=0,
        description="GGUF variants: the most tokens one llama.cpp call packs (up to batch_size pairs; a longer pair "
                    "goes alone). 512 is llama-server's default micro-batch; llama.cpp's encoder allocates n_vocab "
                    "logits per token of a call (0.95 MiB per token for bge-reranker-v2-m3), so this bounds memory")
    baselines: list[str] = Field(
        default_factory=list,
        description="other rerankers (hub ids, local folders, twin:NAME) scored on exactly the same candidates in "
                    "each device's reference variant (torch-fp32 on CPU, torch-fp16 on CUDA), with the same "
                    "weights setting as the main reranker; compared pairwise in tables/comparisons. Hosted "
                    "rerankers (api:cohere/<model>, api:voyage/<model>, api:jina/<model>; see api) run once per run "
                    "through their provider's API, keyed from the environment")
    baseline_variants: list[VariantName] = Field(
        default_factory=list,
        description="variants each comparison reranker also runs in, beyond each device's reference variant: "
                    "compared with its own torch-fp32 in tables/comparisons (kind quantization), as the main "
                    "reranker's variants are. A variant a comparison reranker's family cannot run is a recorded skip")
    instruction: str | None = Field(
        default=None,
        description="LLM rerankers whose prompt carries an instruction (Qwen3-Reranker): its text; null = the "
                    "model card's default. Recorded per execution; families without one ignore it")
    trust_remote_code: dict[str, str] = Field(
        default_factory=dict,
        description="hub id -> commit hash (40 hex digits): the rerankers whose repository code (trust_remote_code) "
                    "may run, each at that pinned revision only. A reranker that needs its own code and is not "
                    "listed is a recorded skip")
    gguf_files: dict[VariantName, str] = Field(
        default_factory=dict,
        description="gguf variant -> an existing .gguf file of this reranker to use instead of converting it")

    @field_validator("trust_remote_code")
    @classmethod
    def _pinned(cls, allowed: dict[str, str]) -> dict[str, str]:
        for model, revision in allowed.items():
            if not re.fullmatch(r"[0-9a-f]{40}", str(revision)):
                raise ValueError(f"trust_remote_code.{model}: {revision!r} is not a commit hash (40 hex digits); remote "
                                 "code runs only at a pinned commit, never a branch or tag that can move")
        return allowed

    @field_validator("gguf_files")
    @classmethod
    def _gguf_files(cls, files: dict[str, str]) -> dict[str, str]:
        for variant, path in files.items():
            suffix = backend_of(VARIANTS[variant]).user_file_suffix
            if suffix is None:
                raise ValueError(f"{variant!r} is not a GGUF variant; accepted keys: {', '.join(user_file_variants())}")
            if not str(path).endswith(suffix):
                raise ValueError(f"{variant}: {path!r} is not a {suffix} file")
        return files

    @field_validator("threads")
    @classmethod
    def _threads(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value <= 0:
            raise ValueError(f"threads must be 'physical', 'logical' or a positive integer, got {value}")
        return value

    @field_validator("variants", "devices", "baselines", "baseline_variants")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"entries repeat: {values}")
        return values

    @model_validator(mode="after")
    def _baselines_differ(self) -> "RerankerParams":
        if self.model in self.baselines:
            raise ValueError(f"baselines: {self.model!r} is the reranker itself; list other rerankers")
        if is_hosted(self.model):
            raise ValueError(f"model: {self.model!r} is a hosted reranker: it can be a comparison reranker "
                             "(reranker.baselines), not the reranker under test, whose variants run here")
        for spec in self.baselines:
            if is_hosted(spec):
                try:
                    parse_spec(spec)
                except HostedError as exc:
                    raise ValueError(f"baselines: {exc}") from None
        return self

    @property
    def hosted(self) -> list[str]:
        """The comparison rerankers behind a provider's API (``api:...``)."""
        return [b for b in self.baselines if is_hosted(b)]

    @property
    def local_baselines(self) -> list[str]:
        """The comparison rerankers this machine runs (every other one)."""
        return [b for b in self.baselines if not is_hosted(b)]


class ThroughputParams(_Strict):
    enabled: bool = True
    workloads: list[Literal["candidates", "query", "fixed"]] = Field(
        default_factory=lambda: ["candidates", "query", "fixed"],
        description="candidates: the run's pairs end to end; query: one request per query (latency a search box "
                    "feels); fixed: model only at batch_sizes x max_lengths")
    max_queries: int | None = Field(default=32, gt=0, description="queries timed as single requests; null = all")
    warmup_rounds: int = Field(default=2, ge=0)
    min_seconds: float = Field(default=10.0, ge=0)
    # Three at least: one round gives no spread (IQR 0, p50 = p99), two a spread of one difference.
    min_rounds: int = Field(default=5, ge=3)
    max_pairs: int | None = Field(default=512, gt=0, description="candidate pairs timed; null = all")
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 16],
                                   description="fixed shapes' pairs per call on CPUs")
    # A GPU computes a batch of 1-8 pairs in the time it takes to launch its kernels: its rate only shows from
    # dozens of pairs per call (32 = sentence-transformers' default batch, at which the GPU claims are judged).
    gpu_batch_sizes: list[int] = Field(default_factory=lambda: [1, 8, 32, 128, 256],
                                       description="fixed shapes' pairs per call on cuda and mps")
    max_lengths: list[int] = Field(default_factory=lambda: [256, 512])
    datasets: list[str] | Literal["first"] | None = Field(
        default=None,
        description="the datasets (labels) whose candidates and query workloads are timed, or first (the run's first "
                    "dataset, whatever --set dataset= makes it); null = every dataset. "
                    "Each costs (warmup_rounds + min_rounds) passes over max_pairs pairs and max_queries requests "
                    "per execution: hours per dataset for a large model on a CPU")

    @field_validator("batch_sizes", "gpu_batch_sizes", "max_lengths")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        if any(v <= 0 for v in values):
            raise ValueError(f"all entries must be positive integers, got {values}")
        return values

    def batch_sizes_for(self, device: str) -> list[int]:
        """The fixed shapes' batch sizes on ``device`` (a resolved device: cpu, cuda[:N], mps)."""
        return self.batch_sizes if device.split(":")[0] == "cpu" else self.gpu_batch_sizes


class ServeParams(_Strict):
    """Served variants (``server-*``): how the server the suite starts on 127.0.0.1 is sized and called."""

    slots: int = Field(default=4, gt=0,
                       description="pairs (of one request or of concurrent ones) the server may compute together: "
                                   "llama-server's -np slots, within its micro-batch (the larger of max_length and "
                                   "reranker.gguf_tokens_per_call tokens per decode); infinity's --batch-size")
    request_timeout_s: float = Field(default=1800.0, gt=0,
                                     description="the longest one request (one query's candidates) may take before "
                                                 "the execution fails; a server that exits fails it at once")
    load: bool = Field(default=True, description="run the load sweep (tables/load) for served variants")
    concurrency: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16],
                                   description="closed-loop points: requests kept in flight")
    rate_fractions: list[float] = Field(
        default_factory=lambda: [0.5, 0.75, 0.9, 1.0, 1.2],
        description="open-loop points: Poisson arrival rates as fractions of the best closed-loop requests/s")
    max_queries: int | None = Field(default=32, gt=0,
                                    description="queries (each with its candidates) the requests are drawn from, "
                                                "seeded; null = every evaluated query of the timed datasets")
    warmup_requests: int = Field(default=2, ge=0, description="answers not counted at the start of a closed-loop point")
    min_requests: int = Field(default=8, gt=0,
                              description="counted requests per closed-loop point, at least (after a warm-up of "
                                          "max(warmup_requests, concurrency) answers)")
    min_seconds: float = Field(default=10.0, ge=0, description="seconds per closed-loop point, at least")
    open_requests: int = Field(default=32, gt=0, description="arrivals per open-loop point, at least")
    open_seconds: float = Field(default=20.0, ge=0,
                                description="an open-loop point offers as many arrivals as come in this long, at least")
    latency_target_ms: float = Field(default=2000.0, gt=0,
                                     description="goodput counts the requests answered within this latency")

    @field_validator("concurrency", "rate_fractions")
    @classmethod
    def _positive(cls, values: list) -> list:
        if any(v <= 0 for v in values):
            raise ValueError(f"all entries must be positive, got {values}")
        return values


class ProviderParams(_Strict):
    """How one provider's API is reached. The key is never a parameter: it comes from the environment variable
    the provider names (COHERE_API_KEY, VOYAGE_API_KEY, JINA_API_KEY)."""

    base_url: str | None = Field(
        default=None, description="where requests go, with the API version (a proxy, or a server on 127.0.0.1 "
                                  "speaking the same shape); null = the provider's own (recorded in the bundle)")
    max_tokens_per_doc: int | None = Field(
        default=None, gt=0, description="Cohere: documents are cut to this many of its tokens; null = the API's "
                                        "default (4,096). Voyage truncates to the model's context itself")


class ApiParams(_Strict):
    """Hosted comparison rerankers (``api:<provider>/<model>`` in reranker.baselines)."""

    max_cost_usd: float | None = Field(
        default=5.0, ge=0, description="a run whose plan prices its hosted rerankers above this refuses to start, "
                                       "and no request is sent once the responses' bill reaches it; null = no cap "
                                       "(also what a hosted model without a price in prices.yaml needs)")
    concurrency: int = Field(default=4, gt=0, description="requests (one query's candidates each) in flight at once")
    max_retries: int = Field(default=5, ge=0, description="retries of a request answered 429 or 5xx (or cut off), "
                                                          "after which the query is a recorded failure")
    max_backoff_s: float = Field(default=60.0, gt=0, description="the longest wait before a retry (Retry-After "
                                                                 "included)")
    timeout_s: float = Field(default=120.0, gt=0, description="the longest one request may take")
    cohere: ProviderParams = Field(default_factory=ProviderParams)
    voyage: ProviderParams = Field(default_factory=ProviderParams)
    jina: ProviderParams = Field(default_factory=ProviderParams)

    def provider(self, name: str) -> ProviderParams:
        return getattr(self, name)

    @model_validator(mode="after")
    def _safe_urls(self) -> "ApiParams":
        for name, provider in PROVIDERS.items():
            url = self.provider(name).base_url
            if url is not None:
                try:
                    check_base_url(url, provider)
                except HostedError as exc:
                    raise ValueError(str(exc).removeprefix("api.")) from None
        return self

    def base_url(self, name: str) -> str:
        """The base URL requests to provider ``name`` go to."""
        return self.provider(name).base_url or PROVIDERS[name].base_url


class Params(_Strict):
    run_id: str | None = None
    dataset: Dataset | None = Field(default=None, description="one dataset: shorthand for datasets: [<it>]")
    datasets: list[Dataset] = Field(default_factory=lambda: [DatasetSpec.parse("beir/scifact/test")], min_length=1)
    split: str = "test"
    queries: QueriesParams = Field(default_factory=QueriesParams)
    first_stage: FirstStageParams = Field(default_factory=FirstStageParams)
    reranker: RerankerParams = Field(default_factory=RerankerParams)
    throughput: ThroughputParams = Field(default_factory=ThroughputParams)
    serve: ServeParams = Field(default_factory=ServeParams)
    api: ApiParams = Field(default_factory=ApiParams)
    stages: list[Literal["first_stage", "rerank", "report"]] = Field(default_factory=lambda: list(STAGES))
    seed: int = 0
    budget: str | None = Field(
        default=None,
        description="wall time the run may take (8h, 90min, 2h30m): each execution evaluates as many queries as its "
                    "share allows (a prefix of one seeded order) and a first stage that does not fit runs on a "
                    "reduced corpus; null or none = every query on the full corpus")
    bootstrap_samples: int = Field(default=10_000, gt=0)
    cache_dir: str | None = Field(default=None, description="embeddings and exports; null = ~/.cache/runlocalai-bench")
    claims: str | None = Field(default=None, description="claims YAML judged by the report")
    references: str | None = Field(
        default="params/references",
        description="published numbers each report checks its rows against (a folder of YAML files or one file, "
                    "relative to the repository); null = none")

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: str | None) -> str | None:
        if value is None or str(value).strip().lower() in {"none", "null", ""}:
            return None
        parse_duration(value)
        return str(value).strip()

    @property
    def timed_datasets(self) -> list[str] | None:
        """The labels of the datasets whose candidates and query workloads are timed (None: all)."""
        timed = self.throughput.datasets
        return [self.datasets[0].label] if timed == "first" else timed

    @property
    def budget_s(self) -> float | None:
        """The budget in seconds (None: no budget)."""
        return parse_duration(self.budget) if self.budget else None

    @model_validator(mode="after")
    def _one_dataset(self) -> "Params":
        """``dataset: X`` is ``datasets: [X]``; giving both is ambiguous."""
        if self.dataset is not None:
            if "datasets" in self.model_fields_set:
                raise ValueError("give `dataset` (one) or `datasets` (a list), not both")
            # Bypass validate_assignment: the two fields are swapped together.
            self.__dict__.update(datasets=[self.dataset], dataset=None)
        timed = self.throughput.datasets
        labels = [spec.label for spec in self.datasets]
        if isinstance(timed, list) and set(timed) - set(labels):
            raise ValueError(f"throughput.datasets: {', '.join(sorted(set(timed) - set(labels)))} is not a dataset of "
                             f"this run; accepted: {', '.join(labels)}")
        return self

    @field_validator("datasets")
    @classmethod
    def _distinct_datasets(cls, values: list[DatasetSpec]) -> list[DatasetSpec]:
        labels = [v.label for v in values]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"datasets repeat (or share a name): {', '.join(repeated)}")
        return values

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        if value is not None and not RUN_ID_PATTERN.match(value):
            raise ValueError(f"{value!r} must be letters, digits, '.', '_' or '-' (it names a folder)")
        return value

    @field_validator("stages")
    @classmethod
    def _stages(cls, values: list[str]) -> list[str]:
        if not values or len(set(values)) != len(values) or values != sorted(values, key=STAGES.index):
            raise ValueError(f"must be a non-empty subset of {list(STAGES)} in that order, got {values}")
        if "rerank" in values and "first_stage" not in values:
            raise ValueError("'rerank' reorders the first stage's candidates of the same run: add 'first_stage'")
        return values

    @property
    def cache_path(self) -> Path:
        """Where embeddings, exports and twins are cached (``cache_dir``, else the user cache)."""
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    @model_validator(mode="after")
    def _scoreddocs(self) -> "Params":
        if self.first_stage.kind == "scoreddocs":
            for spec in self.datasets:
                if not spec.has_scoreddocs():
                    raise ValueError(f"first_stage.kind 'scoreddocs' reads ir_datasets' own candidates, and {spec} has "
                                     "none (e.g. msmarco-passage/trec-dl-2019/judged has BM25's top 1,000)")
        return self

    @property
    def depth_curve(self) -> list[int]:
        """The reranked depths of the depth curve: the configured ones up to the run's depth, and the depth."""
        return sorted({k for k in self.reranker.depth_curve if k < self.reranker.depth} | {self.reranker.depth})

    @model_validator(mode="after")
    def _depths(self) -> "Params":
        if self.reranker.depth > self.first_stage.depth:
            raise ValueError(
                f"reranker.depth ({self.reranker.depth}) exceeds first_stage.depth ({self.first_stage.depth}):"
                " the reranker can only reorder candidates the first stage returned"
            )
        return self


def format_validation_error(source: str, error: ValidationError, model: type[BaseModel] = Params) -> str:
    """One line per problem: ``source: key 'a.b': what is wrong; accepted: ...``."""
    lines = []
    for problem in error.errors():
        loc = [str(p) for p in problem["loc"]]
        key = _dotted(loc)
        if problem["type"] == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            accepted = ", ".join(parent.model_fields) if parent else "?"
            lines.append(f"{source}: unknown key {key!r}; accepted keys here: {accepted}")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            shown = problem.get("input")
            got = f" (got {shown!r})" if not isinstance(shown, dict) and problem["type"] != "value_error" else ""
            where = f"key {key!r}" if key else "parameters"
            lines.append(f"{source}: {where}: {message}{got}")
    return "\n".join(lines)


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.sub=value``; the value is read as YAML so numbers, nulls and lists keep their types."""
    if "=" not in text:
        raise ParamsError(f"--set {text!r}: expected key=value, e.g. --set queries.n=50")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", key):
        raise ParamsError(f"--set {text!r}: {key!r} is not a dotted key such as reranker.batch_size")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ParamsError(f"--set {text!r}: value is not valid YAML ({exc.problem})") from exc
    return key, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key=value`` applied at its dotted path."""
    data = _deep_copy(data)
    for text in overrides:
        key, value = parse_override(text)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(f"--set {text!r}: {part!r} holds a value, not a section of keys")
            node = child
        node[parts[-1]] = value
        if key in SHORTHANDS:  # --set dataset=X replaces a file's datasets list, and the other way round
            data.pop(SHORTHANDS[key], None)
    return data


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def load_params(path: str | Path, overrides: list[str] | None = None) -> Params:
    """Read, override and validate a parameter file. Raises :class:`ParamsError` with one line per problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsError(f"{source}: cannot read parameter file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{source}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    if overrides:
        data = apply_overrides(data, overrides)
        source += " (with --set " + " ".join(overrides) + ")"
    return validate_params(data, source)


def validate_params(data: dict[str, Any], source: str = "parameters") -> Params:
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(format_validation_error(source, exc)) from None


def _map_strings(data: Any, change: Callable[[str], str]) -> Any:
    if isinstance(data, dict):
        return {k: _map_strings(v, change) for k, v in data.items()}
    if isinstance(data, list):
        return [_map_strings(v, change) for v in data]
    return change(data) if isinstance(data, str) else data


def dump_params(params: Params) -> str:
    """The resolved parameters as a bundle stores them: local paths relative to the repository root (a bundle
    holds no absolute path of its machine) and no cache folder (the runner hands its kernels the cache through
    ``RUNLOCALAI_BENCH_CACHE``; where caches live never changes a result)."""
    data = params.model_dump(mode="json", exclude={"dataset"})
    data["cache_dir"] = None
    return yaml.safe_dump(_map_strings(data, portable), sort_keys=False, allow_unicode=True)


def read_params(path: str | Path) -> Params:
    """Read a bundle's ``params.yaml``: repository-relative paths made absolute again, then validated."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return validate_params(_map_strings(data, localize), str(path))
