#!/usr/bin/env python
"""Peer benchmark: opsdrill against Chaos Toolkit on equal work, in alternation, on the lab.

For each fault (default: one configuration, one resource and one dependency fault of the
outage scenario) both tools run the same drill in the same namespace, taking turns (the
one that goes first alternates), each on a settled namespace (steady, no seed alert
pending or firing; the settling is not timed):

- opsdrill: ``ansible-playbook drill-<scenario>.yml -e variant=.. -e fault=.. -e response_window_s=0``.
- Chaos Toolkit (chaostoolkit, chaostoolkit-kubernetes, chaostoolkit-prometheus, in their
  own venv): an experiment generated here from the same catalog entry and the same planned
  change (``engine.prepare``, as the drill engine plans it):
  steady-state hypothesis (all pods healthy, the touched Deployments available, the health
  endpoints 200, the seed alert not firing); the change; a probe until the symptom
  (backend-api no longer fully available); a probe until the seed alert fires in
  Prometheus; rollbacks: the snapshot put back (and the catalog's own rollback steps), the
  rollouts, a probe until no seed alert fires (the engine's steady state: an outage fires
  HighErrorRate too) and one until the namespace is healthy again.

Per run: wall time of the process, the two monitoring waits (injection confirmed to the
alert seen firing; start of the rollback to the steady state seen again: the rollback's
own waits for the cluster, such as postgres' rollout before backend-api restarts, are the
cluster's time) and the overhead, wall time less those two waits, measured the same way
for both. Output: a markdown table and JSON under
tests/output/ (bench-peer-<UTC time>.*).

    .venv/bin/python scripts/bench_peer.py                  # 3 faults, 1 round, namespace opsdrill-peer
    .venv/bin/python scripts/bench_peer.py --rounds 2 memory_limits
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "drills"))

import drill_runner  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils import catalog  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils import detect  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils import engine  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils import engine_client  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot  # noqa: E402

DEFAULT_FAULTS = ("outage/configuration/environment_vars", "outage/resources/memory_limits",
                  "outage/dependencies/database_down")
CTK_VENV = Path(os.path.expanduser(os.environ.get("OPSDRILL_CTK_VENV", "~/.cache/opsdrill/ctk-venv")))
CTK_REQUIREMENTS = REPO / "scripts" / "peer" / "requirements.txt"
# The drill engine's defaults own the poll interval and the health endpoints.
ENGINE_DEFAULTS = yaml.safe_load((REPO / "roles" / "drill_engine" / "defaults" / "main.yml").read_text())
POLL_S = ENGINE_DEFAULTS["drill_engine_poll_s"]
HEALTH_SERVICES = ENGINE_DEFAULTS["drill_engine_health_services"]
HEALTH_PORT = 80  # steady_state's default for a service named without a port
SYMPTOM_WORKLOAD = "backend-api"  # every outage fault takes backend-api out of service
# The drill's run and Ansible's floor: the same ansible.cfg.
ANSIBLE_ENV = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))


def say(message):
    print(time.strftime("%H:%M:%S ") + message, flush=True)


def ensure_ctk():
    chaos = CTK_VENV / "bin" / "chaos"
    if not chaos.exists():
        say("installing Chaos Toolkit into %s" % CTK_VENV)
        subprocess.run([sys.executable, "-m", "venv", str(CTK_VENV)], check=True)
        subprocess.run([str(CTK_VENV / "bin" / "pip"), "install", "-q", "-r", str(CTK_REQUIREMENTS)], check=True)
    return chaos


def _iso(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _body(obj):
    """An object as a PUT body for the rollback: no stale resourceVersion, no status."""
    body = json.loads(json.dumps(obj))
    for key in ("resourceVersion", "managedFields", "uid", "creationTimestamp", "generation"):
        body.get("metadata", {}).pop(key, None)
    body.pop("status", None)
    return body


def _py(module, func, **arguments):
    return {"type": "python", "module": module, "func": func, "arguments": arguments}


def _activity(kind, name, provider, tolerance=None):
    activity = {"type": kind, "name": name, "provider": provider}
    if tolerance is not None:
        activity["tolerance"] = tolerance
    return activity


def _op_actions(namespace, ops, prefix):
    """Chaos Toolkit actions for the engine's planned operations."""
    actions = []
    for index, op in enumerate(ops):
        name = "%s-%d-%s" % (prefix, index, op["op"])
        if op["op"] == "replace":
            obj = op["object"]
            provider = _py("opsdrill_ctk", "replace_deployment", name=obj["metadata"]["name"], ns=namespace,
                           body=_body(obj))
        elif op["op"] == "scale":
            provider = _py("chaosk8s.deployment.actions", "scale_deployment", name=op["name"], replicas=op["replicas"],
                           ns=namespace)
        elif op["op"] == "delete_pods":
            provider = _py("chaosk8s.pod.actions", "terminate_pods", label_selector=op["selector"], all=True,
                           ns=namespace)
        else:
            raise SystemExit("the peer benchmark cannot express operation %r in Chaos Toolkit" % op["op"])
        actions.append(_activity("action", name, provider))
    return actions


