#!/usr/bin/env python3
"""Check, before anything changes, that this host can run the lab.

usage: preflight.py LAB_DIR PORT[,PORT...]
Prints JSON {"problems": [...], "running": bool}; every problem names what is wrong
and how to fix it. Ports are only checked when no lab is running here already.
"""
import json
import os
import subprocess
import sys


def _listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "0A":  # LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def _lab_running(lab_dir):
    try:
        with open(os.path.join(lab_dir, "run", "supervisor.pid"), encoding="ascii") as handle:
            os.kill(int(handle.read().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def main(lab_dir, ports):
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: the lab configures interfaces, iptables, mounts and cgroups; run as root (become: true)")
    with open("/proc/filesystems", encoding="ascii") as handle:
        filesystems = handle.read()
    if "overlay" not in filesystems:
        problems.append("kernel lacks overlayfs (containerd's overlayfs snapshotter needs it): load the overlay module")
    v1_memory = os.path.isdir("/sys/fs/cgroup/memory")
    v2_memory = False
    try:
        with open("/sys/fs/cgroup/cgroup.controllers", encoding="ascii") as handle:
            v2_memory = "memory" in handle.read().split()
    except OSError:
        pass
    if not (v1_memory or v2_memory):
        problems.append("no memory cgroup controller: memory limits and OOM kills cannot work; enable cgroup memory (cgroup_enable=memory)")
    if not os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
        problems.append("no br_netfilter (/proc/sys/net/bridge/bridge-nf-call-iptables): "
                        "Services between pods on the bridge need it; modprobe br_netfilter")
    if not os.path.exists("/proc/sys/net/ipv4/ip_forward"):
        problems.append("no IPv4 forwarding sysctl")
    if subprocess.run(["iptables", "-w", "-L", "-n"], capture_output=True, check=False).returncode != 0:
        problems.append("iptables does not work here (kube-proxy and the lab's traffic guard need it): "
                        "install iptables, check nf_tables/ip_tables in the kernel")
    running = _lab_running(lab_dir)
    if not running:
        busy = sorted(set(ports) & _listening_ports())
        if busy:
            problems.append(f"port(s) {', '.join(map(str, busy))} already in use by another process: "
                            "the lab needs them for etcd, the API server, kubelet and kube-proxy")
        # KUBE-* chains with a lab directory are a stopped lab of ours (e.g. the host's
        # processes were killed): bringing it up again reuses them. Without one they
        # belong to another Kubernetes.
        own_stopped_lab = os.path.exists(os.path.join(lab_dir, "supervisor.json"))
        if not own_stopped_lab and subprocess.run("iptables -w -S | grep -q -- '-N KUBE-'", shell=True,
                                                  check=False).returncode == 0:
            problems.append("iptables already has KUBE-* chains and no lab runs here: "
                            "another Kubernetes owns this host; the lab would share and later remove them")
    print(json.dumps({"problems": problems, "running": running}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [int(p) for p in sys.argv[2].split(",") if p]))
