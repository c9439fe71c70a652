"""The incident desk's footprint, as the kubelet measures it (its /stats/summary through the
API server): CPU (usageNanoCores) and memory (workingSetBytes) of the desk's pod, sampled
every few seconds for a while. Run it once with the drill namespace idle (at rest) and once
while a drill runs there (for example during tests/integration/drills/test_incident_desk.py).

    .venv/bin/python scripts/bench_desk.py --namespace seo-tool --seconds 120

Prints one JSON object: samples, CPU millicores (mean, max), working set MiB (mean, max).
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import k8s_rest  # noqa: E402
from ansible_collections.opsdrill.drills.plugins.module_utils.runtime import snapshot  # noqa: E402


def sample(client, home):
    nodes = client.list("Node")
    for node in nodes:
        summary = client.request("GET", "/api/v1/nodes/%s/proxy/stats/summary" % node["metadata"]["name"])
        for pod in summary.get("pods", []):
            ref = pod.get("podRef") or {}
            if ref.get("namespace") == home and ref.get("name", "").startswith("incident-desk-"):
                return ((pod.get("cpu") or {}).get("usageNanoCores"),
                        (pod.get("memory") or {}).get("workingSetBytes"))
    return None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--namespace", default="seo-tool", help="drill namespace whose desk to watch")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=float, default=5)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG",
                                                               "/var/lib/opsdrill-lab/kubeconfigs/admin.kubeconfig"))
    args = parser.parse_args()
    client = k8s_rest.Client.from_kubeconfig(args.kubeconfig)
    home = snapshot.control_namespace(args.namespace)
    cpu, mem = [], []
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        nano, working = sample(client, home)
        if nano is not None:
            cpu.append(nano / 1e6)
        if working is not None:
            mem.append(working / 2 ** 20)
        time.sleep(args.every)
    print(json.dumps({
        "namespace": args.namespace, "samples": len(cpu),
        "cpu_millicores": {"mean": round(sum(cpu) / len(cpu), 2), "max": round(max(cpu), 2)} if cpu else None,
        "working_set_mib": {"mean": round(sum(mem) / len(mem), 1), "max": round(max(mem), 1)} if mem else None,
    }))


if __name__ == "__main__":
    main()
