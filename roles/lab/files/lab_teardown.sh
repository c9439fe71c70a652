#!/usr/bin/env bash
# Remove everything a lab created, also a half-started one, and nothing else:
# processes (components, containers, shims), mounts, network namespaces, cgroups,
# iptables rules, interfaces, sysctls and the lab directories. The build cache stays.
#
# usage: lab_teardown.sh LAB_DIR RUN_DIR BIN_DIR NODE_IF NODE_IP CNI_BRIDGE POD_CIDR GUARD_CIDR
# Prints "changed" or "unchanged".
set -uo pipefail
lab=$1 run=$2 bin=$3 node_if=$4 node_ip=$5 bridge=$6 pod_cidr=$7 guard_cidr=$8
here=$(cd "$(dirname "$0")" && pwd)
changed=0
[[ -d "$lab" || -d "$run" ]] && changed=1

# 1. The supervisor stops the components in reverse order.
if [[ -f "$lab/supervisor.json" ]]; then
  python3 "$here/lab_supervisor.py" stop "$lab/supervisor.json" >/dev/null || true
fi

# 2. Containers outlive containerd (their shims re-parent to init): kill every
#    process in the kubelet's pod cgroups, then the shims of this lab's containerd.
for _ in 1 2 3; do
  pids=$(cat /sys/fs/cgroup/pids/kubepods/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/cgroup.procs \
             /sys/fs/cgroup/pids/kubepods/*/*/cgroup.procs /sys/fs/cgroup/pids/kubepods/*/*/*/cgroup.procs \
             /sys/fs/cgroup/kubepods/cgroup.procs 2>/dev/null | sort -u)
  [[ -z "$pids" ]] && break
  kill -9 $pids 2>/dev/null; changed=1; sleep 0.5
done
for pid in $(pgrep -f "containerd-shim.*-address $run/containerd.sock" || true); do
  kill -9 "$pid" 2>/dev/null && changed=1
done
# Any component still holding the lab's binaries or config (a killed supervisor).
for pid in $(pgrep -f "^$bin/" || true) $(pgrep -f "containerd --config $lab/" || true); do
  kill -9 "$pid" 2>/dev/null && changed=1
done
sleep 0.5

# 3. iptables: kube-proxy's own cleanup, then any KUBE-* chain left by kube-proxy or
#    kubelet (preflight refused a host that had KUBE-* chains before the lab).
if [[ -x "$bin/kube-proxy" ]] && iptables -w -S 2>/dev/null | grep -q -- '-N KUBE-'; then
  "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
fi
for table in filter nat mangle; do
  chains=$(iptables -w -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}')
  [[ -z "$chains" ]] && continue
  changed=1
  iptables -w -t "$table" -S | grep -E -- '-j KUBE-' | grep -v '^-A KUBE-' | sed 's/^-A/-D/' |
    while read -r rule; do eval iptables -w -t "$table" "$rule" 2>/dev/null; done
  for chain in $chains; do iptables -w -t "$table" -F "$chain" 2>/dev/null; done
  for chain in $chains; do iptables -w -t "$table" -X "$chain" 2>/dev/null; done
done

# 4. Mounts under the lab's directories, deepest first; then the pods' network namespaces.
for dir in "$lab" "$run"; do
  findmnt -rn -o TARGET | grep -E "^$dir(/|$)" | sort -r | while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null
  done
done
if [[ -f "$lab/netns.before" ]]; then
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' || true); do
    grep -qx "$ns" "$lab/netns.before" || { ip netns del "$ns" 2>/dev/null; changed=1; }
  done
fi

# containerd 1.6 keeps shim sockets in /run/containerd/s whatever its state dir is.
if [[ -f "$lab/run-containerd.created" ]]; then
  rm -rf /run/containerd
fi

# 5. Pod cgroups (the kubelet's cgroupfs root is /kubepods in every hierarchy).
for hierarchy in /sys/fs/cgroup/*/; do
  [[ -d "$hierarchy/kubepods" ]] || continue
  find "$hierarchy/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
  changed=1
done

# 6. Guard chains, interfaces, sysctls.
if [[ $("$here/lab_network.sh" down "$node_if" "$node_ip" "$bridge" "$pod_cidr" "$guard_cidr" "$lab") == changed ]]; then
  changed=1
fi

rm -rf "$lab" "$run"
[[ $changed -eq 1 ]] && echo changed || echo unchanged
