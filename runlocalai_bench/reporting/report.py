"""The bundle's report, in the order an editor reads it: the headline table and the paragraph that sums it up,
the verdict on each published claim as a sentence linked to the row behind it, a block to cite, the figures,
then what was run and the detailed tables. Written as report.md and as one self-contained report.html.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from runlocalai_bench.environment import device_profile, git_state
from runlocalai_bench.params import Params, read_params
from runlocalai_bench.paths import scrub
from runlocalai_bench.reporting.claims import CONSISTENT, GROUPS, INCONCLUSIVE, load_claims, sentence, verdicts
from runlocalai_bench.reporting.figures import Figure, all_figures
from runlocalai_bench.reporting.headline import clean_hardware, headline_table, summary_sentences
from runlocalai_bench.reporting.hosted import hosted_blocks
from runlocalai_bench.reporting.load import EXPLANATION as LOAD_EXPLANATION
from runlocalai_bench.reporting.load import NUMERIC as LOAD_NUMERIC
from runlocalai_bench.reporting.load import load_display, load_rows
from runlocalai_bench.reporting.memory import EXPLANATION as MEMORY_EXPLANATION
from runlocalai_bench.reporting.memory import NUMERIC as MEMORY_NUMERIC
from runlocalai_bench.reporting.memory import memory_display, memory_rows
from runlocalai_bench.reporting.methods import budget_text, methods_blocks
from runlocalai_bench.perf import timing
from runlocalai_bench.reporting.page import (SCOPED_STYLE, Block, FigureBlock, Heading, Items, Note, Table, Text,
                                             render_html, render_markdown)
from runlocalai_bench.reporting.provenance import RunDescription, combined_footer, run_descriptions
from runlocalai_bench.models.facts import is_non_commercial
from runlocalai_bench.reporting.context import context_rows, keep_context_files, load_context
from runlocalai_bench.reporting.reproduction import (
    keep_reference_files, load_references, references_path, reproduction_table,
)
from runlocalai_bench.quality.summary import MACRO
from runlocalai_bench.rerankers.hosted import HOSTED_VARIANT
from runlocalai_bench.rerankers.registry import REFERENCE_VARIANT, is_served
from runlocalai_bench.results.bundle import Bundle, write_json
from runlocalai_bench.results.digest import tables_digest
from runlocalai_bench.results.tables import COLUMNS, TABLES, BundleError, read_table, write_table
from runlocalai_bench.units import MISSING, duration_ms, duration_s, interval, mib_to_bytes, percent, rate, sig, size


def load_tables(root: Path) -> dict[str, pd.DataFrame]:
    return {name: read_table(root, name) for name in TABLES}


def environments(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """run_id -> environment fingerprint (a merged bundle keeps one per pooled run)."""
    pooled = bundle.root / "environments"
    if pooled.is_dir():
        return {p.stem: json.loads(p.read_text()) for p in sorted(pooled.glob("*.json"))}
    params = bundle.params()
    return {params.run_id or "": bundle.environment()}


def _pooled_params(bundle: Bundle) -> list[Params]:
    """The parameters of every run a (merged) bundle pools."""
    pooled = bundle.root / "params"
    return [read_params(p) for p in sorted(pooled.glob("*.yaml"))] if pooled.is_dir() else [bundle.params()]


def reranking_runs(bundle: Bundle) -> dict[str, str]:
    """run_id -> reranker weights ("trained"/"random") of every pooled run that reranked at all."""
    return {p.run_id or "": p.reranker.weights for p in _pooled_params(bundle) if "rerank" in p.stages}


def run_setups(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """run_id -> the setup a claim may pin beyond what the tables record: the token limits the first stage and
    the reranker ran with (claims.SETUP_COLUMNS)."""
    return {p.run_id or "": {"first_stage_max_length": p.first_stage.max_length,
                             "reranker_max_length": p.reranker.max_length} for p in _pooled_params(bundle)}


def main_rerankers(bundle: Bundle) -> dict[str, str]:
    """run_id -> the reranker under test of every pooled run (the others in its tables are comparisons)."""
    return {p.run_id or "": p.reranker.model for p in _pooled_params(bundle)}


def node_environments(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """Device with a node class (``cpu@epyc``) -> the environment of the Ray node that ran it: those rows were
    measured there, not on the machine that wrote the bundle."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((bundle.root / "nodes").glob("*.json")):
        node = json.loads(path.read_text(encoding="utf-8"))
        if node.get("device") and node.get("node_class") and node.get("environment"):
            found.setdefault(node["device"], node["environment"])
    return found


