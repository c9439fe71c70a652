#!/usr/bin/env python
"""Measure scheduled drills side by side on the lab: N team namespaces, each set up with
the runner account and the desk, each scheduled with schedule.yml for the same minute, so
that N CronJobs fire together and N drill pods (the ee image, ansible-runner) run at once.

Per namespace: whether the drill pod succeeded, the CronJob's firing (the Job's creation)
to the fault's change in the API server's audit log (by the runner's ServiceAccount), and
the firing to the Job's completion. Figures are only what was measured on this run.
Output: a markdown table on stdout and JSON under tests/output/bench-schedule-<UTC time>.json.

    .venv/bin/python scripts/bench_schedule.py --teams 3
    .venv/bin/python scripts/bench_schedule.py --teams 4 --fault outage/configuration/secret_issues --keep
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "drills"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

import drill_runner  # noqa: E402
from kubectl import Kube  # noqa: E402

ACCOUNT = "opsdrill-runner"


def say(message):
    print(time.strftime("%H:%M:%S ") + message, flush=True)


def measure(admin, lab, namespace, key, output_dir, results):
    scenario, variant, fault = key.split("/")
    drill_vars = {"scenario": scenario, "variant": variant, "fault": fault,
                  "response_window_s": 0, "postmortem_window_s": 0}
    try:
        seen = drill_runner.scheduled_drill(admin, namespace, key, drill_vars, output_dir, say)
    except AssertionError as exc:
        results[namespace] = {"namespace": namespace, "error": str(exc)[:500]}
        return
    fired = drill_runner.epoch(seen["job"]["metadata"]["creationTimestamp"])
    name = seen["entry"]["steps"][0]["object"].split("/", 1)[1]
    changes = drill_runner.audited_changes(lab["audit_log"], namespace, name, fired)
    account = "system:serviceaccount:%s:%s" % (seen["control"], ACCOUNT)
    injected = next((at for at, user in changes if user == account), None)
    completed = (seen["status"].get("completionTime") or "")
    results[namespace] = {
        "namespace": namespace, "succeeded": seen["status"].get("succeeded") == 1,
        "fired": seen["job"]["metadata"]["creationTimestamp"],
        "fired_to_injected_s": round(injected - fired, 1) if injected else None,
        "fired_to_completed_s": round(drill_runner.epoch(completed) - fired, 1) if completed else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--fault", default="outage/configuration/secret_issues")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces")
    args = parser.parse_args()
    lab = drill_runner.lab_info()
    admin = Kube(lab["kubectl"], os.environ.get("OPSDRILL_KUBECONFIG", lab["admin_kubeconfig"]))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    output_dir = REPO / "tests" / "output" / ("bench-schedule-" + stamp)
    output_dir.mkdir(parents=True)
    namespaces = ["opsdrill-team-%d" % (i + 1) for i in range(args.teams)]
    started = time.time()
    setups = [threading.Thread(target=drill_runner.fresh_namespace, args=(
        admin, ns, output_dir, say, {"drill_runner_account": ACCOUNT})) for ns in namespaces]
    for thread in setups:
        thread.start()
    for thread in setups:
        thread.join()
    say("%d namespaces set up in %.0f s" % (len(namespaces), time.time() - started))
    # All schedules are made within the same minute, so their CronJobs fire together.
    while time.gmtime().tm_sec > 40:
        time.sleep(1)
    results = {}
    runs = [threading.Thread(target=measure, args=(admin, lab, ns, args.fault, output_dir, results))
            for ns in namespaces]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    rows = [results[ns] for ns in namespaces]
    report = {"teams": args.teams, "fault": args.fault, "host_cpus": os.cpu_count(), "runs": rows}
    (output_dir.parent / ("bench-schedule-%s.json" % stamp)).write_text(json.dumps(report, indent=1))
    print("| namespace | pod succeeded | fired | fired -> injected (s) | fired -> Job complete (s) |")
    print("|---|---|---|---|---|")
    for row in rows:
        cells = (row["namespace"], row.get("succeeded", row.get("error")), row.get("fired"),
                 row.get("fired_to_injected_s"), row.get("fired_to_completed_s"))
        print("| %s | %s | %s | %s | %s |" % cells)
    if not args.keep:
        for ns in namespaces:
            drill_runner.delete_namespace(lab, ns)
    return 0 if all(row.get("succeeded") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
