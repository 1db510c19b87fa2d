"""``runlocalai-bench``: run, plan, finalize, show, cite, variants, merge, env, gguf-converter, llama-server.

Exit codes: 0 success; 1 a run completed but some execution failed (the bundle says which); 2 bad input
or a run that could not complete (one line on stderr says why; no complete-looking bundle is left); 130 a run
interrupted with Ctrl-C (its finished executions are kept for ``--resume``).

Each subcommand imports what it needs inside its function: ``--help`` and ``variants`` stay instant instead
of loading papermill, pandas and the report stack on every call. This is the one module allowed to import
the package lazily (the architecture test enforces it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _settings(args: argparse.Namespace) -> list[str]:
    """The --set overrides, with --budget as the last (it is ``--set budget=...`` by another name)."""
    return [*(args.set or []), *([f"budget={args.budget}"] if args.budget else [])]


def _cmd_run(args: argparse.Namespace) -> int:
    from runlocalai_bench.run.runner import run

    try:
        outcome = run(args.params, args.out, _settings(args), log_output=args.verbose, resume=args.resume,
                      force=args.force, plan=not args.no_plan, from_bundle=args.from_bundle, engine=args.engine,
                      address=args.address)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    print(f"bundle: {outcome.bundle}")
    if outcome.failed:
        print(f"runlocalai-bench: {len(outcome.failed)} execution(s) failed; see {outcome.bundle}/tables/runs.csv",
              file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from runlocalai_bench.params import load_params
    from runlocalai_bench.run.plan import describe, make_plan
    from runlocalai_bench.run.prepare import absolutize

    params = absolutize(load_params(args.params, _settings(args)))
    for line in describe(make_plan(params, Path(args.from_bundle) if args.from_bundle else None), params):
        print(line)
    return EXIT_OK


def _cmd_finalize(args: argparse.Namespace) -> int:
    from runlocalai_bench.run.finalize import finalize

    print(f"finalized: {finalize(args.bundle)}")
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from runlocalai_bench.reporting.report import table_text

    print(table_text(Path(args.bundle), args.table, args.all))
    return EXIT_OK


def _cmd_cite(args: argparse.Namespace) -> int:
    from runlocalai_bench.reporting.provenance import run_descriptions
    from runlocalai_bench.reporting.report import cite_text, report_commit_of
    from runlocalai_bench.results.bundle import Bundle
    from runlocalai_bench.results.digest import tables_digest

    bundle = Bundle(Path(args.bundle))
    digest = tables_digest(bundle.root)
    print(cite_text(run_descriptions(bundle), digest, report_commit_of(bundle.root)))
    report = bundle.root / "report.html"
    if report.is_file() and digest not in report.read_text(encoding="utf-8"):
        print(f"runlocalai-bench: {report} cites another digest: its tables changed after the report was built "
              "(`runlocalai-bench finalize` rebuilds it)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _cmd_variants(args: argparse.Namespace) -> int:
    from runlocalai_bench.rerankers.registry import VARIANTS

    rows = []
    for variant in VARIANTS.values():
        missing = variant.missing_modules()
        status = "available" if not missing else f"missing {', '.join(missing)}"
        rows.append((variant.name, variant.backend, variant.precision, ",".join(variant.devices), status,
                     variant.description))
    if args.json:
        keys = ("name", "backend", "precision", "devices", "status", "description")
        print(json.dumps([dict(zip(keys, r)) for r in rows], indent=2))
        return EXIT_OK
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    header = ("variant", "backend", "precision", "devices", "status")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  description")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
    return EXIT_OK


def _cmd_env(args: argparse.Namespace) -> int:
    from runlocalai_bench.environment import fingerprint

    print(json.dumps(fingerprint(), indent=2))
    return EXIT_OK


def _cmd_merge(args: argparse.Namespace) -> int:
    from runlocalai_bench.reporting.merge import merge_bundles

    out = merge_bundles([Path(b) for b in args.bundles], Path(args.out), drop=args.drop_run)
    print(f"merged bundle: {out}")
    return EXIT_OK


def _cmd_llama_server(args: argparse.Namespace) -> int:
    from runlocalai_bench.rerankers.backends.gguf.convert import ConversionError
    from runlocalai_bench.rerankers.backends.gguf.server import ServerUnavailable, build_server

    try:
        print(build_server(log=lambda line: print(line, file=sys.stderr)))
    except (ConversionError, ServerUnavailable, ImportError) as exc:  # ImportError: the gguf extra absent
        print(f"runlocalai-bench: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _cmd_gguf_converter(args: argparse.Namespace) -> int:
    from runlocalai_bench.rerankers.backends.gguf.convert import ConversionError, converter_dir

    try:
        print(converter_dir())
    except (ConversionError, ImportError) as exc:  # ImportError: llama-cpp-python (the gguf extra) absent
        print(f"runlocalai-bench: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


FROM_RUN = ("; BUNDLE#RUN_ID takes one run of a merged bundle (without it, the run that recorded this machine's "
            "CPU)")
BUDGET_HELP = ("fit the run into this wall time (8h, 90min, 2h30m; none = no budget): each execution evaluates as "
               "many queries as its share allows, a first stage that does not fit runs on a reduced corpus; the same "
               "as --set budget=DURATION")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runlocalai-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute the notebooks for a parameter file into a results bundle")
    run.add_argument("params", help="YAML parameter file, e.g. params/smoke.yaml")
    run.add_argument("--out", help="bundle folder (default results/<run_id>)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter (dotted key); repeatable")
    run.add_argument("-v", "--verbose", action="store_true", help="stream the notebooks' output")
    run.add_argument("--resume", action="store_true",
                     help="continue the interrupted or failed run at --out (or results/<run_id>): finished executions "
                          "are reused, the rest run again")
    run.add_argument("--force", action="store_true", help="with --resume: resume even if parameters or commit differ")
    run.add_argument("--no-plan", action="store_true", help="skip the cost prediction printed before the run")
    run.add_argument("--budget", metavar="DURATION", help=BUDGET_HELP)
    run.add_argument("--from", dest="from_bundle", metavar="BUNDLE", help=f"predict from this earlier bundle's rates{FROM_RUN}")
    run.add_argument("--engine", default="papermill", choices=["papermill", "subprocess", "ray"],
                     help="papermill: each execution is a notebook in its own kernel (default); subprocess: the same "
                          "stages in plain Python processes, for machines without Jupyter; ray: each execution a task "
                          "on a Ray cluster's nodes (the `ray` extra; README, 'A Ray cluster')")
    run.add_argument("--address", metavar="HOST:PORT",
                     help="with --engine ray: the cluster's head (default: RAY_ADDRESS, else a one-node cluster here)")
    run.set_defaults(func=_cmd_run)

    plan = sub.add_parser("plan", help="predict a run's cost (time, disk, memory) per dataset, variant and device")
    plan.add_argument("params")
    plan.add_argument("--set", action="append", metavar="KEY=VALUE")
    plan.add_argument("--from", dest="from_bundle", metavar="BUNDLE",
                      help=f"use an earlier bundle's measured rates instead of (where it has them) a probe here{FROM_RUN}")
    plan.add_argument("--budget", metavar="DURATION", help=BUDGET_HELP)
    plan.set_defaults(func=_cmd_plan)

    finalize = sub.add_parser("finalize", help="pool a bundle's tables and rebuild its report after a notebook was "
                              "rerun by hand")
    finalize.add_argument("bundle")
    finalize.set_defaults(func=_cmd_finalize)

    show = sub.add_parser("show", help="print a bundle's table in human units (default: the headline)")
    show.add_argument("bundle")
    show.add_argument("table", nargs="?", default="headline")
    show.add_argument("--all", action="store_true", help="headline: every dataset's rows; other tables: every column")
    show.set_defaults(func=_cmd_show)

    cite = sub.add_parser("cite", help="print the block to cite a bundle by (runs, hardware, commit, tables digest) "
                          "and check its report cites the same digest")
    cite.add_argument("bundle")
    cite.set_defaults(func=_cmd_cite)

    variants = sub.add_parser("variants", help="list reranker variants and the devices each supports")
    variants.add_argument("--json", action="store_true")
    variants.set_defaults(func=_cmd_variants)

    env = sub.add_parser("env", help="print this machine's environment fingerprint (JSON)")
    env.set_defaults(func=_cmd_env)

    merge = sub.add_parser("merge", help="pool bundles from several machines into one")
    merge.add_argument("bundles", nargs="+")
    merge.add_argument("--out", required=True)
    merge.add_argument("--drop-run", action="append", default=[], metavar="RUN_ID",
                       help="leave this run out of the pooled inputs (repeatable); a run bundle given explicitly is kept, "
                            "so POOL RERUN --drop-run ID replaces a pooled run by its rerun")
    merge.set_defaults(func=_cmd_merge)

    converter = sub.add_parser("gguf-converter", help="fetch llama.cpp's GGUF converter for the installed "
                               "llama-cpp-python (once) and print its folder")
    converter.set_defaults(func=_cmd_gguf_converter)

    server = sub.add_parser("llama-server", help="build llama.cpp's llama-server from the installed llama-cpp-python's "
                            "source (once; 12-14 minutes on 2 cores) and print its path: the server-llama-* variants")
    server.set_defaults(func=_cmd_llama_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    from runlocalai_bench.data.collection import CollectionError
    from runlocalai_bench.models.refs import ModelNotFoundError
    from runlocalai_bench.params import ParamsError
    from runlocalai_bench.results.tables import BundleError
    from runlocalai_bench.run.budget import BudgetError
    from runlocalai_bench.run.runner import RunError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ParamsError, RunError, CollectionError, BundleError, ModelNotFoundError, BudgetError) as exc:
        for line in str(exc).splitlines():
            print(f"runlocalai-bench: {line}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