def device_profiles(envs: dict[str, dict[str, Any]], tables: dict[str, pd.DataFrame],
                    nodes: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """"run_id|device" -> the device's profile (label, GPU class, cores) for every row of the tables; a device
    with a node class is described by the node that ran it (``nodes``, from :func:`node_environments`)."""
    profiles = {}
    nodes = nodes or {}
    for name in ("throughput", "summary"):
        for _, row in tables[name].iterrows():
            device = row.get("device") if isinstance(row.get("device"), str) else "cpu"
            env = nodes.get(device) or envs.get(row["run_id"], {})
            profiles[f"{row['run_id']}|{device}"] = device_profile(env, device)
    for run_id, env in envs.items():  # devices of executions that left no rows (skipped ones)
        for device in ("cpu", "cuda", "mps"):
            profiles.setdefault(f"{run_id}|{device}", device_profile(env, device))
    return profiles


# ------------------------------------------------------------------------------------------ display

def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    return str(value)


def headline_display(rows: pd.DataFrame, with_dataset: bool, with_run: bool) -> pd.DataFrame:
    """The headline rows in human units: one string per cell, units in the header or the cell. The reranker's
    name is in the System cell only when rows have several."""
    with_reranker = rows.loc[(rows["system"] == "rerank") & ~rows["comparison"].astype(bool), "reranker"].nunique() > 1
    out = []
    for _, r in rows.iterrows():
        first = r["system"] == "first stage"
        oracle = r["system"] == "oracle"
        notes = []
        if oracle:
            notes.append("ceiling: the candidates in their judged order")
        if r["comparison"]:
            notes.append("comparison reranker")
        if first:
            notes.append(f"{r['first_stage']} top {r['first_stage_depth']:.0f}" if pd.notna(r["first_stage_depth"])
                         else _text(r["first_stage"]))
        if r["variant"] == REFERENCE_VARIANT and not r["comparison"]:
            notes.append("reference")
        if r["system"] == "rerank" and is_served(r["variant"]):
            notes.append("served: pairs/s over whole queries, one request each (in process: pairs sampled across "
                         "queries); the same-query ratio is under Served under load")
        if r["weights"] == "random" and r["system"] == "rerank" and r["status"] == "ok":
            notes.append("random weights: speed and memory only")
        if r["status"] != "ok":
            notes.append(f"{r['status']}: {_text(r['reason'])}")
        elif r["system"] == "rerank" and pd.isna(r["pairs_per_s"]) and pd.notna(r["mfu"]):
            notes.append("timed on fixed shapes only: memory and MFU from those")
        line = {}
        if with_run:
            line["Run"] = r["run_id"]
        if with_dataset:
            line["Dataset"] = r["dataset"]
        line.update({
            "System": "first stage alone" if first else (
                f"oracle top {r['rerank_depth']:.0f}" if oracle and pd.notna(r["rerank_depth"]) else "oracle" if oracle
                else f"{r['reranker']} · {r['variant']}" if with_reranker or r["comparison"] else r["variant"]),
            "Device": clean_hardware(_text(r["hardware"])) or _text(r["device"]),
            "nDCG@10 [95% CI]": (f"{r['ndcg10']:.3f} {interval(r['ndcg10_ci_low'], r['ndcg10_ci_high'])}"
                                 + (f", {int(r['n_queries'])} queries" if pd.notna(r.get("n_queries")) else "")
                                 if pd.notna(r["ndcg10"]) else MISSING),
            "Lift over first stage [95% CI]": (
                f"{percent(r['lift_rel'], signed=True)} "
                f"{interval(r['lift_rel_ci_low'], r['lift_rel_ci_high'], lambda v: percent(v, signed=True))}"
                if pd.notna(r["lift_rel"]) else MISSING),
            "Kendall τ / top-10 vs fp32": (f"{r['kendall_tau']:.3f} / {r['top10_overlap']:.2f}"
                                           if pd.notna(r["kendall_tau"]) else MISSING),
            "Pairs/s": rate(r["pairs_per_s"]),
            "Latency p50 / p99": (f"{duration_ms(r['latency_p50_ms'])} / "
                                  + (duration_ms(r['latency_p99_ms']) if pd.notna(r["latency_p99_ms"]) else "n too small")
                                  if pd.notna(r["latency_p50_ms"]) else MISSING),
            "Peak memory": (f"{size(r['peak_memory_bytes'])} ({r['memory_kind']})"
                            if pd.notna(r["peak_memory_bytes"]) else MISSING),
            "Model's share": size(r["model_memory_bytes"]) if pd.notna(r.get("model_memory_bytes")) else MISSING,
            "File": size(r["file_bytes"]),
            "MFU": percent(r["mfu"], digits=2),
            "Precision": _text(r["executed_precision"]) or MISSING,
            "Notes": "; ".join(notes),
        })
        out.append(line)
    frame = pd.DataFrame(out)
    # The device column says it once (in the line above the table) when every measured row shares it.
    if "Device" in frame and len(frame) > 1 and frame["Device"].replace("", pd.NA).nunique() <= 1:
        frame = frame.drop(columns="Device")
    if "Notes" in frame and (frame["Notes"] == "").all():
        frame = frame.drop(columns="Notes")
    return frame


HEADLINE_NUMERIC = {"nDCG@10 [95% CI]", "Lift over first stage [95% CI]", "Kendall τ / top-10 vs fp32", "Pairs/s",
                    "Latency p50 / p99", "Peak memory", "Model's share", "File", "MFU"}

# Detailed tables: how each column reads (anything else: 4 significant digits, strings as they are).
FORMATS: dict[str, Callable[[Any], str]] = {
    **{c: duration_ms for c in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "ms_per_query")},
    **{c: (lambda v: size(mib_to_bytes(v))) for c in ("peak_rss_mb", "peak_vram_mb", "estimate_mb", "model_memory_mb")},
    **{c: size for c in ("model_bytes", "file_bytes")},
    "mfu": lambda v: percent(v, digits=2), "load_s": duration_s, "seconds": duration_s,
    **{c: (lambda v: f"{v / 1e6:,.1f} M") for c in ("params_total", "params_embedding", "params_non_embedding")},
    "file_ratio": lambda v: percent(v, digits=2),
    **{c: (lambda v: percent(v, signed=True)) for c in ("lift_rel", "lift_rel_ci_low", "lift_rel_ci_high")},
}


