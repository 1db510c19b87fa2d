"""Reranker families: how a checkpoint turns a (query, document) pair into a relevance score.

A family is a scoring rule, not a loader. Two kinds exist:

- ``classifier``: a sequence-classification cross-encoder (bge-reranker-v2-m3, bge-reranker-large, MiniLM, jina-v2,
  gte-multilingual): the pair goes in as the tokenizer's pair encoding, the score is the classification logit.
- ``llm``: a causal language model asked whether the document answers the query. The pair is written into the
  authors' prompt and the score is read from the next-token logits at the last position. Each rule below quotes
  where its prompt and formula come from; the suite never invents a prompt.

Which backends can run which kind is each backend's own declaration (``Backend.families``); this module only
says which family a checkpoint is in. A causal LM the suite has no rule for is an error, never a guess: the same
weights read through another prompt would score something else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from runlocalai_bench.models.refs import TWIN_PREFIX
from runlocalai_bench.models.twins import TINY_FAMILIES, twin_note

CLASSIFIER, LLM = "classifier", "llm"


FIELD = re.compile(r"\{(instruction|query|document)\}")


@dataclass(frozen=True)
class PromptRule:
    """An LLM reranker's prompt and score, as its authors wrote them.

    The prompt is a sequence of ``segments``, each tokenized on its own exactly as the reference code tokenizes
    it (tokenizing the same text in other pieces can merge differently at the seams), with ``{instruction}``,
    ``{query}`` and ``{document}`` filled in. The score is ``logit(true_token) - logit(false_token)`` at the last
    position, or ``logit(true_token)`` alone where the family has no false token."""

    name: str
    segments: tuple[str, ...]
    true_token: str
    false_token: str | None
    default_instruction: str | None
    bos: bool  # the prompt starts with the tokenizer's BOS token (Gemma's reference code adds it)
    source: str  # where the prompt and the formula are published

    @property
    def formula(self) -> str:
        if self.false_token is None:
            return f"logit({self.true_token!r}) at the last position"
        return f"logit({self.true_token!r}) - logit({self.false_token!r}) at the last position (log-odds)"

    def render(self, query: str, document: str, instruction: str | None) -> list[str]:
        """The prompt's segments for one pair (``instruction`` None: the family's default). One pass over each
        segment, so braces or field names inside a query or document are kept as text."""
        values = {"query": query, "document": document,
                  "instruction": (self.default_instruction if instruction is None else instruction) or ""}
        return [FIELD.sub(lambda match: values[match.group(1)], segment) for segment in self.segments]


# Qwen3-Reranker (0.6B/4B/8B): QwenLM/Qwen3-Embedding README and the model cards' usage code: a system prefix,
# the body "<Instruct>: ...\n<Query>: ...\n<Document>: ..." (tokenized as one text), the assistant suffix with an
# empty think block. The cards report P(yes), a softmax over the ("no", "yes") logits; the suite scores the
# log-odds logit(yes) - logit(no): it orders pairs exactly as P(yes) does (P is its sigmoid) and, unlike P, does
# not saturate to 1.0 in half precision (ties).
QWEN3_RERANKER = PromptRule(
    name="qwen3-reranker",
    segments=("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
              "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n",
              "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
              "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"),
    true_token="yes", false_token="no",
    default_instruction="Given a web search query, retrieve relevant passages that answer the query",
    bos=False,
    source="QwenLM/Qwen3-Embedding README (Qwen3-Reranker usage): system prefix, <Instruct>/<Query>/<Document> "
           "body, assistant suffix with an empty think block; yes/no logits at the last position",
)

# mxbai-rerank-base-v2 / large-v2: mixedbread-ai/mxbai-rerank, mxbai_rerank/mxbai_rerank_v2.py (MxbaiRerankV2):
# the Qwen chat prefix, "query: ...", "\n", "document: ...", "\n", the task prompt, the assistant suffix, each
# tokenized apart; the score is logit("1") - logit("0") at the last position. Its instruction is optional and
# absent by default (an instruction there is a segment of its own, which this rule does not add).
MXBAI_RERANK_V2 = PromptRule(
    name="mxbai-rerank-v2",
    segments=("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
              "<|im_start|>user\n",
              "query: {query}", "\n", "document: {document}", "\n",
              "You are a search relevance expert who evaluates how well documents match search queries. For each "
              "query-document pair, carefully analyze the semantic relationship between them, then provide your "
              "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:",
              "<|im_end|>\n<|im_start|>assistant\n"),
    true_token="1", false_token="0", default_instruction=None, bos=False,
    source="mixedbread-ai/mxbai-rerank, mxbai_rerank/mxbai_rerank_v2.py: chat prefix, query/document, task "
           "prompt, assistant suffix; logit('1') - logit('0')",
)

# bge-reranker-v2-gemma: the model card and FlagOpen/FlagEmbedding's FlagLLMReranker: BOS, "A: {query}", "\n",
# "B: {passage}", "\n", the prompt, each tokenized apart; the score is the "Yes" logit at the last position.
BGE_RERANKER_GEMMA = PromptRule(
    name="bge-reranker-v2-gemma",
    segments=("A: {query}", "\n", "B: {document}", "\n",
              "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
              "providing a prediction of either 'Yes' or 'No'."),
    true_token="Yes", false_token=None, default_instruction=None, bos=True,
    source="BAAI/bge-reranker-v2-gemma model card and FlagEmbedding FlagLLMReranker: BOS, A:/B: lines, the "
           "Yes/No prompt; logit('Yes') at the last position",
)

RULES = {rule.name: rule for rule in (QWEN3_RERANKER, MXBAI_RERANK_V2, BGE_RERANKER_GEMMA)}
# Hub ids (case-insensitive) of each LLM family's published checkpoints.
ID_PATTERNS = (
    (re.compile(r"qwen3-reranker", re.I), QWEN3_RERANKER.name),
    (re.compile(r"mxbai-rerank-(xsmall|base|large)-v2$", re.I), MXBAI_RERANK_V2.name),
    (re.compile(r"bge-reranker-v2-gemma", re.I), BGE_RERANKER_GEMMA.name),
)


@dataclass(frozen=True)
class Family:
    """What a checkpoint is scored by: ``kind`` classifier or llm, and for llm its prompt rule."""

    kind: str
    rule: PromptRule | None = None

    @property
    def name(self) -> str:
        return self.rule.name if self.rule else "cross-encoder"

    @property
    def description(self) -> str:
        if self.rule is None:
            return "sequence-classification cross-encoder: the classification logit of the pair"
        return f"{self.rule.name}: {self.rule.formula} after the authors' prompt ({self.rule.source})"


def rule_for_id(spec: str) -> str | None:
    """The LLM rule a hub id, a tiny twin (``twin:tiny-qwen3``) or a shape twin's original belongs to, or None."""
    if spec.startswith(TWIN_PREFIX):
        return TINY_FAMILIES.get(spec.removeprefix(TWIN_PREFIX))
    for pattern, name in ID_PATTERNS:
        if pattern.search(spec):
            return name
    return None


