#!/usr/bin/env python
"""Measure the drills on the lab: per fault, how fast each phase really is.

For every fault (all 24, or those given) a real drill runs with a response window of 0
(``ansible-playbook drill-<scenario>.yml``), watched from the outside with kubectl and
Prometheus (tests/integration/drills/drill_runner.py). Per fault:

- inject latency: start of the task "Inject the fault" to the change confirmed in the
  API (the drill_fault module re-reads every changed object);
- symptom latency: injection to the symptom, as the drill saw it and as kubectl/Prometheus
  showed it (confirmed 10 s later);
- alert latency: injection to the seed alert firing in Prometheus;
- rollback: rollback_started to rollback_finished, and to the steady state again;
- wall time of the whole ansible-playbook run.

Figures are only what was measured on this run. Output: a markdown table and JSON under
tests/output/ (bench-drills-<UTC time>.md / .json), plus each drill's log and artifacts.

    .venv/bin/python scripts/bench_drills.py                     # every fault, 2 namespaces
    .venv/bin/python scripts/bench_drills.py --parallel 3 memory_limits logic_errors
    .venv/bin/python scripts/bench_drills.py --namespaces seo-tool-a,seo-tool-b --keep
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "drills"))

import drill_runner  # noqa: E402


def _summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return "median %.1f, max %.1f (n=%d)" % (statistics.median(values), max(values), len(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faults", nargs="*", help="fault names or scenario/variant/name keys (default: all)")
    parser.add_argument("--parallel", type=int, default=2, help="namespaces side by side (default 2)")
    parser.add_argument("--namespaces", default="", help="comma list of existing namespaces to use (kept)")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces this script creates")
    args = parser.parse_args(argv)

    lab = drill_runner.require_lab()
    keys = drill_runner.fault_keys()
    if args.faults:
        wanted = set(args.faults)
        keys = [k for k in keys if k in wanted or k.rsplit("/", 1)[1] in wanted]
        unknown = wanted - set(keys) - {k.rsplit("/", 1)[1] for k in keys}
        if unknown:
            print("unknown fault(s) %s; faults: %s" % (", ".join(sorted(unknown)),
                                                       ", ".join(drill_runner.fault_keys())), file=sys.stderr)
            return 2
    if args.namespaces:
        namespaces, created = [n.strip() for n in args.namespaces.split(",") if n.strip()], False
    else:
        fits = max(1, drill_runner.free_cpu_m(lab) // drill_runner.NAMESPACE_CPU_M)
        if fits < args.parallel:
            print("only %d namespace(s) fit in the cluster's free CPU: running %d side by side" % (fits, fits))
        namespaces, created = ["opsdrill-bench-%d" % (i + 1) for i in range(max(1, min(args.parallel, fits)))], True
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    output = REPO / "tests" / "output" / ("bench-drills-%s" % stamp)
    output.mkdir(parents=True, exist_ok=True)

    def say(message):
        print(time.strftime("%H:%M:%S ") + message, flush=True)

    say("%d fault(s) in %d namespace(s): %s" % (len(keys), len(namespaces), ", ".join(namespaces)))
    started = time.time()
    pool = drill_runner.Pool(keys, namespaces, lab, output, response_window_s=0, log=say).start()
    try:
        pool.wait()
    finally:
        if created and not args.keep:
            for namespace in namespaces:
                drill_runner.delete_namespace(lab, namespace)
    wall = time.time() - started
    results = [pool.results[k] for k in keys if k in pool.results]
    ok = [r for r in results if r.ok()]
    lines = [
        "# Drill benchmark %s" % stamp, "",
        "%d faults, %d namespaces side by side, %.0f s wall (%.1f min), %d passed. "
        "Namespace setup (setup.yml) included." % (len(results), len(namespaces), wall, wall / 60, len(ok)), "",
        drill_runner.markdown_table(results),
        "| figure | over the faults |", "|---|---|",
        "| inject latency s | %s |" % _summary(r.inject_latency_s for r in results),
        "| symptom s (drill) | %s |" % _summary(r.symptom_engine_s for r in results),
        "| symptom s (kubectl/Prometheus, confirmed) | %s |" % _summary(r.symptom_s for r in results),
        "| alert s | %s |" % _summary(r.alert_s for r in results),
        "| rollback s | %s |" % _summary(r.rollback_s for r in results),
        "| rollback to steady state s | %s |" % _summary(r.rollback_to_steady_s for r in results),
        "| wall s per drill | %s |" % _summary(r.wall_s for r in results),
    ]
    (output.parent / ("bench-drills-%s.md" % stamp)).write_text("\n".join(lines) + "\n")
    (output.parent / ("bench-drills-%s.json" % stamp)).write_text(json.dumps(
        {"stamp": stamp, "wall_s": round(wall, 1), "namespaces": namespaces,
         "results": [r.row() for r in results]}, indent=1))
    print("\n".join(lines))
    print("\nwritten: %s" % (output.parent / ("bench-drills-%s.md" % stamp)))
    return 0 if len(ok) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