def detail_display(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    frame = frame[[c for c in columns if c in frame.columns]]
    shown = {}
    for column in frame.columns:
        fmt = FORMATS.get(column)
        shown[column] = [
            (MISSING if pd.isna(v) else fmt(v)) if fmt and not isinstance(v, str)
            else (sig(v, 4) if isinstance(v, float) and not pd.isna(v) else ("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)))
            for v in frame[column]]
    return pd.DataFrame(shown, columns=list(frame.columns))


def _numeric_columns(frame: pd.DataFrame) -> set[str]:
    return {c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and c not in ("run_id",)}


def table_text(bundle: Path, table: str, every: bool = False) -> str:
    """A bundle's table as text for a terminal (``runlocalai-bench show``): the headline at each run's headline
    level (``every``: every dataset's rows too), or another table's contract columns (``every``: all)."""
    if table not in TABLES:
        raise BundleError(f"no table {table!r}; a bundle has: {', '.join(TABLES)}")
    if not (Path(bundle) / "tables" / f"{table}.parquet").is_file():
        raise BundleError(f"{bundle}: no tables/{table}.parquet (not a finished bundle, or one from an older version: "
                          "`runlocalai-bench finalize BUNDLE` rebuilds its tables)")
    frame = read_table(Path(bundle), table)
    if table == "headline":
        rows = frame if every else frame[frame["level"].astype(bool)]
        several = rows["run_id"].nunique() > 1
        shown = headline_display(rows, with_dataset=every or several, with_run=several)
    else:
        columns = COLUMNS[table] + ([c for c in frame.columns if c not in COLUMNS[table]] if every else [])
        shown = detail_display(frame, columns)
    if shown.empty:
        return f"tables/{table} has no rows"
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.max_colwidth", 60):
        return shown.to_string(index=False)


# ----------------------------------------------------------------------------------------- sections

def detail_section(tables: dict[str, pd.DataFrame], name: str, title: str, columns: list[str],
                   text: str | None = None, always: bool = False) -> list[Block]:
    """One "Detailed tables" section: a heading, an optional note and the table's chosen columns, each row
    anchored as ``<name>-<index>`` so verdict sentences can link to the row that decided them. Optional tables
    (comparisons, model, depth) are left out when empty; the core ones stay, so an empty one is visibly empty."""
    frame = tables[name]
    if frame.empty and not always:
        return []
    blocks: list[Block] = [Heading(title, 3)]
    if text:
        blocks.append(Text(text))
    numeric = _numeric_columns(frame[[c for c in columns if c in frame]])
    blocks.append(Table(detail_display(frame, columns), row_ids=[f"{name}-{i}" for i in frame.index],
                        numeric=numeric))
    return blocks


REPORT_RECORD = "report.json"  # who built the report: the commit, and the tables digest it cites


def report_commit_of(root: Path) -> str | None:
    """The commit a bundle's report was built at, as recorded when it was built (None for older bundles)."""
    path = Path(root) / REPORT_RECORD
    return json.loads(path.read_text(encoding="utf-8")).get("commit") if path.is_file() else None


def built_by() -> str:
    """The commit of the code building a report now (short, "+dirty" with uncommitted changes): the verdicts,
    headline and figures are derived when the report is built (by a run, ``finalize`` or ``merge``), which can
    be later than, and by other code than, the runs that measured."""
    state = git_state()
    return (state.get("commit") or "unknown")[:10] + ("+dirty" if state.get("dirty") else "")


def cite_text(descriptions: list[RunDescription], digest: str, report_commit: str | None = None) -> str:
    """The block an editor pastes: what was measured, by which runs, on what, with which code, and the digest
    that pins the exact tables (``runlocalai-bench cite BUNDLE`` recomputes it)."""
    runs = ", ".join(d.run_id for d in descriptions)
    rerankers = sorted({d.reranker for d in descriptions if d.reranker})
    hardware = sorted({h for d in descriptions for h in d.hardware})
    dates = sorted({d.date for d in descriptions if d.date})
    commits = sorted({d.commit for d in descriptions if d.commit})
    subject = f"Reranker benchmark of {', '.join(rerankers)}" if rerankers else "First-stage retrieval benchmark"
    return (f"{subject}. runlocalai-bench run{'s' if len(descriptions) > 1 else ''} {runs}, measured "
            f"{' to '.join(dict.fromkeys([dates[0], dates[-1]])) if dates else 'on an unrecorded date'} on "
            f"{'; '.join(hardware)}; code commit {', '.join(commits)}"
            + (" (with uncommitted changes)" if any(c.endswith("+dirty") for c in commits) else "")
            + (f"; verdicts, headline and figures derived at commit {report_commit}"
               + (" (with uncommitted changes)" if report_commit.endswith("+dirty") else "")
               if report_commit and set(commits) != {report_commit} else "")
            + f". Tables digest {digest} (SHA-256 over the bundle's tables/*.csv but the execution log runs.csv).")


def verdict_items(table: pd.DataFrame) -> list[tuple[str, str | None, str | None]]:
    """One item per verdict: the statement, the verdict as a sentence, how it was read, what would change it;
    linked to the table row behind it."""
    items = []
    for index, v in table.iterrows():
        text = f"**{v['text']}** — {sentence(v)}"
        note = _text(v["note"])
        if note:
            text += f" _({note[0].upper() + note[1:]}.)_"
        needed = v.get("holds_from_n")
        if v["verdict"] in (CONSISTENT, INCONCLUSIVE) and needed is not None and pd.notna(needed):
            text += f" \"Holds\" is reachable from about {int(needed):,} queries at this spread."
        if _text(v.get("would_change")):
            text += f" Would change with: {v['would_change']}."
        if _text(v.get("rule")):
            text += f" Rule: {v['rule']}."
        items.append((text, f"verdict-{index}", _text(v["anchor"]) or None))
    return items


def claims_blocks(verdict_table: pd.DataFrame, unmeasurable: list[tuple[str, str]]) -> list[Block]:
    """The verdicts grouped as the claims file groups them (model facts, quality, speed, memory, quantization,
    comparisons), a tally per verdict, then the statements no benchmark can check, with why."""
    blocks: list[Block] = []
    counts = verdict_table["verdict"].value_counts()
    blocks.append(Text("Verdicts: " + ", ".join(f"{n} {label}" for label, n in counts.items()) + "."))
    for group in GROUPS:
        rows = verdict_table[verdict_table["group"] == group]
        if rows.empty:
            continue
        blocks += [Heading(group[0].upper() + group[1:], 3, anchor=f"claims-{group.replace(' ', '-')}"),
                   Items(verdict_items(rows))]
    if unmeasurable:
        blocks += [Heading("Not measurable by this suite", 3, anchor="claims-unmeasurable"),
                   Items([(f"**{text}** — {reason}.", None, None) for text, reason in unmeasurable])]
    return blocks


def build_report(bundle_dir: str | Path, claims_path: str | Path | None = None) -> dict[str, Any]:
    """Write tables/headline, the figures, report.md and report.html into the bundle; return what was
    written (figure ids, the verdicts, the headline, the digest)."""
    bundle = Bundle(Path(bundle_dir))
    params = bundle.params()
    tables = load_tables(bundle.root)
    envs = environments(bundle)
    env = envs.get(params.run_id or "", next(iter(envs.values())))
    descriptions = run_descriptions(bundle)
    weights = reranking_runs(bundle)
    profiles = device_profiles(envs, tables, node_environments(bundle))
    main = main_rerankers(bundle)
    headline = headline_table(tables, {d.run_id: d.datasets for d in descriptions}, profiles, weights, main)
    write_table(bundle.root, "headline", headline)
    tables["headline"] = read_table(bundle.root, "headline")
    footer = combined_footer(descriptions)
    memory_line = env.get("cpu", {}).get("memory_gb")
    if any(str(d).startswith("cuda") for d in tables["throughput"].get("device", [])) and env.get("gpus"):
        memory_line = env["gpus"][0]["memory_gb"]
    claims_path = claims_path or params.claims
    verdict_table, claimed_lift, unmeasurable = pd.DataFrame(), None, []
    if claims_path:
        claims = load_claims(claims_path)
        unmeasurable = [(u.text, u.reason) for u in claims.unmeasurable]
        verdict_table = verdicts(claims, tables, weights, profiles, run_setups(bundle))
        lift = next((c for c in claims.claims if c.table == "summary" and c.column == "lift_rel"), None)
        if lift and lift.low is not None and lift.high is not None:
            claimed_lift = (lift.low, lift.high)
    figures = all_figures(tables, bundle.figures_dir, footer, memory_line * 1024 if memory_line else None, claimed_lift,
                          set(main.values()))
    # The verdicts are a table too, so the digest pins them (a changed claims file changes it).
    write_table(bundle.root, "verdicts", verdict_table.reindex(columns=COLUMNS["verdicts"]))
    references = load_references(params.references)
    tables["reproduction"] = reproduction_table(tables["summary"], references, bundle.root)
    write_table(bundle.root, "reproduction", tables["reproduction"])
    keep_reference_files(references, set(tables["reproduction"]["reference"]), params.references, bundle.root)
    measured = set(tables["model"]["reranker"].dropna()) if "reranker" in tables.get("model", pd.DataFrame()) else set()
    tables["context"] = context_rows(load_context(references_path(params.references)), measured)
    keep_context_files(references_path(params.references), set(tables["context"]["file"]), bundle.root)
    digest = tables_digest(bundle.root)
    report_commit = built_by()
    write_json(bundle.root / REPORT_RECORD, {"commit": report_commit, "tables_digest": digest})
    blocks = report_blocks(bundle, params.run_id or "", descriptions, weights, tables, verdict_table, figures,
                           digest, Path(claims_path).name if claims_path else None, unmeasurable, report_commit)
    title = f"runlocalai-bench report: {params.run_id}"
    (bundle.root / "report.md").write_text(scrub(render_markdown(blocks)), encoding="utf-8")
    toc = [("headline", "Headline"), ("claims", "Claims"), ("reproduction", "Reproduction"), ("methods", "Methods"),
           ("cite", "Cite"),
           ("figures", "Figures"),
           ("what-was-run", "What was run"), ("details", "Detailed tables")]
    (bundle.root / "report.html").write_text(scrub(render_html(blocks, title, toc)), encoding="utf-8")
    return {"figures": [f.id for f in figures if f.drawn], "verdicts": verdict_table, "headline": headline,
            "digest": digest, "sections": html_sections(blocks)}


def reproduction_display(table: pd.DataFrame, with_run: bool) -> pd.DataFrame:
    """The reproduction rows as an editor quotes them: published values as published (0.64508, 0.8), measured
    ones to five decimals, each with its CI, the difference signed."""
    shown = pd.DataFrame({
        "run": table["run_id"], "dataset": table["dataset"],
        "system": [f"{r} ({v} on {d})" if isinstance(r, str) and r else s
                   for s, r, v, d in zip(table["system"], table["reranker"], table["variant"], table["device"])],
        "compared": table["compared"], "queries": [f"{int(n):,}" for n in table["n_queries"]],
        "measured [95% CI]": [f"{m:.5f} [{lo:.5f}, {hi:.5f}]" for m, lo, hi in
                              zip(table["measured"], table["measured_ci_low"], table["measured_ci_high"])],
        "published": [format(v, "g") for v in table["published"]],
        "difference [95% CI]": [f"{d:+.5f} [{lo:+.5f}, {hi:+.5f}]" for d, lo, hi in
                                zip(table["diff"], table["diff_ci_low"], table["diff_ci_high"])],
        "tolerance": [f"±{t:g}" for t in table["tolerance"]], "verdict": table["verdict"],
        "protocol differences": [d + (f" ({n})" if isinstance(n, str) and n else "")
                                 for d, n in zip(table["differences"], table.get("note", [""] * len(table)))],
        "reference": table["reference"]})
    return shown if with_run else shown.drop(columns=["run"])


def reproduction_blocks(table: pd.DataFrame, several_runs: bool) -> list[Block]:
    """The report's reproduction section: what the run measured next to what was published for the same setup."""
    blocks: list[Block] = [Heading("Reproduction", anchor="reproduction")]
    if table.empty:
        blocks.append(Text("No row of this run has a published counterpart in params/references/ (same dataset, "
                           "same first-stage model, same reranker)."))
        return blocks
    counts = table["verdict"].value_counts()
    tally = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    blocks.append(Text(f"Rows with a published counterpart ({tally}): the measured nDCG@10 (or a reranker's lift "
                       "over its first stage, where the published first stage is not reproducible) with its 95% "
                       "bootstrap CI, the published value, their difference and its CI. Reproduces = the whole "
                       "query set, the difference within the file's tolerance and no protocol difference ('within "
                       "tolerance (protocol differs)' when there is one); differs = outside it (or a "
                       "sample's whole CI outside it); consistent (sample) = a query sample whose CI overlaps the "
                       "tolerance. Protocol differences between the run and the reference are listed per row; "
                       "sources are quoted in the reference files (copied into this bundle's references/)."))
    blocks.append(Table(reproduction_display(table, several_runs), row_ids=[f"reproduction-{i}" for i in table.index],
                        anchor="reproduction-table", numeric={"queries", "published", "tolerance"}))
    sources = sorted(set(zip(table["reference"], table["source"])))
    blocks.append(Text("\n".join(f"- `{name}`: {source}" for name, source in sources), "small"))
    return blocks


def with_licences(comparisons: pd.DataFrame, model: pd.DataFrame) -> pd.DataFrame:
    """``comparisons`` with each comparison reranker's licence and parameter count (tables/model) beside it, a
    non-commercial licence marked so that an editor does not recommend it without saying so."""
    if comparisons.empty or model.empty or not {"reranker", "licence"} <= set(model.columns):
        return comparisons
    facts = model.dropna(subset=["licence"]).drop_duplicates("reranker").set_index("reranker")
    licence = facts["licence"].map(lambda text: f"NON-COMMERCIAL: {text}" if is_non_commercial(text) else text)
    out = comparisons.copy()
    out["baseline_licence"] = out["baseline"].map(licence)
    out["baseline_params"] = out["baseline"].map(facts["params_total"]) if "params_total" in facts else None
    return out


def context_blocks(context: pd.DataFrame) -> list[Block]:
    """Published comparisons of the run's rerankers on other candidates (reporting/context.py): shown, never
    compared with a measured row."""
    if context.empty:
        return []
    blocks: list[Block] = [Heading("Published context (not reproduction targets)", level=3, anchor="published-context"),
                           Text("Other sources' comparisons of this run's rerankers, each on its own first stage and "
                                "benchmarks (named per row): they explain why published rankings disagree and are "
                                "not targets; the run's own comparisons on identical candidates are in "
                                "tables/comparisons. Values as published (nDCG@10, percent).")]
    shown = context[["reranker", "benchmark", "published", "setup", "source"]].copy()
    shown["published"] = [f"{v:.2f}" for v in shown["published"]]  # as the sources print them: 65.80
    blocks.append(Table(shown, anchor="context-table", numeric={"published"}))
    notes = sorted({(f, n) for f, n in zip(context["file"], context["note"]) if isinstance(n, str) and n})
    if notes:
        blocks.append(Text("\n".join(f"- `{name}`: {note}" for name, note in notes), "small"))
    return blocks


def html_sections(blocks: list[Block]) -> dict[str, str]:
    """The page's top-level sections (by their heading's anchor) as HTML fragments with the page's style, for
    the report notebook to show inline: a researcher reads the report in JupyterLab without opening a file."""
    sections: dict[str, list[Block]] = {}
    current = "top"
    for block in blocks:
        if isinstance(block, Heading) and block.level == 2 and block.anchor:
            current = block.anchor
        sections.setdefault(current, []).append(block)
    return {name: scrub(f"<div class='runlocalai-report'><style>{SCOPED_STYLE}</style>"
                        + "".join(b.html() for b in section) + "</div>") for name, section in sections.items()}


def hosted_records(bundle: Bundle, tables: dict[str, pd.DataFrame]) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """("run_id|reranker" -> how each hosted reranker was called, as its stage record says), and the hosted
    executions that scored nothing, with why (from tables/runs: pooled bundles keep it there)."""
    run_id = bundle.params().run_id or "" if bundle.params_path.is_file() else ""
    settings = {f"{run_id}|{meta['baseline']}": meta["hosted"].get("settings", {})
                for meta in bundle.all_stage_meta().values() if meta.get("hosted") and meta.get("baseline")}
    runs = tables["runs"]
    skipped = []
    if not runs.empty and "reranker" in runs:
        hosted_runs = runs[(runs["variant"] == HOSTED_VARIANT) & (runs["status"] != "ok")]
        skipped = [(str(r["reranker"]), str(r["reason"])) for _, r in hosted_runs.iterrows()]
    return settings, skipped


def report_blocks(bundle: Bundle, run_id: str, descriptions: list[RunDescription], weights: dict[str, str],
                  tables: dict[str, pd.DataFrame], verdict_table: pd.DataFrame, figures: list[Figure], digest: str,
                  claims_name: str | None, unmeasurable: list[tuple[str, str]] = (), report_commit: str | None = None) -> list[Block]:
    headline = tables["headline"]
    several_runs = headline["run_id"].nunique() > 1
    level = headline[headline["level"].astype(bool)]
    per_dataset = headline[~headline["level"].astype(bool)]
    blocks: list[Block] = [Heading(f"runlocalai-bench report: {run_id}", 1)]
    what = "; ".join(d.measured() for d in descriptions)
    blocks.append(Text(f"What was measured: {what}. Details and provenance below.", "lede"))
    blocks.append(Heading("Headline", anchor="headline"))
    summary = summary_sentences(headline, tables["comparisons"])
    if summary:
        blocks.append(Text(" ".join(summary), "lede"))
    level_name = ("each run's macro-average over its datasets" if (level["dataset"] == MACRO).any()
                  else "the run's dataset")
    shown = headline_display(level, with_dataset=several_runs, with_run=several_runs)
    rerankers = sorted({str(r) for r in level.loc[(level["system"] == "rerank") & ~level["comparison"].astype(bool),
                                                  "reranker"].dropna()})
    hardware = sorted({clean_hardware(h) for h in level["hardware"].dropna() if h})
    context = (f"Reranker {', '.join(rerankers)}" if rerankers else "") + (
        f" on {'; '.join(hardware)}" if "Device" not in shown.columns and hardware else "")
    if context:
        blocks.append(Text(f"{context}; one row per system at {level_name}."))
    blocks.append(Table(shown, row_ids=[f"headline-{i}" for i in level.index], anchor="headline-table",
                        numeric=HEADLINE_NUMERIC))
    blocks.append(Text(f"Best quality first (then fastest); the first stage alone and the oracle ceiling (the "
                       "candidates in the order of their relevance judgments: the most reranking them can reach) "
                       "close each group as references. nDCG@10 with its "
                       "95% bootstrap CI; lift = paired relative lift over the first stage on the same queries; "
                       "Kendall τ and top-10 overlap = agreement of the variant's ranking with torch-fp32's on the "
                       "same pairs; pairs/s end to end on the run's candidates (tokenization included); latency = "
                       f"one query's candidates as one request (p50 / p99; p99 only from {timing.min_samples(99)}+ requests, "
                       "else 'n too small'); peak memory = the process's peak during the job "
                       "(interpreter, libraries and the run's texts included); model's share = that peak minus what "
                       "the process held before the model was loaded (section Memory); file = the "
                       "file the variant ran from (1 GB = 10⁹ bytes); MFU = achieved over the hardware's theoretical "
                       "peak for the precision. On a macro-average row: pairs/s over all the datasets' timed pairs, "
                       "latency = the mean of the datasets' medians / the worst dataset's p99, memory = the largest "
                       "peak. Raw values: tables/headline.csv.", "small"))
    if any(w == "random" for w in weights.values()):
        blocks.append(Note("**Random weights (shape twin):** runs "
                           f"{', '.join(r for r, w in weights.items() if w == 'random')} used the real architecture "
                           "with random weights; their speed and memory are the real model's, and no quality numbers "
                           "are reported for them, because a random-weight model's scores carry no relevance."))
    budget = bundle.budget()
    budgets = ({bundle.params().run_id or "": budget_text(bundle.params().run_id or "", budget,
                                                           bundle.stage_meta("first_stage") if
                                                           (bundle.stages_dir / "first_stage.json").is_file() else None)}
               if budget else {})
    if budget:
        blocks.append(Note(f"**Sampled under a time budget ({budget['budget_s'] / 3600:.3g} h):** each execution "
                           "evaluated as many queries as its share paid for, and a dataset marked '(reduced corpus)' "
                           "was retrieved from a reduced corpus; see Methods for the samples and what they do to "
                           "the intervals."))
    if any(d.reranker and "tiny random test model" in d.reranker for d in descriptions):
        blocks.append(Note("**Test model:** a reranker here is a tiny random-initialised test checkpoint; its quality "
                           "numbers only exercise the pipeline and say nothing about any real model."))
    blocks.append(Heading("Claims", anchor="claims"))
    if verdict_table.empty:
        blocks.append(Text("No claims file was given for this run."))
    else:
        blocks.append(Text(f"Each published statement from `{claims_name}` with its verdict: holds / contradicted "
                           "(the value, or its interval: the 95% CI, or for speed the spread of the timed rounds, "
                           "lies wholly inside / outside the claimed range), consistent (the estimate is inside, "
                           "the interval reaches past a bound), inconclusive (the estimate is outside, the interval "
                           "reaches inside), not tested on this hardware, not tested for want of a hosted API's key, not "
                           "measurable with random weights, or "
                           "no matching run (the evidence says which filter found nothing). Each states the rule "
                           "that decided it, in the claims file's terms, and links to the table row behind it."))
        blocks += claims_blocks(verdict_table, unmeasurable)
    blocks += reproduction_blocks(tables["reproduction"], several_runs)
    blocks += context_blocks(tables.get("context", pd.DataFrame()))
    blocks += methods_blocks(_pooled_params(bundle), descriptions, tables, budgets)
    blocks.append(Heading("Cite this", anchor="cite"))
    blocks.append(Text(f"```text\n{cite_text(descriptions, digest, report_commit)}\n```", "cite"))
    blocks.append(Heading("Figures", anchor="figures"))
    for figure in figures:
        svg = bundle.figures_dir / f"{figure.id}.svg"
        blocks.append(FigureBlock(figure.id, figure.title, figure.caption, svg if figure.drawn else None, figure.reason))
    memory = memory_rows(tables["throughput"])
    if not memory.empty:
        blocks.append(Heading("Memory", anchor="memory"))
        blocks.append(Table(memory_display(memory, with_run=several_runs), numeric=MEMORY_NUMERIC))
        blocks.append(Text(MEMORY_EXPLANATION, "small"))
    served = load_rows(tables["load"], tables["throughput"])
    if not served.empty:
        blocks.append(Heading("Served under load", anchor="load"))
        blocks.append(Table(load_display(served, with_run=several_runs), numeric=LOAD_NUMERIC))
        blocks.append(Text(LOAD_EXPLANATION, "small"))
    blocks += hosted_blocks(tables.get("hosted", pd.DataFrame()), tables["comparisons"], *hosted_records(bundle, tables))
    blocks.append(Heading("What was run", anchor="what-was-run"))
    blocks.append(Text("\n".join(f"- {d.line()}" for d in descriptions)))
    notes = [(d.run_id, n) for d in descriptions for n in d.protocol_notes]
    if notes:
        blocks.append(Heading("Evaluation protocol per dataset", 3))
        blocks.append(Text("\n".join(f"- {f'`{run}`: ' if several_runs else ''}{note}" for run, note in notes)))
    runs = tables["runs"]
    blocks.append(Heading("Executions", 3))
    blocks.append(Table(detail_display(runs, ["run_id", "stage", "reranker", "variant", "device", "status", "reason",
                                              "seconds", "reused"]), numeric={"seconds"}))
    blocks.append(Heading("Detailed tables", anchor="details"))
    if not per_dataset.empty:
        blocks.append(Heading("Headline per dataset", 3))
        blocks.append(Table(headline_display(per_dataset, with_dataset=True, with_run=several_runs),
                            row_ids=[f"headline-{i}" for i in per_dataset.index], numeric=HEADLINE_NUMERIC))
    blocks += detail_section(
        tables, "summary", "Quality (tables/summary)",
        ["run_id", "dataset", "first_stage", "first_stage_depth", "rerank_depth", "system", "reranker", "variant",
         "device", "measure", "n_queries", "mean", "ci_low", "ci_high", "lift_abs", "lift_rel", "lift_ci_low",
         "lift_ci_high", "p_value", "wins", "ties", "losses"],
        "Mean over queries with 95% bootstrap CI; lift = paired mean difference over the first stage on the same "
        "queries (CI by paired bootstrap, p by paired sign-flip randomization test). The reranked run keeps the first "
        "stage's candidates below the reranked depth in their order, so recall at the first stage's depth is the "
        "same for every system.", always=True)
    blocks += detail_section(
        tables, "drift", "Agreement with torch-fp32 (tables/drift)",
        ["run_id", "dataset", "reranker", "variant", "device", "reference", "n_pairs", "max_abs_diff",
         "mean_abs_diff", "top10_overlap", "kendall_tau"], always=True)
    blocks += detail_section(
        tables, "throughput", "Speed, memory, roofline (tables/throughput)",
        ["run_id", "dataset", "reranker", "variant", "device", "workload", "batch_size", "max_length", "mean_tokens",
         "pairs_per_s", "pairs_per_s_iqr", "latency_p50_ms", "latency_p99_ms", "peak_rss_mb", "peak_vram_mb",
         "model_memory_mb", "model_bytes", "achieved_tflops", "peak_tflops", "mfu", "executed_precision"],
        "`peak_tflops` is the hardware's theoretical peak for the precision's fastest path (the table's "
        "`peak_source` column says how it was computed: a GPU's datasheet, or cores × clock × operations per cycle "
        "from the CPU's flags). `peak_rss_mb` is the peak resident set during each job; `peak_vram_mb` the "
        "process's peak GPU memory as NVML (nvidia-smi) reports it; `model_memory_mb` that peak minus what the process "
        "held before the model was loaded (section Memory).", always=True)
    blocks += detail_section(
        tables, "load", "Served variants under load (tables/load)",
        ["run_id", "dataset", "variant", "device", "mode", "concurrency", "offered_rate", "requests", "error_rate",
         "requests_per_s", "pairs_per_s", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "goodput_per_s",
         "latency_target_ms", "peak_rss_mb", "client_cpu", "slots", "threads"],
        "One row per point of the sweep: closed loop at a concurrency, or open loop at an offered rate (requests/s, "
        "Poisson arrivals, latency from each scheduled arrival). goodput = requests/s answered within "
        "latency_target_ms; peak_rss_mb = the server process's peak during the point.")
    blocks += detail_section(
        {**tables, "comparisons": with_licences(tables["comparisons"], tables.get("model", pd.DataFrame()))},
        "comparisons", "Paired comparisons (tables/comparisons)",
        ["run_id", "dataset", "kind", "reranker", "variant", "device", "baseline", "baseline_variant",
         "baseline_licence", "baseline_params", "n_queries", "mean", "baseline_mean", "diff", "diff_ci_low",
         "diff_ci_high", "p_value", "wins", "ties", "losses", "file_ratio"],
        "nDCG@10 of the system minus its baseline on the same queries and candidates, with a paired bootstrap 95% "
        "CI and a sign-flip p: the reranker under test against each comparison reranker (baseline) and against the "
        "oracle ordering (ceiling), each variant against torch-fp32 (quantization; file_ratio = its file over "
        "torch-fp32's). baseline_licence is the comparison reranker's model-card licence: NON-COMMERCIAL marks one "
        "that may not be recommended for commercial use; baseline_params its parameter count.")
    blocks += detail_section(
        tables, "model", "The checkpoints (tables/model)",
        ["run_id", "reranker", "variant", "device", "weights", "architecture", "encoder_shape", "layers", "hidden",
         "heads", "vocab", "max_positions", "context_tokens", "params_total", "params_non_embedding", "file_bytes",
         "family", "licence", "source"],
        "Read from each checkpoint's config.json and its weight files' tensor shapes (a shape twin has the real "
        "model's config, so these are the real model's numbers); file = what the variant ran from.")
    blocks += detail_section(
        tables, "depth", "Rerank depth (tables/depth)",
        ["run_id", "dataset", "reranker", "variant", "device", "depth", "mean", "ci_low", "ci_high", "lift_abs",
         "lift_ci_low", "lift_ci_high", "pairs_per_query", "ms_per_query"])
    return blocks