def _config(folder: Path) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (not a Hugging Face checkpoint)")
    return json.loads(path.read_text(encoding="utf-8"))


def family_from(spec: str, config: dict, note: dict | None = None) -> Family:
    """The family of a checkpoint from what is known before loading it: the spec the parameters named, its
    config.json and, for a twin, its note. A twin says its family (or the id it is the shape of); a hub id is
    matched against the published checkpoints; otherwise the architecture decides: a sequence classifier is a
    cross-encoder, a causal LM with no known rule is refused."""
    note = note or {}
    architecture = (config.get("architectures") or [""])[0]
    if architecture.endswith("ForSequenceClassification"):  # a classification head is read as one, whatever the id
        return Family(CLASSIFIER)  # (community "-seq-cls" conversions of Qwen3-Reranker are cross-encoders)
    name = note.get("family") or rule_for_id(note.get("of", "")) or rule_for_id(spec)
    if name:
        return Family(LLM, RULES[name])
    if architecture.endswith("ForCausalLM"):
        raise ValueError(f"{spec}: a causal language model ({architecture}) with no known reranking prompt; the suite "
                         f"scores LLM rerankers by their authors' rules only ({', '.join(RULES)}), matched by hub id")
    return Family(CLASSIFIER)


def family_of(spec: str, folder: Path) -> Family:
    """The family of the checkpoint in ``folder`` that the parameters named ``spec`` (:func:`family_from`)."""
    return family_from(spec, _config(folder), twin_note(folder))


# Rerankers whose hub repositories map their Auto classes to modules of their own (their model cards load them
# with remote code allowed): `plan` knows they need permission before their config is downloaded.
REMOTE_CODE_MODELS = {"jinaai/jina-reranker-v2-base-multilingual", "Alibaba-NLP/gte-multilingual-reranker-base"}


def remote_code_needed(folder: Path) -> bool:
    """Whether loading the checkpoint runs Python code from its repository (its config maps an Auto class to a
    module of its own: jina-reranker-v2, gte-multilingual-reranker)."""
    return bool(_config(folder).get("auto_map"))


def code_repositories(folder: Path) -> set[str]:
    """Other hub repositories whose code the checkpoint's ``auto_map`` runs (``"org/repo--module.Class"``: e.g.
    gte-multilingual's modules live in a repository of their own). transformers fetches such code at that
    repository's ``main`` unless it is given a ``code_revision``, so each must be pinned as well."""
    entries = _config(folder).get("auto_map") or {}
    values = [v for value in entries.values() for v in (value if isinstance(value, list) else [value]) if v]
    return {str(v).split("--", 1)[0] for v in values if "--" in str(v)}
