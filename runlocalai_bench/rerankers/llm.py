"""LLM rerankers (Qwen3-Reranker, mxbai-rerank-v2, bge-reranker-v2-gemma) in torch: the authors' prompt, the
next-token logits at the last position, the family's formula (rerankers/families.py).

Written by hand because no library path is right for all three here:
- sentence-transformers >= 5.6 scores a causal LM as a ``CrossEncoder`` with a ``LogitScore`` module, but only
  through a chat template with query/document roles that the model folder must ship, and it truncates the
  rendered prompt as one sequence and then restores the suffix, so a long query can push the document marker
  out. mxbai-v2's and bge-gemma's reference code use no chat template at all.
- MTEB's wrappers and the authors' own packages (mxbai-rerank, FlagEmbedding) each load their one family, with
  their own truncation rules and no control over precision or batching that the timing harness needs.

What this module does, and its reasons:
- Every segment of the prompt is tokenized on its own, as the reference code tokenizes it (BPE merges at the
  seams differ if the same text is tokenized in other pieces).
- ``max_length`` bounds the query and document tokens together, counted by the model's own tokenizer; the
  template's tokens come on top (as mxbai-rerank does) and are never cut. The same ``max_length`` is the same
  token budget, not the same text: a byte-level BPE spends more tokens than XLM-R's on some scripts (Telugu,
  Bengali), so on those an LLM reranker reads less of a long document. Over the budget, query and document are cut
  longest-first (the rule every other variant of the suite applies, ``truncate_pair``), at the end of their last
  kept token; tokenized again inside the prompt a cut can differ from the budget by a token where BPE merges
  across its ends.
  The cards cut differently (Qwen3's README cuts the end of the whole body, mxbai the query at 3/4 and then the
  document); the scores differ only for pairs over the budget.
- Left padding, with position ids counted from each pair's first real token: a padded pair then sees exactly the
  positions it sees alone. (The cards pass no position ids; rotary attention depends on position differences
  only, so that equals this up to rounding.)
- ``logits_to_keep=1``: the LM head runs on the last position only (151k vocabulary rows per token otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from runlocalai_bench.devices import synchronize
from runlocalai_bench.rerankers.base import (
    NVML, TORCH_ALLOCATOR, Features, Pair, Progress, Reranker, Scores, score_in_padded_batches, truncate_pair,
)
from runlocalai_bench.rerankers.families import PromptRule


def single_token(tokenizer: Any, text: str) -> int:
    """The id of ``text`` as one token of ``tokenizer`` (how the cards find "yes", "no", "1", "0", "Yes")."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"the tokenizer splits {text!r} into {len(ids)} tokens {ids}; the family's score reads the "
                         "logit of one token, so this is not a checkpoint of that family")
    return int(ids[0])


@dataclass
class PromptEncoder:
    """Token ids of a family's prompt for (query, document) pairs."""

    tokenizer: Any
    rule: PromptRule
    instruction: str | None = None
    _fixed: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.true_id = single_token(self.tokenizer, self.rule.true_token)
        self.false_id = single_token(self.tokenizer, self.rule.false_token) if self.rule.false_token else None
        if self.rule.bos and self.tokenizer.bos_token_id is None:
            raise ValueError(f"{self.rule.name} starts its prompt with BOS; this tokenizer has no bos_token")

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    def template_tokens(self) -> int:
        """Tokens of the prompt around an empty query and document (what ``max_length`` does not count)."""
        return len(self.encode([("", "")], 1)[0])

    def cut(self, pairs: Sequence[Pair], max_length: int) -> list[Pair]:
        """The pairs with query and document cut longest-first to ``max_length`` tokens together."""
        queries, docs = [q for q, _ in pairs], [d for _, d in pairs]
        q_enc = self.tokenizer(queries, add_special_tokens=False, return_offsets_mapping=True)
        d_enc = self.tokenizer(docs, add_special_tokens=False, return_offsets_mapping=True)
        out = []
        for query, doc, q_ids, d_ids, q_off, d_off in zip(queries, docs, q_enc["input_ids"], d_enc["input_ids"],
                                                          q_enc["offset_mapping"], d_enc["offset_mapping"]):
            if len(q_ids) + len(d_ids) <= max_length:
                out.append((query, doc))
                continue
            kept_q, kept_d = truncate_pair(q_ids, d_ids, max_length)
            out.append((query[: q_off[len(kept_q) - 1][1]] if kept_q else "",
                        doc[: d_off[len(kept_d) - 1][1]] if kept_d else ""))
        return out

    def encode(self, pairs: Sequence[Pair], max_length: int) -> list[list[int]]:
        """Prompt token ids per pair: BOS where the family has one, then each segment tokenized on its own."""
        rendered = [self.rule.render(q, d, self.instruction) for q, d in self.cut(pairs, max_length)]
        ids: list[list[int]] = [[self.tokenizer.bos_token_id] if self.rule.bos else [] for _ in rendered]
        for index in range(len(self.rule.segments)):
            texts = [segments[index] for segments in rendered]
            if "{" not in self.rule.segments[index]:  # fixed text: tokenized once
                fixed = self._fixed.setdefault(texts[0], self._ids([texts[0]])[0])
                for row in ids:
                    row.extend(fixed)
                continue
            for row, part in zip(ids, self._ids(texts)):
                row.extend(part)
        return ids

    def pad(self, rows: list[list[int]]) -> Features:
        """Left-padded ``input_ids``, ``attention_mask`` and ``position_ids`` (counted from each row's first real
        token), as torch tensors."""
        import torch

        width = max(len(r) for r in rows)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        input_ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": input_ids, "attention_mask": mask, "position_ids": positions}


@dataclass(eq=False, kw_only=True)
class LLMReranker(Reranker):
    """A causal LM scoring pairs by its family's rule, in torch."""

    model: Any
    encoder: PromptEncoder

    @property
    def rule(self) -> PromptRule:
        return self.encoder.rule

    def tokenize(self, pairs: Sequence[Pair], max_length: int) -> Features:
        return self.encoder.pad(self.encoder.encode(pairs, max_length))

    def token_lengths(self, pairs: Sequence[Pair], max_length: int) -> np.ndarray:
        return np.array([len(r) for r in self.encoder.encode(pairs, max_length)], dtype=np.int64)

    def forward(self, features: Features) -> np.ndarray:
        import torch

        features = {k: v.to(self.device) for k, v in features.items()}
        with torch.inference_mode():
            logits = self.model(**features, logits_to_keep=1, use_cache=False).logits[:, -1, :]
            scores = logits[:, self.encoder.true_id].to(torch.float32)
            if self.encoder.false_id is not None:
                scores = scores - logits[:, self.encoder.false_id].to(torch.float32)
        synchronize(self.device)
        return scores.cpu().numpy().astype(np.float32)

    def score(self, pairs: Sequence[Pair], batch_size: int, max_length: int, length_sorted: bool = True,
              progress: Progress | None = None) -> Scores:
        """As the cross-encoders score: prompts built once, batches of similar length when ``length_sorted``,
        scores back in input order."""
        rows = self.encoder.encode(pairs, max_length)
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        return score_in_padded_batches(lengths, batch_size, length_sorted,
                                       lambda index: self.encoder.pad([rows[i] for i in index]), self.forward, progress)

    def compute_precision(self) -> str:
        if self.variant.precision == "int8":
            return "int8"
        return self.variant.precision

    def memory_counters(self) -> tuple[str, ...]:
        if self.device == "cpu":
            return super().memory_counters()
        return (NVML, TORCH_ALLOCATOR)