def experiment(entry, namespace, live, ops, proxy_url):
    """The Chaos Toolkit experiment doing the drill's work for ``entry``."""
    deployments = sorted(ref.split("/", 1)[1] for ref in live if ref.startswith("Deployment/"))
    alert = entry["alert"]
    health = dict(ns=namespace, services=list(HEALTH_SERVICES), port=HEALTH_PORT)
    restore_ops = [{"op": "replace", "object": obj} for ref, obj in sorted(live.items())
                   if ref.startswith("Deployment/")]
    restore_ops += [dict(step) for step in entry.get("rollback") or []]
    return {
        "version": "1.0.0",
        "title": "opsdrill peer benchmark: %s" % entry["key"],
        "description": "The drill's work for %s, done by Chaos Toolkit." % entry["key"],
        "configuration": {
            "prometheus_base_url": "%s/api/v1/namespaces/%s/services/prometheus:9090/proxy"
                                   % (proxy_url, snapshot.control_namespace(namespace)),
            "kube_proxy_url": proxy_url,
        },
        "steady-state-hypothesis": {
            "title": "The SEO stack serves and the seed alert is quiet",
            "probes": [_activity("probe", "all-pods-healthy", _py("chaosk8s.pod.probes", "all_pods_healthy", ns=namespace),
                                 tolerance=True)]
            + [_activity("probe", "%s-available" % name, _py("chaosk8s.deployment.probes", "deployment_available_and_healthy",
                                                             name=name, ns=namespace), tolerance=True)
               for name in deployments]
            + [_activity("probe", "health", _py("opsdrill_ctk", "health_status", **health), tolerance=200),
               _activity("probe", "alert-quiet", _py("opsdrill_ctk", "alert_state", alertname=alert), tolerance="inactive")],
        },
        "method": _op_actions(namespace, ops, "inject") + [
            _activity("probe", "symptom", _py("chaosk8s.deployment.probes", "deployment_not_fully_available",
                                              name=SYMPTOM_WORKLOAD, ns=namespace, timeout=entry["symptom"]["within_s"])),
            _activity("probe", "alert-firing", _py("opsdrill_ctk", "until_alert", alertname=alert, state="firing",
                                                   timeout=entry["alert_within_s"], interval=POLL_S)),
        ],
        "rollbacks": _op_actions(namespace, restore_ops, "restore") + [
            _activity("action", "rollout-%s" % name, _py("chaosk8s.deployment.probes", "deployment_fully_available",
                                                         name=name, ns=namespace, timeout=300))
            for name in sorted(set(deployments) | {SYMPTOM_WORKLOAD})
        ] + [
            # The drill engine's steady state: no seed alert firing (an outage fires HighErrorRate too).
            _activity("action", "alerts-cleared", _py("opsdrill_ctk", "until_not_firing",
                                                      alertnames=list(catalog.load().alerts()), timeout=300,
                                                      interval=POLL_S)),
            _activity("action", "steady", _py("opsdrill_ctk", "until_healthy", timeout=300, interval=POLL_S, **health)),
        ],
    }


def settle(client, namespace, timeout=600):
    """Wait (untimed) until the namespace is steady and no seed alert is pending or firing."""
    deadline = time.time() + timeout
    while True:
        problems = drill_runner.steady_problems(client, namespace)
        view = detect.ClusterView(client, namespace, "prometheus:9090")
        problems += ["alert %s %s" % (a, s) for a in catalog.load().alerts()
                     for s in [view.alert_state(a)] if s in ("pending", "firing")]
        if not problems:
            return
        if time.time() > deadline:
            raise SystemExit("namespace %s did not settle: %s" % (namespace, "; ".join(problems)))
        time.sleep(3)


