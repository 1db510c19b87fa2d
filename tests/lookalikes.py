"""Look-alikes of every dataset in ``params/default.yaml``: tiny source files in each dataset's real format, written
where ir_datasets looks for its downloads, so that its own loaders (``beir``, ``miracl``) read them as the real
ones. Where each file goes is read from ir_datasets' own download configuration (``etc/downloads.json``:
``cache_path`` under ``$IR_DATASETS_HOME/<module>``), not written down here: a new ir_datasets that moves a file
moves the look-alike with it.

Each carries the quirks its real dataset has (data/protocol.py says what the suite does with them):

- ArguAna: every query is a corpus document under its own id; judgments name documents the corpus lacks
  (BEIR's ArguAna has five); no train split.
- FiQA: a query id that is also a document id; train/dev/test judgments.
- SciFact: a query judged only non-relevant (grade 0); empty titles; a train split that repeats a test query.
- NFCorpus: grades 1 and 2, url metadata, a train split.
- SCIDOCS: a document id that occurs twice; grade 0 judgments; its paper metadata; no train split.
- TREC-COVID: grades -1, 0, 1, 2; empty abstracts; its topic metadata; no train split.
- MIRACL sw/bn/te/yo: passages ``<article>#<n>``, Bengali and Telugu script; a Yoruba query whose id is the id
  of a passage judged relevant to it (the rule that must never drop it); train splits for sw, bn, te only.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

WORDS = ("protein cell gene therapy vaccine virus market stock bank loan debate freedom policy school science "
         "climate energy water river city music history language health risk study trial").split()
SCRIPTS = {"bn": "জিন কোষ প্রোটিন টিকা বাজার নদী শহর ভাষা ইতিহাস বিজ্ঞান".split(),
           "te": "జన్యువు కణం ప్రోటీన్ టీకా మార్కెట్ నది నగరం భాష చరిత్ర శాస్త్రం".split(),
           "sw": "jeni seli protini chanjo soko mto mji lugha historia sayansi".split(),
           "yo": "ẹ̀dá sẹ́ẹ̀lì amuaradagba abẹ́rẹ́ ọjà odò ìlú èdè ìtàn sáyẹ́ǹsì".split()}


def _text(words: list[str], seed: int, n: int = 12) -> str:
    return " ".join(words[(seed * 7 + i * 3) % len(words)] for i in range(n))


@dataclass
class LookAlike:
    """One dataset's look-alike: what was written, and the quirks a test checks against."""

    dataset_id: str
    docs: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (title, text), last record wins
    queries: dict[str, dict[str, str]] = field(default_factory=dict)  # split -> {id: text}
    qrels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # split -> {q: {d: grade}}
    self_ids: list[str] = field(default_factory=list)  # query ids that are also document ids
    missing: list[tuple[str, str]] = field(default_factory=list)  # (query, judged document absent from the corpus)
    duplicates: list[str] = field(default_factory=list)
    zero_positive: list[str] = field(default_factory=list)
    relevant_self_id: str | None = None  # a query whose own id is a passage judged relevant to it (MIRACL yo)
    repeated: str | None = None  # a test query repeated (same id and text) in the train split
    clashing: str | None = None  # a train query id that is also a dev query id, with another text


def _downloads() -> dict:
    import ir_datasets

    return json.loads((Path(ir_datasets.__file__).parent / "etc" / "downloads.json").read_text())


