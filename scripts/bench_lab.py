#!/usr/bin/env python
"""Measure the lab: pod start latency, the lab's own memory, and (optionally) bring-up time.

usage: bench_lab.py [--pods N] [--bring-up] [--out DIR]

- pod start latency: N pods (the lab's python image, `sleep`) created one after another;
  each is timed from the create call returning to the API reporting it Ready (polled every
  0.1 s), then deleted. Reports p50/p90/max.
- lab memory: resident memory of every supervised component (pid files under
  /var/lib/opsdrill-lab/run) and their children, from /proc.
- --bring-up: times `ansible-playbook lab.yml -e lab_state=absent` then `lab.yml` (warm cache).
Figures are printed and written as JSON to DIR (default tests/output/bench-lab.json).
"""
import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

LAB = Path("/var/lib/opsdrill-lab")
ROOT = Path(__file__).resolve().parents[1]


def kubectl(lab, *args, input_text=None):
    return subprocess.run([lab["kubectl"], "--kubeconfig", lab["admin_kubeconfig"], *args], input=input_text,
                          capture_output=True, text=True, check=True).stdout


def pod_start_latency(lab, count):
    namespace = f"opsdrill-bench-{os.getpid()}"
    kubectl(lab, "create", "namespace", namespace)
    samples = []
    try:
        for index in range(count):
            name = f"bench-{index}"
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
                   "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                       "name": "sleep", "image": lab["images"]["python"], "imagePullPolicy": "Never",
                       "command": ["sleep", "3600"],
                       "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}}]}}
            kubectl(lab, "create", "-f", "-", input_text=json.dumps(pod))
            created = time.monotonic()
            while True:
                status = json.loads(kubectl(lab, "get", "pod", name, "-n", namespace, "-o", "json"))["status"]
                if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])):
                    samples.append(time.monotonic() - created)
                    break
                if time.monotonic() - created > 120:
                    raise RuntimeError(f"pod {name} not Ready after 120 s")
                time.sleep(0.1)
            kubectl(lab, "delete", "pod", name, "-n", namespace, "--wait=false")
    finally:
        kubectl(lab, "delete", "namespace", namespace, "--wait=false")
    ordered = sorted(samples)
    return {"pods": count, "p50_s": round(statistics.median(ordered), 2),
            "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 2), "max_s": round(ordered[-1], 2)}


def _children(pid):
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def lab_memory():
    per_component = {}
    for pid_file in sorted((LAB / "run").glob("*.pid")):
        pids, todo = [], [int(pid_file.read_text().strip())]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            # The supervisor's children are the components, counted on their own.
            if pid_file.stem != "supervisor":
                todo += _children(pid)
        rss = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            except OSError:
                pass
        per_component[pid_file.stem] = round(rss / 1024, 1)
    return {"rss_mib": per_component, "total_rss_mib": round(sum(per_component.values()), 1)}


def bring_up():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    timings = {}
    for label, state in (("teardown_s", "absent"), ("warm_bring_up_s", "present")):
        started = time.monotonic()
        subprocess.run(["ansible-playbook", str(ROOT / "lab.yml"), "-e", f"lab_state={state}"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        timings[label] = round(time.monotonic() - started, 1)
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--bring-up", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "tests" / "output"))
    args = parser.parse_args()
    result = {"host": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    if args.bring_up:
        result["bring_up"] = bring_up()
    lab = json.loads((LAB / "lab.json").read_text())
    result["pod_start_latency"] = pod_start_latency(lab, args.pods)
    result["lab_memory"] = lab_memory()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench-lab.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