def run_opsdrill(entry, namespace, output):
    scenario = entry["scenario"].replace("_", "-")
    artifacts = output / "opsdrill-artifacts"
    drill_id = "%s-peer-%d" % (namespace, int(time.time()))
    argv = [str(drill_runner.VENV_BIN / "ansible-playbook"), "drill-%s.yml" % scenario, "-e", "variant=%s" % entry["variant"],
            "-e", "fault=%s" % entry["name"], "-e", "response_window_s=0", "-e", "drill_namespace=%s" % namespace,
            "-e", "drill_artifacts_base=%s" % artifacts, "-e", "drill_id=%s" % drill_id]
    started = time.time()
    with open(output / ("%s.log" % drill_id), "w") as log:
        proc = subprocess.run(argv, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, check=False,
                              env=ANSIBLE_ENV)
    wall = time.time() - started
    events = {}
    for line in (artifacts / drill_id / "timeline.jsonl").read_text().splitlines():
        record = json.loads(line)
        key = record["event"] + ("/" + record["data"]["by"] if record["event"] == "steady_state_restored" else "")
        events.setdefault(key, record["epoch"])
        if record["event"] == "alert_firing":
            # The timeline dates the alert at Prometheus' firing time; the wait ends when the
            # drill saw it, as Chaos Toolkit's probe's does.
            events.setdefault("alert_seen", record["data"].get("observed_at"))
    phases = {
        "injected": events.get("fault_injected"), "alert": events.get("alert_seen"),
        "rollback": events.get("rollback_started"), "steady": events.get("steady_state_restored/rollback"),
        "started": started, "ok": proc.returncode == 0 and "verify_passed" in events,
        "tasks": tasks_run(output / ("%s.log" % drill_id)),
    }
    return wall, phases


def tasks_run(log_path):
    """Tasks the run executed (ok, including changed, + failed + skipped + rescued +
    ignored, from its PLAY RECAP)."""
    counts = {}
    for line in log_path.read_text().splitlines():
        if line.startswith("localhost") and "ok=" in line:
            counts = {k: int(v) for k, v in (part.split("=") for part in line.split(":", 1)[1].split())}
    return sum(counts.get(k, 0) for k in ("ok", "failed", "skipped", "rescued", "ignored")) or None


def ansible_floor(tasks, output, repeat=3):
    """Wall time of ``ansible-playbook`` (this repo's ansible.cfg) running ``tasks`` no-op
    tasks on localhost: what Ansible alone costs a playbook of the drill's length,
    before any cluster work. Median of ``repeat`` runs."""
    playbook = output / ("floor-%d.yml" % tasks)
    playbook.write_text(yaml.safe_dump([{
        "name": "Ansible's floor", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "No-op %d" % i, "ansible.builtin.set_fact": {"_floor": i}} for i in range(tasks)]}]))
    walls = []
    for _run in range(repeat):
        started = time.time()
        subprocess.run([str(drill_runner.VENV_BIN / "ansible-playbook"), str(playbook)], cwd=str(REPO),
                       stdout=subprocess.DEVNULL, check=True, env=ANSIBLE_ENV)
        walls.append(time.time() - started)
    return statistics.median(walls)


