#!/usr/bin/env bash
# The lab's network: the node address on its own interface, forwarding sysctls, and
# the guard that keeps every lab packet inside the lab range.
#
# usage: lab_network.sh up|down NODE_IF NODE_IP CNI_BRIDGE POD_CIDR GUARD_CIDR STATE_DIR
# STATE_DIR keeps the sysctl values found before `up`, which `down` puts back.
# Prints "changed" or "unchanged".
set -euo pipefail
action=$1 node_if=$2 node_ip=$3 bridge=$4 pod_cidr=$5 guard_cidr=$6 state_dir=$7
sysctls=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables)
changed=0
ipt() { iptables -w "$@"; }

up() {
  if ! ip link show "$node_if" >/dev/null 2>&1; then
    # A dummy interface where the kernel has the driver; a port-less bridge otherwise.
    ip link add "$node_if" type dummy 2>/dev/null || ip link add "$node_if" type bridge
    changed=1
  fi
  if ! ip -4 addr show dev "$node_if" | grep -q " $node_ip/"; then
    ip addr add "$node_ip/32" dev "$node_if"
    changed=1
  fi
  ip link set "$node_if" up
  mkdir -p "$state_dir"
  if [[ ! -f "$state_dir/sysctl.orig" ]]; then
    for key in "${sysctls[@]}"; do echo "$key=$(sysctl -n "$key")"; done > "$state_dir/sysctl.orig"
  fi
  for key in "${sysctls[@]}"; do
    if [[ $(sysctl -n "$key") != 1 ]]; then sysctl -qw "$key=1"; changed=1; fi
  done

  # Guard chains, hooked first into INPUT, FORWARD and OUTPUT.
  for chain in OPSDRILL-GUARD-IN OPSDRILL-GUARD-FWD OPSDRILL-GUARD-OUT; do
    ipt -N "$chain" 2>/dev/null && changed=1 || true
    ipt -F "$chain"
  done
  # Pods may reach the host only on lab addresses, and on the node address only the API
  # server and DNS (not the kubelet, etcd or anything else the host runs); replies to the
  # host's own connections (kubelet probes) pass.
  ipt -A OPSDRILL-GUARD-IN -s "$pod_cidr" ! -d "$guard_cidr" -j DROP
  ipt -A OPSDRILL-GUARD-IN -s "$pod_cidr" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  ipt -A OPSDRILL-GUARD-IN -s "$pod_cidr" -d "$node_ip" -p tcp --dport 6443 -j RETURN
  ipt -A OPSDRILL-GUARD-IN -s "$pod_cidr" -d "$node_ip" -p udp --dport 53 -j RETURN
  ipt -A OPSDRILL-GUARD-IN -s "$pod_cidr" -d "$node_ip" -p tcp --dport 53 -j RETURN
  ipt -A OPSDRILL-GUARD-IN -s "$pod_cidr" -d "$node_ip" -p tcp -j REJECT --reject-with tcp-reset
  ipt -A OPSDRILL-GUARD-IN -s "$pod_cidr" -d "$node_ip" -j DROP
  # Forwarded pod traffic stays on the pod bridge and inside the lab range:
  # nothing leaves through another interface, not even to an unused lab address.
  ipt -A OPSDRILL-GUARD-FWD -s "$pod_cidr" ! -d "$guard_cidr" -j DROP
  ipt -A OPSDRILL-GUARD-FWD -s "$pod_cidr" ! -o "$bridge" -j DROP
  ipt -A OPSDRILL-GUARD-FWD -d "$pod_cidr" ! -i "$bridge" -j DROP
  # The host never sends lab-range traffic out of a non-lab interface.
  ipt -A OPSDRILL-GUARD-OUT -o lo -j RETURN
  ipt -A OPSDRILL-GUARD-OUT -o "$bridge" -j RETURN
  ipt -A OPSDRILL-GUARD-OUT -o "$node_if" -j RETURN
  # The host's own connections to a Service address: kube-proxy DNATs them to the node
  # or a pod, but -o still names the interface chosen before the DNAT. Let them pass
  # when the new destination is inside the lab, whose routes keep them there.
  ipt -A OPSDRILL-GUARD-OUT -m conntrack --ctstate DNAT -d "$node_ip" -j RETURN
  ipt -A OPSDRILL-GUARD-OUT -m conntrack --ctstate DNAT -d "$pod_cidr" -j RETURN
  ipt -A OPSDRILL-GUARD-OUT -d "$guard_cidr" -j DROP
  for hook in INPUT:OPSDRILL-GUARD-IN FORWARD:OPSDRILL-GUARD-FWD OUTPUT:OPSDRILL-GUARD-OUT; do
    if ! ipt -C "${hook%%:*}" -j "${hook#*:}" 2>/dev/null; then
      ipt -I "${hook%%:*}" 1 -j "${hook#*:}"
      changed=1
    fi
  done
}

down() {
  for hook in INPUT:OPSDRILL-GUARD-IN FORWARD:OPSDRILL-GUARD-FWD OUTPUT:OPSDRILL-GUARD-OUT; do
    while ipt -D "${hook%%:*}" -j "${hook#*:}" 2>/dev/null; do changed=1; done
    if ipt -F "${hook#*:}" 2>/dev/null; then ipt -X "${hook#*:}"; changed=1; fi
  done
  if [[ -f "$state_dir/sysctl.orig" ]]; then
    while IFS= read -r kv; do sysctl -qw "$kv"; done < "$state_dir/sysctl.orig"
    rm -f "$state_dir/sysctl.orig"
    changed=1
  fi
  for link in "$bridge" "$node_if"; do
    if ip link show "$link" >/dev/null 2>&1; then ip link del "$link"; changed=1; fi
  done
}

"$action"
[[ $changed -eq 1 ]] && echo changed || echo unchanged
