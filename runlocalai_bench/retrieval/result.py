"""What a first stage hands on: rankings per query, the model that made them, timings."""

from __future__ import annotations

from dataclasses import dataclass, field

from runlocalai_bench.data.rankings import Ranking
from runlocalai_bench.models.refs import ModelRef


@dataclass
class FirstStageResult:
    ranking: Ranking
    model: ModelRef | None
    system: str  # "dense" | "bm25"
    cache_hit: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    search: str = ""