def _beir(home: Path, name: str, splits: list[str], quirks: set[str], n_docs: int = 16, n_queries: int = 5) -> LookAlike:
    dataset_id = f"beir/{name}" + ("/test" if len(splits) > 1 else "")
    look = LookAlike(dataset_id)
    records = []
    for i in range(n_docs):
        doc_id = f"{name[:3]}-d{i:02d}"
        title = "" if "empty_titles" in quirks and i % 3 == 0 else f"{name} title {i}"
        text = "" if "empty_text" in quirks and i % 5 == 4 else _text(WORDS, i)
        records.append({"_id": doc_id, "title": title, "text": text, "metadata": _doc_metadata(name, i)})
    per_split = {}
    for s, split in enumerate(splits):
        per_split[split] = [f"{split[:2]}{s}q{j}" for j in range(n_queries)]
    if "train_repeats_test" in quirks:  # a train query that is also a test query: calibration must leave it out
        per_split["train"].append(per_split["test"][0])
        look.repeated = per_split["test"][0]
    if "self_ids" in quirks:  # the test queries are documents of the corpus under their own ids
        test_ids = per_split["test"]
        for j, query_id in enumerate(test_ids[:3]):
            records.append({"_id": query_id, "title": f"argument {j}", "text": _text(WORDS, 100 + j),
                            "metadata": _doc_metadata(name, 100 + j)})
            look.self_ids.append(query_id)
    if "duplicates" in quirks:
        records.append({**records[1], "text": records[1]["text"] + " revised"})
        look.duplicates.append(records[1]["_id"])
    doc_ids = [r["_id"] for r in records]
    for record in records:
        look.docs[record["_id"]] = (record["title"], record["text"])
    queries, qrels = [], {}
    for split, ids in per_split.items():
        look.queries[split], look.qrels[split] = {}, {}
        for j, query_id in enumerate(ids):
            text = look.docs[query_id][1] if query_id in look.docs else _text(WORDS, 50 + j + 10 * len(split), 6)
            if query_id == look.repeated:
                text = _text(WORDS, 50 + 10 * len("test"), 6)  # the test query's text
            look.queries[split][query_id] = text
            queries.append({"_id": query_id, "text": text, "metadata": _query_metadata(name, j)})
            grades = {doc_ids[(j * 3) % n_docs]: 2 if "graded" in quirks else 1, doc_ids[(j * 3 + 1) % n_docs]: 1}
            if "grade_zero" in quirks:
                grades[doc_ids[(j * 3 + 2) % n_docs]] = 0
            if "grade_minus_one" in quirks and j == 0:
                grades[doc_ids[5]] = -1
            look.qrels[split][query_id] = grades
        if split == "test" and "zero_positive" in quirks:
            query_id = ids[-1]
            look.qrels[split][query_id] = {doc_ids[0]: 0, doc_ids[1]: 0}
            look.zero_positive.append(query_id)
        if split == "test" and "missing_docs" in quirks:
            for query_id in ids[:2]:
                absent = f"{query_id}-con03b"
                look.qrels[split][query_id][absent] = 1
                look.missing.append((query_id, absent))
    target = home / "beir" / _downloads()["beir"][name]["cache_path"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(f"{name}/corpus.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        archive.writestr(f"{name}/queries.jsonl", "".join(json.dumps(q) + "\n" for q in queries))
        for split, judged in look.qrels.items():
            lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, docs in judged.items() for d, g in docs.items()]
            archive.writestr(f"{name}/qrels/{split}.tsv", "\n".join(lines) + "\n")
    return look


def _doc_metadata(name: str, i: int) -> dict:
    if name == "scidocs":
        return {"authors": [f"a{i}"], "year": 2000 + i, "cited_by": [], "references": []}
    if name == "trec-covid":
        return {"url": f"https://example.org/{i}", "pubmed_id": str(1000 + i)}
    if name == "nfcorpus":
        return {"url": f"https://example.org/{i}"}
    return {}


def _query_metadata(name: str, j: int) -> dict:
    if name == "scidocs":
        return {"authors": [], "year": 2010, "cited_by": [], "references": []}
    if name == "trec-covid":
        return {"query": f"topic {j}", "narrative": "what the topic asks"}
    if name == "nfcorpus":
        return {"url": f"https://example.org/q{j}"}
    return {}


def _miracl(home: Path, lang: str, splits: list[str], n_articles: int = 6, n_queries: int = 4) -> LookAlike:
    look = LookAlike(f"miracl/{lang}/dev")
    config = _downloads()["miracl"]
    words = SCRIPTS[lang]
    passages = [(f"{a}#{p}", f"{words[a % len(words)]} {a}", _text(words, a * 3 + p, 10))
                for a in range(n_articles) for p in range(3)]
    doc_files = sorted(k for k in config if k.startswith(f"v1.0/{lang}/corpus/"))
    for n, key in enumerate(doc_files):  # spread the passages over every file the language has
        part = passages[n::len(doc_files)]
        target = home / "miracl" / config[key]["cache_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(target, "wt", encoding="utf-8") as handle:
            for doc_id, title, text in part:
                handle.write(json.dumps({"docid": doc_id, "title": title, "text": text}, ensure_ascii=False) + "\n")
    for doc_id, title, text in passages:
        look.docs[doc_id] = (title, text)
    ids = [p[0] for p in passages]
    for s, split in enumerate(splits):
        queries = {str(100 * s + j): _text(words, 40 + j + 5 * s, 5) for j in range(n_queries)}
        if lang == "sw" and split == "train":  # an id the dev split uses too, for another question
            look.clashing = str(100 * splits.index("dev"))
            queries[look.clashing] = _text(words, 90, 5)
        judged = {q: {ids[(j * 4) % len(ids)]: 1, ids[(j * 4 + 1) % len(ids)]: 0} for j, q in enumerate(queries)}
        if lang == "yo" and split == "dev":
            # Yoruba: a query id that is the id of a passage judged relevant to it (an identical-id filter
            # would drop the answer: bge-m3's MIRACL table lost 21 points of Yoruba nDCG@10 that way).
            query_id = ids[7]
            queries[query_id] = look.docs[query_id][1]
            judged[query_id] = {query_id: 1, ids[8]: 0}
            look.relevant_self_id = query_id
        look.queries[split], look.qrels[split] = queries, judged
        for kind, lines in (("topics", [f"{q}\t{t}" for q, t in queries.items()]),
                            ("qrels", [f"{q}\tQ0\t{d}\t{g}" for q, docs in judged.items() for d, g in docs.items()])):
            target = home / "miracl" / config[f"v1.0/{lang}/{split}/{kind}"]["cache_path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return look


def write_lookalikes(home: Path) -> dict[str, LookAlike]:
    """Every dataset of params/default.yaml under ``home`` (an ``IR_DATASETS_HOME``), keyed by its id."""
    made = [
        _beir(home, "scifact", ["train", "test"], {"empty_titles", "zero_positive", "train_repeats_test"}),
        _beir(home, "nfcorpus", ["train", "dev", "test"], {"graded"}),
        _beir(home, "arguana", ["test"], {"self_ids", "missing_docs"}),
        _beir(home, "fiqa", ["train", "dev", "test"], {"self_ids"}),
        _beir(home, "scidocs", ["test"], {"duplicates", "grade_zero"}),
        _beir(home, "trec-covid", ["test"], {"graded", "grade_zero", "grade_minus_one", "empty_text"}),
        _miracl(home, "sw", ["train", "dev"]),
        # 9 passages, fewer than the rehearsal's depth: every one is retrieved, so only a filter could drop one
        _miracl(home, "yo", ["dev"], n_articles=3),
        _miracl(home, "bn", ["train", "dev"]),
        _miracl(home, "te", ["train", "dev"]),
    ]
    return {look.dataset_id: look for look in made}