def run_ctk(chaos, entry, namespace, client, proxy_url, output, kubeconfig):
    live, ops = engine.prepare(client, namespace, entry, {"drill_id": "peer-bench"})
    path = output / ("ctk-%s-%d.json" % (entry["name"], int(time.time())))
    path.write_text(json.dumps(experiment(entry, namespace, live, ops, proxy_url), indent=1))
    journal = path.with_suffix(".journal.json")
    env = dict(os.environ, KUBECONFIG=kubeconfig, PYTHONPATH=str(REPO / "scripts" / "peer"))
    started = time.time()
    with open(path.with_suffix(".log"), "w") as log:
        proc = subprocess.run([str(chaos), "--no-version-check", "--no-log-file", "run", "--journal-path", str(journal),
                               "--hypothesis-strategy", "before-method-only", "--rollback-strategy", "always", str(path)],
                              stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    wall = time.time() - started
    report = json.loads(journal.read_text())
    ends = {}
    for item in (report.get("run") or []) + (report.get("rollbacks") or []):
        ends[item["activity"]["name"]] = (_iso(item["start"]), _iso(item["end"]), item["status"])
    injects = [n for n in ends if n.startswith("inject-")]
    restores = [n for n in ends if n.startswith("restore-")]
    phases = {
        "injected": max(ends[n][1] for n in injects), "alert": ends.get("alert-firing", (0, None, ""))[1],
        "rollback": min(ends[n][0] for n in restores), "steady": ends.get("steady", (0, None, ""))[1],
        "started": started,
        "ok": proc.returncode == 0 and report.get("status") == "completed"
        and all(status == "succeeded" for _s, _e, status in ends.values()),
    }
    return wall, phases


def figures(tool, key, wall, phases):
    alert_wait = phases["alert"] - phases["injected"] if phases["alert"] and phases["injected"] else None
    steady_wait = phases["steady"] - phases["rollback"] if phases["steady"] and phases["rollback"] else None
    overhead = wall - alert_wait - steady_wait if alert_wait is not None and steady_wait is not None else None
    return {"tool": tool, "fault": key, "ok": phases["ok"], "wall_s": round(wall, 1),
            "to_injection_s": round(phases["injected"] - phases["started"], 1) if phases["injected"] else None,
            "alert_wait_s": round(alert_wait, 1) if alert_wait is not None else None,
            "steady_wait_s": round(steady_wait, 1) if steady_wait is not None else None,
            "overhead_s": round(overhead, 1) if overhead is not None else None,
            "tasks": phases.get("tasks")}


def _median(rows, tool, field):
    values = [r[field] for r in rows if r["tool"] == tool and r[field] is not None]
    return statistics.median(values) if values else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faults", nargs="*", help="scenario/variant/name keys or fault names (default: %s)"
                        % ", ".join(DEFAULT_FAULTS))
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tool per fault (default 1)")
    parser.add_argument("--namespace", default="opsdrill-peer", help="namespace (set up when missing; kept)")
    args = parser.parse_args(argv)

    lab = drill_runner.require_lab()
    faults = catalog.load()
    keys = [k for k in faults.keys() if k in (args.faults or DEFAULT_FAULTS) or k.rsplit("/", 1)[1] in args.faults]
    if not keys:
        print("no such fault: %s" % ", ".join(args.faults), file=sys.stderr)
        return 2
    chaos = ensure_ctk()
    kubeconfig = os.environ.get("OPSDRILL_KUBECONFIG", lab["admin_kubeconfig"])
    client = engine_client.connect(kubeconfig)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    output = REPO / "tests" / "output" / ("bench-peer-%s" % stamp)
    output.mkdir(parents=True, exist_ok=True)
    if drill_runner.setup_namespace(args.namespace, output, log=say) != 0:
        return 1
    proxy = subprocess.Popen([lab["kubectl"], "--kubeconfig", kubeconfig, "proxy", "--port=0", "--address=127.0.0.1"],
                             stdout=subprocess.PIPE, text=True)
    proxy_url = "http://" + proxy.stdout.readline().strip().rsplit(" ", 1)[-1]
    rows = []
    try:
        for round_index in range(args.rounds):
            for index, key in enumerate(keys):
                entry = faults.lookup(*key.split("/"))
                tools = ["opsdrill", "chaostoolkit"] if (round_index + index) % 2 == 0 else ["chaostoolkit", "opsdrill"]
                for tool in tools:
                    settle(client, args.namespace)
                    if tool == "opsdrill":
                        wall, phases = run_opsdrill(entry, args.namespace, output)
                    else:
                        wall, phases = run_ctk(chaos, entry, args.namespace, client, proxy_url, output, kubeconfig)
                    rows.append(figures(tool, key, wall, phases))
                    say("%-12s %-40s %s" % (tool, key, json.dumps(rows[-1])))
    finally:
        proxy.terminate()
    header = ["| tool | fault | ok | wall s | start to injection s | alert wait s | steady wait s | overhead s | tasks |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines = header + ["| %(tool)s | %(fault)s | %(ok)s | %(wall_s)s | %(to_injection_s)s | %(alert_wait_s)s | "
                      "%(steady_wait_s)s | %(overhead_s)s | %(tasks)s |" % row for row in rows]
    summary = {tool: {field: _median(rows, tool, field) for field in ("wall_s", "overhead_s")}
               for tool in ("opsdrill", "chaostoolkit")}
    ratio = {field: round(summary["opsdrill"][field] / summary["chaostoolkit"][field], 2)
             if summary["opsdrill"][field] and summary["chaostoolkit"][field] else None for field in ("wall_s", "overhead_s")}
    lines += ["", "| median | wall s | overhead s |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % (tool, summary[tool]["wall_s"], summary[tool]["overhead_s"]) for tool in summary]
    lines += ["| ratio opsdrill / Chaos Toolkit | %s | %s |" % (ratio["wall_s"], ratio["overhead_s"])]
    tasks = _median(rows, "opsdrill", "tasks")
    floor = round(ansible_floor(int(tasks), output), 1) if tasks else None
    if floor is not None:
        lines += ["", "Ansible's floor: `ansible-playbook` of %d no-op tasks (the drill's median task count) "
                  "on localhost: %s s, %s of Chaos Toolkit's median overhead."
                  % (tasks, floor, "%.2f x" % (floor / summary["chaostoolkit"]["overhead_s"])
                     if summary["chaostoolkit"]["overhead_s"] else "n/a")]
    report = "# Peer benchmark %s (namespace %s, %d round(s))\n\n%s\n" % (stamp, args.namespace, args.rounds, "\n".join(lines))
    (output.parent / ("bench-peer-%s.md" % stamp)).write_text(report)
    (output.parent / ("bench-peer-%s.json" % stamp)).write_text(json.dumps(
        {"stamp": stamp, "rows": rows, "median": summary, "ratio": ratio, "ansible_floor_s": floor}, indent=1))
    print(report)
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
