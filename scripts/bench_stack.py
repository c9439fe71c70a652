#!/usr/bin/env python
"""Measure the SEO tool stack: setup.yml wall time to steady state, and steady-state memory/CPU.

usage: bench_stack.py [--namespace NS] [--settle S] [--out DIR]

Runs `ansible-playbook setup.yml -e drill_namespace=NS` on a fresh namespace (timed from start
to the steady state the playbook waits for), waits --settle seconds, then reads every pod's
working-set memory and CPU use from the kubelet's /stats/summary (through the API server),
and removes the namespace with teardown.yml. Writes JSON to DIR/bench-stack.json.
"""
import argparse
import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB = Path("/var/lib/opsdrill-lab")


def playbook(name, namespace):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    started = time.monotonic()
    subprocess.run(["ansible-playbook", str(ROOT / name), "-e", f"drill_namespace={namespace}"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    return round(time.monotonic() - started, 1)


def pod_usage(lab, namespace):
    kubectl = [lab["kubectl"], "--kubeconfig", lab["admin_kubeconfig"]]
    node = json.loads(subprocess.run(kubectl + ["get", "nodes", "-o", "json"], capture_output=True, text=True,
                                     check=True).stdout)["items"][0]["metadata"]["name"]
    summary = json.loads(subprocess.run(kubectl + ["get", "--raw", f"/api/v1/nodes/{node}/proxy/stats/summary"],
                                        capture_output=True, text=True, check=True).stdout)
    pods = {}
    for pod in summary["pods"]:
        if pod["podRef"]["namespace"] != namespace:
            continue
        pods[pod["podRef"]["name"]] = {
            "memory_mib": round(pod.get("memory", {}).get("workingSetBytes", 0) / 2**20, 1),
            "cpu_millicores": round(pod.get("cpu", {}).get("usageNanoCores", 0) / 1e6, 1),
        }
    return pods


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default="seo-tool-bench")
    parser.add_argument("--settle", type=int, default=60)
    parser.add_argument("--out", default=str(ROOT / "tests" / "output"))
    args = parser.parse_args()
    lab = json.loads((LAB / "lab.json").read_text())
    result = {"namespace": args.namespace, "setup_to_steady_state_s": playbook("setup.yml", args.namespace)}
    time.sleep(args.settle)
    pods = pod_usage(lab, args.namespace)
    result["pods"] = pods
    result["total_memory_mib"] = round(sum(p["memory_mib"] for p in pods.values()), 1)
    result["total_cpu_millicores"] = round(sum(p["cpu_millicores"] for p in pods.values()), 1)
    result["teardown_s"] = playbook("teardown.yml", args.namespace)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench-stack.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
