"""One stage in this process: ``python -m runlocalai_bench.run.execute STAGE BUNDLE [VARIANT DEVICE [BASELINE]]``.

What the ``subprocess`` engine runs for each execution, and a way to rerun a single execution by hand (then
``runlocalai-bench finalize BUNDLE`` pools the tables and rebuilds the report). The last line written on a
failure is the error, which the runner records as the execution's reason.
"""

from __future__ import annotations

import sys
import traceback

from runlocalai_bench.errors import error_line
from runlocalai_bench.reporting.report import build_report
from runlocalai_bench.run.stages import first_stage, rerank

USAGE = ("usage: python -m runlocalai_bench.run.execute "
         "{first_stage BUNDLE | rerank BUNDLE VARIANT DEVICE [BASELINE_MODEL] | report BUNDLE}")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("first_stage", "rerank", "report"):
        print(USAGE, file=sys.stderr)
        return 2
    stage, bundle = argv[0], argv[1]
    try:
        if stage == "first_stage":
            first_stage(bundle)
        elif stage == "rerank":
            if len(argv) not in (4, 5):
                print(USAGE, file=sys.stderr)
                return 2
            outcome = rerank(bundle, argv[2], argv[3], argv[4] if len(argv) == 5 else None)
            print(f"{outcome.status}{': ' + outcome.reason if outcome.reason else ''}")
        else:
            build_report(bundle)
    except Exception as exc:  # noqa: BLE001 - the runner records the last line as the reason
        traceback.print_exc()
        print(error_line(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
